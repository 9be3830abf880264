//! Reading an age file's header, which names its recipients, and the tag
//! by which an ssh recipient names its key: what `secrets::recipient`
//! compares with the host's ssh host keys. Nothing here decrypts; the
//! host does that with its private key (age-encryption.org/v1).
//!
//! An ssh recipient stanza is `-> ssh-ed25519 TAG SHARE` (or `ssh-rsa
//! TAG`), where TAG is the first four bytes of the sha256 of the key's
//! ssh wire encoding (the base64 blob of its `.pub` line), in base64
//! without padding.

use sha2::{Digest, Sha256};

const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const END: &str = "-----END AGE ENCRYPTED FILE-----";
const VERSION: &str = "age-encryption.org/v1";

/// A recipient of an age file, as its header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recipient {
    /// An ssh key (`ssh-ed25519` or `ssh-rsa`) by its tag.
    Ssh { kind: String, tag: String },
    /// Any other kind of recipient (`X25519` for an age key, a plugin's):
    /// what it is, not who.
    Other(String),
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::Ssh { kind, tag } => write!(f, "an {kind} key tagged {tag}"),
            Recipient::Other(kind) => write!(f, "an {kind} recipient"),
        }
    }
}

/// The recipients of an armored age file, or what keeps it from being one.
pub(crate) fn recipients(armored: &str) -> Result<Vec<Recipient>, String> {
    let body = armored
        .trim_end()
        .strip_prefix(BEGIN)
        .and_then(|b| b.strip_suffix(END))
        .ok_or("it is not armored (age --armor)")?;
    let joined: String = body.split_whitespace().collect();
    let bytes = base64_decode(&joined).ok_or("its armor is not base64")?;
    let mut lines = bytes.split(|b| *b == b'\n');
    if lines.next() != Some(VERSION.as_bytes()) {
        return Err(format!("its header does not begin with `{VERSION}`"));
    }
    let mut found = Vec::new();
    for line in lines {
        let line = std::str::from_utf8(line).map_err(|_| "its header is not text")?;
        if line.starts_with("---") {
            return if found.is_empty() {
                Err("its header names no recipient".into())
            } else {
                Ok(found)
            };
        }
        let Some(stanza) = line.strip_prefix("-> ") else {
            continue;
        };
        let mut words = stanza.split(' ');
        let kind = words.next().unwrap_or_default().to_string();
        found.push(match (kind.as_str(), words.next()) {
            ("ssh-ed25519" | "ssh-rsa", Some(tag)) => Recipient::Ssh {
                kind,
                tag: tag.to_string(),
            },
            _ => Recipient::Other(kind),
        });
    }
    Err("its header has no end (the file is cut short)".into())
}

/// The recipient an ssh public key line (`ssh-ed25519 AAAA... comment`)
/// is in an age header; `None` for a key type age cannot encrypt to.
pub(crate) fn ssh_recipient(key: &str) -> Option<Recipient> {
    let mut words = key.split(' ');
    let kind = words.next()?;
    if kind != "ssh-ed25519" && kind != "ssh-rsa" {
        return None;
    }
    let blob = base64_decode(words.next()?)?;
    let digest = Sha256::digest(&blob);
    Some(Recipient::Ssh {
        kind: kind.to_string(),
        tag: base64_encode_unpadded(&digest[..4]),
    })
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, padding optional; `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn base64_encode_unpadded(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `age -a -R host.pub -R alice.pub` (age 1.1.1), where
    /// host.pub is HOST below.
    const FILE: &str = "-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNzaC1lZDI1NTE5IDA2d2w1dyBmajRE
RE1nR1BGTFBHdlp2UzRXYTg3eTdXTUIxSXpRYmlzRllSOVBOZ0FNCmhTMCs2OG1B
cUNCRVhCUVZ6eU5qMjVINmJza0FHOWp1QUpaVDI1cElBVzAKLT4gc3NoLWVkMjU1
MTkgUTJrVEhnIEZMOGZzcGhtZ05LblRzOHdkd0NGdTdtUnJsYTBOMTlTbUV4VlYz
WUh4eDgKM2NvcUx6Yk1JczZNdzRKYUhoNmhxNm9LaHFEczEwWVhQSTcyOUZqbFJY
NAotLS0gbXVyQUpXczg4OWFRaWpvVk4zc2pGZlppMEU5NWVRSE5GWm1sNFQ3YUFh
dwqgathg0YibzrZPj0uiUng0ibo+0x9P1Wc05DLOxEYeLI+ZTM7zjNV2aTwa
-----END AGE ENCRYPTED FILE-----
";

    fn ssh(tag: &str) -> Recipient {
        Recipient::Ssh {
            kind: "ssh-ed25519".into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn the_header_names_both_recipients() {
        assert_eq!(
            recipients(FILE).unwrap(),
            vec![ssh("06wl5w"), ssh("Q2kTHg")]
        );
    }

    #[test]
    fn what_is_no_age_file_says_why() {
        assert!(recipients("hello").unwrap_err().contains("armored"));
        let cut: String = FILE.lines().take(3).collect::<Vec<_>>().join("\n");
        let cut = format!("{cut}\n{END}\n");
        assert!(recipients(&cut).unwrap_err().contains("cut short"));
        let other = format!("{BEGIN}\nbm90IGFnZQo=\n{END}\n");
        assert!(recipients(&other).unwrap_err().contains("header"));
    }

    #[test]
    fn a_key_names_the_recipient_age_writes_for_it() {
        let host = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIjv4w6VZmDOZbkZCZxilHCYQ3um+qqU07wQ6V39jSyk root@lb";
        assert_eq!(ssh_recipient(host), Some(ssh("06wl5w")));
        assert_eq!(ssh_recipient("ecdsa-sha2-nistp256 AAAA"), None);
    }

    /// Against the real age and ssh-keygen: an ed25519 and an rsa key,
    /// each tagged as age tags it.
    #[test]
    fn the_tags_are_the_ones_age_writes() {
        let dir = std::env::temp_dir().join(format!("sitec-age-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |cmd: &str, args: &[&str]| {
            let out = std::process::Command::new(cmd)
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("{cmd} (install it: scripts/test does): {e}"));
            assert!(
                out.status.success(),
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        for kind in ["ed25519", "rsa"] {
            let _ = std::fs::remove_file(dir.join(kind));
            run(
                "ssh-keygen",
                &["-q", "-t", kind, "-N", "", "-C", "host", "-f", kind],
            );
            let public = std::fs::read_to_string(dir.join(format!("{kind}.pub"))).unwrap();
            std::fs::write(dir.join("plain"), "secret\n").unwrap();
            let file = run("age", &["-a", "-R", &format!("{kind}.pub"), "plain"]);
            assert_eq!(
                recipients(&file).unwrap(),
                vec![ssh_recipient(public.trim()).unwrap()],
                "{kind}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..8 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(base64_decode(&base64_encode_unpadded(&bytes)), Some(bytes));
        }
        assert_eq!(base64_decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(base64_decode("a b"), None);
    }
}

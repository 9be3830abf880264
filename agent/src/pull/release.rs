//! A release: the statement `sitec push --publish` signs for one host
//! (`sitec-release 2`, then `site`, `host`, `bundle`, `agent`, `serial`
//! lines; version 1, from before the agent travelled apart, has no
//! `agent`), followed by its SSH signature in the `sitec-release`
//! namespace. It is verified with `ssh-keygen -Y` against the signers the
//! live generation's bundle names (`p signer` records).

use std::path::Path;

use sitec_format::Index;

use crate::effects::{Cmd, Effects, EffectsExt as _};

/// The namespace releases are signed in.
pub const NAMESPACE: &str = "sitec-release";

/// What a release states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub site: String,
    pub host: String,
    /// The bundle's hash.
    pub bundle: String,
    /// The sha256 of the agent it is applied with (`None`: version 1, this
    /// agent applies it).
    pub agent: Option<String>,
    /// The epoch second of its publish.
    pub serial: u64,
}

/// A release verified: its statement, who signed it, and the sha256 of the
/// signed statement (how the host remembers a release it rejected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub statement: Statement,
    pub signer: String,
    pub digest: String,
}

impl Statement {
    /// The statement's lines, as publish writes them; `None` when it is
    /// not one this agent reads.
    pub fn parse(text: &str) -> Option<Statement> {
        let lines: Vec<&str> = text.lines().collect();
        let version = match *lines.first()? {
            "sitec-release 1" => 1,
            "sitec-release 2" => 2,
            _ => return None,
        };
        if lines.len() != version + 4 {
            return None;
        }
        let field = |i: usize, key: &str| {
            let w: Vec<&str> = lines[i].split_whitespace().collect();
            match w.as_slice() {
                [k, v] if *k == key => Some(v.to_string()),
                _ => None,
            }
        };
        let bundle = field(3, "bundle").filter(|b| sitec_format::is_sha256_hex(b))?;
        let agent = match version {
            2 => Some(field(4, "agent").filter(|a| sitec_format::is_sha256_hex(a))?),
            _ => None,
        };
        let serial = field(version + 3, "serial")
            .filter(|s| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))?;
        Some(Statement {
            site: field(1, "site")?,
            host: field(2, "host")?,
            bundle,
            agent,
            serial: serial.parse().ok()?,
        })
    }
}

/// The statement and the signature of a release file: the signature from
/// its `-----BEGIN SSH SIGNATURE-----` line on.
pub fn split(release: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8_lossy(release);
    let mut statement = String::new();
    let mut signature = String::new();
    let mut signed = false;
    for line in text.split_inclusive('\n') {
        signed |= line.trim_end_matches('\n') == "-----BEGIN SSH SIGNATURE-----";
        if signed {
            signature.push_str(line);
        } else {
            statement.push_str(line);
        }
    }
    (statement.into_bytes(), signature.into_bytes())
}

/// `allowed_signers` of the signers `index` names.
pub fn allowed_signers(index: &Index) -> String {
    index
        .signers
        .iter()
        .map(|(name, key)| format!("{name} namespaces=\"{NAMESPACE}\" {key}\n"))
        .collect()
}

/// A freshness statement: the release server's word, signed by a
/// signer, that release `serial` is the newest for the host until
/// `until` (epoch seconds). `push --publish` signs it again at every run;
/// a host that saw one refuses a server whose statement has expired,
/// which is how a server that keeps serving an old release (or none)
/// shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fresh {
    pub site: String,
    pub host: String,
    pub serial: u64,
    pub until: u64,
}

/// The header of a freshness statement.
pub const FRESH: &str = "sitec-fresh 1";

impl Fresh {
    /// `sitec-fresh 1`, then `site`, `host`, `serial` and `until` lines;
    /// `None` when it is not one.
    pub fn parse(text: &str) -> Option<Fresh> {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != 5 || lines[0] != FRESH {
            return None;
        }
        let field = |i: usize, key: &str| {
            let v = lines[i].strip_prefix(key)?.strip_prefix(' ')?;
            (!v.is_empty() && !v.contains(' ')).then(|| v.to_string())
        };
        let number = |i: usize, key: &str| {
            field(i, key)
                .filter(|s| s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))?
                .parse()
                .ok()
        };
        Some(Fresh {
            site: field(1, "site")?,
            host: field(2, "host")?,
            serial: number(3, "serial")?,
            until: number(4, "until")?,
        })
    }
}

/// Verifies a freshness statement (`fresh`, the file's bytes) for host
/// `host` as [`verify`] verifies a release.
pub fn verify_fresh(
    fx: &mut impl Effects,
    work: &Path,
    fresh: &[u8],
    index: &Index,
    host: &str,
    live: &str,
) -> Result<Fresh, String> {
    let (statement, signer) = verify_signed(fx, work, fresh, index, live, "freshness statement")?;
    let Some(parsed) = Fresh::parse(&String::from_utf8_lossy(&statement)) else {
        return Err(format!(
            "the freshness statement signed by {signer} is not one this sitec reads"
        ));
    };
    addressed_here(
        index,
        host,
        "freshness statement",
        &signer,
        &parsed.site,
        &parsed.host,
    )?;
    Ok(parsed)
}

/// That a statement (`what`, signed by `signer`) names this host and
/// its site, as its live generation says them.
fn addressed_here(
    index: &Index,
    host: &str,
    what: &str,
    signer: &str,
    named_site: &str,
    named_host: &str,
) -> Result<(), String> {
    let site = index.pull.get("site").map(String::as_str).unwrap_or("");
    if named_site != site || named_host != host {
        return Err(format!(
            "the {what} signed by {signer} is for host {named_host} of site {named_site}, not {host} of site {site}"
        ));
    }
    Ok(())
}

/// Verifies `release` (the file's bytes) for host `host` against the
/// signers of `index` (of generation `live`, for the message), with its
/// scratch files in `work`. The error is why, in the operator's words.
pub fn verify(
    fx: &mut impl Effects,
    work: &Path,
    release: &[u8],
    index: &Index,
    host: &str,
    live: &str,
) -> Result<Release, String> {
    let (statement, signer) = verify_signed(fx, work, release, index, live, "release")?;
    let Some(parsed) = Statement::parse(&String::from_utf8_lossy(&statement)) else {
        return Err(format!(
            "the release signed by {signer} is not a release statement this sitec reads"
        ));
    };
    addressed_here(index, host, "release", &signer, &parsed.site, &parsed.host)?;
    Ok(Release {
        statement: parsed,
        signer,
        digest: sitec_format::sha256_hex(&statement),
    })
}

/// The statement of a signed file (`what`: a release, a freshness
/// statement) and who signed it, once its signature verifies against the
/// signers of `index`.
fn verify_signed(
    fx: &mut impl Effects,
    work: &Path,
    file: &[u8],
    index: &Index,
    live: &str,
    what: &str,
) -> Result<(Vec<u8>, String), String> {
    let (statement, signature) = split(file);
    if signature.is_empty() {
        return Err(format!("the {what} carries no signature"));
    }
    let io = |e: std::io::Error| format!("could not verify the release: {e}");
    fx.mkdir_all(work, 0o700).map_err(io)?;
    let sig = work.join("statement.sig");
    let allowed = work.join("allowed_signers");
    fx.write(&sig, &signature, 0o600).map_err(io)?;
    fx.write(&allowed, allowed_signers(index).as_bytes(), 0o600)
        .map_err(io)?;
    let (allowed_s, sig_s) = (allowed.display().to_string(), sig.display().to_string());
    let found = fx
        .run(
            &Cmd::new(
                "ssh-keygen",
                &["-Y", "find-principals", "-f", &allowed_s, "-s", &sig_s],
            )
            .input(&statement)
            .within(60),
        )
        .map_err(io)?;
    let signer = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if !found.success || signer.is_empty() {
        return Err(format!(
            "the {what} is signed by no key this host trusts (deploy.pull.signers of generation {live})"
        ));
    }
    let verified = fx
        .run(
            &Cmd::new(
                "ssh-keygen",
                &[
                    "-Y", "verify", "-f", &allowed_s, "-I", &signer, "-n", NAMESPACE, "-s", &sig_s,
                ],
            )
            .input(&statement)
            .within(60),
        )
        .map_err(io)?;
    if !verified.success {
        return Err(format!(
            "the {what}'s signature by {signer} does not verify: the statement was changed after it was signed"
        ));
    }
    Ok((statement, signer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn statements_of_both_versions_read_and_others_do_not() {
        let two = format!("sitec-release 2\nsite s\nhost nas\nbundle {H}\nagent {H}\nserial 42\n");
        assert_eq!(
            Statement::parse(&two),
            Some(Statement {
                site: "s".into(),
                host: "nas".into(),
                bundle: H.into(),
                agent: Some(H.into()),
                serial: 42,
            })
        );
        let one = format!("sitec-release 1\nsite s\nhost nas\nbundle {H}\nserial 42\n");
        assert_eq!(Statement::parse(&one).unwrap().agent, None);
        for bad in [
            two.replace("serial 42", "serial 1234567890123456789"),
            two.replace("serial 42", "serial -1"),
            two.replace("agent ", "agent x"),
            two.replace("sitec-release 2", "sitec-release 3"),
            format!("{two}extra line\n"),
            two.replace("host nas", "host nas lb"),
            one.replace("bundle ", "bundle X"),
        ] {
            assert_eq!(Statement::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_signature_is_split_from_its_line_on() {
        let (s, sig) =
            split(b"a\nb\n-----BEGIN SSH SIGNATURE-----\nxyz\n-----END SSH SIGNATURE-----\n");
        assert_eq!(s, b"a\nb\n");
        assert!(sig.starts_with(b"-----BEGIN SSH SIGNATURE-----\nxyz"));
        assert_eq!(split(b"a\n").1, b"");
    }
}

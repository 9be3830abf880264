//! A bundle's canonical listing and its hash.
//!
//! For every regular file except `BUNDLE`, sorted by path bytewise, one
//! line `<mode> <sha256 hex> <path>\n`, where the mode is what git keeps
//! (`0755` executable, `0644` otherwise), so a fresh clone of `out/`
//! verifies. The bundle's hash is the sha256 of the listing; `BUNDLE`
//! holds it.

use sha2::{Digest, Sha256};

/// The sha256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether `s` is a sha256 as [`sha256_hex`] writes it: 64 lowercase hex
/// digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lowercase hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(2 * digest.len());
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The mode git keeps of a file, which is what `out/` holds and the
/// listing hashes: 0755 when any executable bit is set, 0644 otherwise.
/// The mode a file is installed with is the manifest's.
pub fn kept_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

/// The canonical listing of `files` (path, mode, bytes), which must not
/// include `BUNDLE`.
pub fn listing<'a>(files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>) -> String {
    listing_by(files, kept_mode)
}

/// The listing of `files` with the modes they have rather than the ones
/// git keeps: how a store copy an older sitec pushed (one with no index)
/// was hashed on the host.
pub fn listing_as_is<'a>(files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>) -> String {
    listing_by(files, |mode| mode & 0o7777)
}

fn listing_by<'a>(
    files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>,
    mode_of: fn(u32) -> u32,
) -> String {
    let mut lines: Vec<(&str, String)> = files
        .into_iter()
        .map(|(path, mode, content)| {
            let line = format!("{:04o} {} {path}\n", mode_of(mode), sha256_hex(content));
            (path, line)
        })
        .collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    lines.into_iter().map(|(_, l)| l).collect()
}

/// The hash of a bundle of `files`: the sha256 of their listing.
pub fn bundle_hash<'a>(files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>) -> String {
    sha256_hex(listing(files).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_a_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn listing_is_sorted_bytewise_with_four_digit_modes() {
        let l = listing([
            ("b", 0o600, &b"x"[..]),
            ("B", 0o755, &b""[..]),
            ("a/c", 0o644, &b"y"[..]),
        ]);
        let paths: Vec<&str> = l.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(paths, ["B", "a/c", "b"]);
        assert!(l.starts_with(
            "0755 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 B\n"
        ));
        assert!(l.ends_with(" b\n"));
        // Git keeps only the executable bit: 0600 hashes as 0644.
        assert!(l.lines().nth(2).unwrap().starts_with("0644 "));
    }
}

//! Fetching from the release server: with curl, http and https only, no
//! redirect to anything but https, at most a given size (what a server
//! sends beyond it is never kept), every byte checked against a signed
//! hash before it is kept.

use crate::effects::{Cmd, Effects};

/// Why a fetch failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub why: String,
    /// curl's exit code (`None`: it did not run to its end).
    pub code: Option<i32>,
    /// The server refused the connection (curl's exit 7 is a refused
    /// connection and an unreachable network alike; only its trace tells
    /// them apart).
    pub refused: bool,
}

impl Failed {
    /// Whether the server was reached: it refused the connection, or
    /// answered with an HTTP error. No route, an unreachable network or
    /// host, a timeout are not.
    pub fn reached(&self) -> bool {
        (self.code == Some(7) && self.refused) || self.code == Some(22)
    }
}

/// The bytes at `url`, at most `limit` of them.
pub fn fetch(fx: &mut impl Effects, url: &str, limit: usize) -> Result<Vec<u8>, Failed> {
    let max = limit.to_string();
    let mut cmd = Cmd::new(
        "curl",
        &[
            // -q: no ~/.curlrc; -v: the trace that tells a refused
            // connection from an unreachable network.
            "-q",
            "-v",
            "-fsS",
            "--proto",
            "=http,https",
            "--proto-redir",
            "=https",
            "-L",
            "--max-redirs",
            "3",
            "--connect-timeout",
            "10",
            "--max-time",
            "120",
            "--max-filesize",
            &max,
            "-o",
            "-",
            "--",
            url,
        ],
    );
    // curl's --max-filesize does not stop a response of no stated length:
    // no more than the limit is kept, and one byte more is a failure.
    cmd.stdout_limit = Some(limit);
    let ran = fx.run(&cmd).map_err(|e| Failed {
        why: format!("could not fetch {url}: {e}"),
        code: None,
        refused: false,
    })?;
    if ran.stdout.len() > limit {
        return Err(Failed {
            why: format!("{url} is larger than {limit} bytes"),
            code: ran.code,
            refused: false,
        });
    }
    if !ran.success {
        let trace = String::from_utf8_lossy(&ran.stderr);
        let said = trace
            .lines()
            .rfind(|l| l.starts_with("curl: "))
            .unwrap_or("")
            .to_string();
        // Debian 12's curl writes "connect to A port P failed: ...", 13's
        // "... from B port Q failed: ...".
        let refused = trace
            .lines()
            .any(|l| l.starts_with("* connect to ") && l.ends_with(" failed: Connection refused"));
        return Err(Failed {
            why: format!("could not fetch {url}: {said}"),
            code: ran.code,
            refused,
        });
    }
    Ok(ran.stdout)
}

/// One line of a signed listing: a file of the bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub mode: u32,
    pub sha256: String,
    pub path: String,
}

/// A bundle's listing as the server serves it: plain relative paths only,
/// as a bundle has (the listing is signed, but a path is never taken
/// outside the copy). The error is the number of the first line that is
/// not a bundle file.
pub fn parse_listing(text: &str) -> Result<Vec<Listed>, usize> {
    let path_ok = |p: &str| {
        let first = p.bytes().next();
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._@:+=,-/".contains(&b);
        first.is_some_and(|b| b != b'/' && allowed(b))
            && p.bytes().all(allowed)
            && !p.ends_with('/')
            && !p.contains("//")
            && p.split('/').all(|c| c != "." && c != "..")
            && p != "BUNDLE"
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                [mode @ ("0644" | "0755"), sum, path]
                    if sitec_format::is_sha256_hex(sum) && path_ok(path) =>
                {
                    Ok(Listed {
                        mode: if *mode == "0755" { 0o755 } else { 0o644 },
                        sha256: sum.to_string(),
                        path: path.to_string(),
                    })
                }
                _ => Err(i + 1),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_listing_takes_bundle_paths_only() {
        let good = format!("0644 {H} etc/a\n0755 {H} etc/b-c/d.sh\n");
        assert_eq!(parse_listing(&good).unwrap().len(), 2);
        for (bad, line) in [
            (format!("0644 {H} etc/a\n0600 {H} etc/b\n"), 2),
            (format!("0644 {H} ../etc/a\n"), 1),
            (format!("0644 {H} etc/./a\n"), 1),
            (format!("0644 {H} /etc/a\n"), 1),
            (format!("0644 {H} etc//a\n"), 1),
            (format!("0644 {H} etc/a/\n"), 1),
            (format!("0644 {H} BUNDLE\n"), 1),
            (format!("0644 {H} etc/a b\n"), 1),
            (format!("0644 {} etc/a\n", H.to_uppercase()), 1),
            (format!("0644 {H}0 etc/a\n"), 1),
        ] {
            assert_eq!(parse_listing(&bad), Err(line), "{bad}");
        }
    }

    #[test]
    fn only_a_refused_connection_or_an_http_error_is_a_server_reached() {
        let f = |code, refused| Failed {
            why: String::new(),
            code: Some(code),
            refused,
        };
        assert!(f(7, true).reached());
        assert!(f(22, false).reached());
        assert!(!f(7, false).reached(), "no route, unreachable network");
        assert!(!f(28, false).reached(), "a timeout");
        assert!(!f(6, false).reached(), "no such host");
    }
}

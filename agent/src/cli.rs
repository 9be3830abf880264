//! The agent's command line, as data: what `main` runs.
//!
//! The commands and their arguments are `activate`'s
//! (docs/host-protocol.md); those the Rust agent runs so far are here.

use std::path::PathBuf;

/// A command of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `hash DIR`: the hash of the bundle in DIR, as `BUNDLE` holds it.
    Hash { dir: PathBuf },
}

/// A command line the agent does not take, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage(pub String);

pub const USAGE: &str = "usage: sitec-agent hash DIR";

impl Command {
    pub fn parse(args: &[String]) -> Result<Command, Usage> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["hash", dir] if !dir.starts_with('-') => Ok(Command::Hash {
                dir: PathBuf::from(dir),
            }),
            ["hash", ..] => Err(Usage("hash takes one bundle directory".to_string())),
            [other, ..] => Err(Usage(format!("no command '{other}'"))),
            [] => Err(Usage("a command is needed".to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Usage> {
        Command::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn hash_takes_one_directory() {
        assert_eq!(
            parse(&["hash", "out/s/h"]),
            Ok(Command::Hash {
                dir: PathBuf::from("out/s/h")
            })
        );
        assert!(parse(&["hash"]).is_err());
        assert!(parse(&["hash", "a", "b"]).is_err());
        assert_eq!(
            parse(&["frobnicate"]),
            Err(Usage("no command 'frobnicate'".into()))
        );
    }
}

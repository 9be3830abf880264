//! The agent's command line, as data: what `main` runs.
//!
//! The commands and their arguments are `activate`'s
//! (docs/host-protocol.md); those the Rust agent runs so far are here.

use std::path::PathBuf;

use crate::index::Gen;
use crate::lock::Wait;

/// A command of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `hash DIR`: the hash of the bundle in DIR, as `BUNDLE` holds it.
    Hash { dir: PathBuf },
    /// `confirm [N]`: keeps the generation awaiting confirmation.
    Confirm { generation: Option<Gen> },
    /// `rollback [N]`: back to N, or to the generation kept before.
    Rollback { to: Option<Gen> },
    /// `expire N [TOKEN]`: the confirmation timer of generation N.
    Expire {
        generation: Gen,
        token: Option<String>,
    },
    /// `settle`: what every activation does first, and nothing else.
    Settle,
    /// `status [N]`.
    Status { generation: Option<Gen> },
    /// `list`: the generations.
    List,
    /// `boot`: sitec-boot.service.
    Boot,
    /// `boot-expire`: the boot's confirmation timer.
    BootExpire,
    /// `confirm-boot [NAME]`.
    ConfirmBoot { name: Option<String> },
    /// `receive NAME`: `store/.incoming-NAME` becomes the store copy.
    Receive { name: String },
    /// `plan [--stdin] NAME`: what a switch would do; with `--stdin`, the
    /// bundle's index comes on stdin (`index`, read by `main`).
    Plan { name: String, index: Option<String> },
    /// `drift`: whether the host still is its live generation.
    Drift,
    /// `check [--stand-ins] NAME|DIR`.
    Check { bundle: Bundle, stand_ins: bool },
    /// `pull`: one pull (sitec-pull.service).
    Pull,
    /// `pull-apply`: applies the release a pull fetched (in a unit of its
    /// own).
    PullApply,
    /// `switch [--confirm-timeout S] [--action-timeout S]
    /// [--await-confirmation] [--pushed-at T] [--release S] NAME`.
    Switch {
        name: String,
        confirm_timeout: u64,
        action_timeout: Option<u64>,
        await_confirmation: bool,
        /// `--pushed-at T`: the operator's clock when push ran it (epoch
        /// seconds): in pull mode, no release signed before it is taken.
        pushed_at: Option<u64>,
        /// `--release S`: the serial of the pulled release it applies:
        /// refused when a push since is newer.
        release: Option<u64>,
    },
}

/// The bundle a command runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bundle {
    /// A store copy, by its name (HASH-HOST).
    Store(String),
    /// A directory (a path with a slash), off the host.
    Dir(PathBuf),
}

/// A command line the agent does not take, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage(pub String);

pub const USAGE: &str = "usage: sitec-agent check [--stand-ins] NAME|DIR | switch [--confirm-timeout S] [--action-timeout S] [--await-confirmation] [--pushed-at T] [--release S] NAME | pull | receive NAME | plan [--stdin] NAME | drift | confirm [N] | confirm-boot [NAME] | rollback [N] | status [N] | list | settle | hash DIR | boot | boot-expire | expire N";

fn generation(arg: &str, what: &str) -> Result<Gen, Usage> {
    if !arg.is_empty() && arg.len() <= 18 && arg.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Gen(arg.parse().expect("at most 18 digits")))
    } else {
        Err(Usage(format!(
            "{what} takes a generation number, not '{arg}'"
        )))
    }
}

impl Command {
    pub fn parse(args: &[String]) -> Result<Command, Usage> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(match args.as_slice() {
            ["hash", dir] if !dir.starts_with('-') => Command::Hash {
                dir: PathBuf::from(dir),
            },
            ["hash", ..] => return Err(Usage("hash takes one bundle directory".to_string())),
            ["confirm"] => Command::Confirm { generation: None },
            ["confirm", n] => Command::Confirm {
                generation: Some(generation(n, "confirm")?),
            },
            ["rollback"] => Command::Rollback { to: None },
            ["rollback", n] => Command::Rollback {
                to: Some(generation(n, "rollback")?),
            },
            ["expire", n] => Command::Expire {
                generation: generation(n, "expire")?,
                token: None,
            },
            ["expire", n, token] if store_name(token) => Command::Expire {
                generation: generation(n, "expire")?,
                token: Some(token.to_string()),
            },
            ["settle"] => Command::Settle,
            ["status"] => Command::Status { generation: None },
            ["status", n] => Command::Status {
                generation: Some(generation(n, "status")?),
            },
            ["list"] => Command::List,
            ["boot"] => Command::Boot,
            ["boot-expire"] => Command::BootExpire,
            ["confirm-boot"] => Command::ConfirmBoot { name: None },
            ["confirm-boot", name] if store_name(name) => Command::ConfirmBoot {
                name: Some(name.to_string()),
            },
            ["check", rest @ ..] => {
                let (stand_ins, rest) = match rest {
                    ["--stand-ins", rest @ ..] => (true, rest),
                    rest => (false, rest),
                };
                let [b] = rest else {
                    return Err(Usage("usage: check [--stand-ins] NAME|DIR".to_string()));
                };
                let bundle = if b.contains('/') {
                    Bundle::Dir(PathBuf::from(b))
                } else if store_name(b) {
                    Bundle::Store(b.to_string())
                } else {
                    return Err(Usage(format!(
                        "check needs a bundle's store name (HASH-HOST), not '{b}'"
                    )));
                };
                Command::Check { bundle, stand_ins }
            }
            ["switch", rest @ ..] => switch(rest)?,
            ["plan", name] if store_name(name) => Command::Plan {
                name: name.to_string(),
                index: None,
            },
            ["plan", "--stdin", name] if store_name(name) => Command::Plan {
                name: name.to_string(),
                index: Some(String::new()),
            },
            ["plan", ..] => return Err(Usage("usage: plan [--stdin] NAME".to_string())),
            ["drift"] => Command::Drift,
            ["pull"] => Command::Pull,
            ["pull-apply"] => Command::PullApply,
            ["receive", name] if store_name(name) => Command::Receive {
                name: name.to_string(),
            },
            ["receive", ..] => {
                return Err(Usage(
                    "usage: receive NAME (of store/.incoming-NAME, where push puts a bundle)"
                        .to_string(),
                ));
            }
            ["confirm-boot", name] => {
                return Err(Usage(format!(
                    "confirm-boot takes a bundle's store name (HASH-HOST), not '{name}'"
                )));
            }
            [other, ..] => {
                return Err(Usage(format!(
                    "no command '{other}' (or not these arguments)"
                )));
            }
            [] => return Err(Usage("a command is needed".to_string())),
        })
    }

    /// Whether the command takes the activation lock, and how long it
    /// waits for it.
    pub fn lock(&self) -> Option<Wait> {
        use std::time::Duration;
        match self {
            Command::Hash { .. } | Command::Status { .. } | Command::List => None,
            // A check changes nothing of the host's state, nor do these.
            Command::Check { .. } | Command::Plan { .. } | Command::Drift => None,
            // Pulls take a lock of their own; their activations take this
            // one, each as an operator's would.
            Command::Pull | Command::PullApply => None,
            // The timers wait for as long as the activation they guard.
            Command::Expire { .. } | Command::BootExpire => Some(Wait::Forever),
            _ => Some(Wait::Up(Duration::from_secs(120))),
        }
    }

    /// Whether the command may change the host's state (its status for
    /// fleets is written after it).
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            Command::Hash { .. }
                | Command::Status { .. }
                | Command::List
                | Command::Check { .. }
                | Command::Plan { .. }
                | Command::Drift
        )
    }
}

fn switch(args: &[&str]) -> Result<Command, Usage> {
    let usage = || {
        Usage(
            "usage: switch [--confirm-timeout S] [--action-timeout S] [--await-confirmation] [--pushed-at T] [--release S] NAME"
                .to_string(),
        )
    };
    let (mut name, mut confirm_timeout, mut action_timeout, mut await_confirmation) =
        (None, 60, None, false);
    let (mut pushed_at, mut release) = (None, None);
    let mut rest = args;
    while let [first, tail @ ..] = rest {
        match *first {
            "--await-confirmation" => {
                await_confirmation = true;
                rest = tail;
            }
            "--pushed-at" | "--release" => {
                let n = tail
                    .first()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| Usage(format!("{first} needs a number")))?;
                if *first == "--pushed-at" {
                    pushed_at = Some(n);
                } else {
                    release = Some(n);
                }
                rest = &tail[1..];
            }
            "--confirm-timeout" | "--action-timeout" => {
                let secs = tail
                    .first()
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| Usage(format!("{first} needs a number of seconds >= 1")))?;
                if *first == "--confirm-timeout" {
                    confirm_timeout = secs;
                } else {
                    action_timeout = Some(secs);
                }
                rest = &tail[1..];
            }
            o if o.starts_with('-') => return Err(Usage(format!("switch: unknown option {o}"))),
            n => {
                if name.is_some() {
                    return Err(Usage("switch takes one bundle".to_string()));
                }
                if !store_name(n) || n.starts_with(".incoming-") {
                    return Err(Usage(format!(
                        "switch needs a bundle's store name (HASH-HOST), not '{n}'"
                    )));
                }
                name = Some(n.to_string());
                rest = tail;
            }
        }
    }
    Ok(Command::Switch {
        name: name.ok_or_else(usage)?,
        confirm_timeout,
        action_timeout,
        await_confirmation,
        pushed_at,
        release,
    })
}

/// A bundle's store name: a plain name, nothing a path could hide in.
fn store_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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
        for bad in [&["hash"][..], &["hash", "a", "b"]] {
            assert_eq!(
                parse(bad),
                Err(Usage("hash takes one bundle directory".into()))
            );
        }
    }

    #[test]
    fn generations_are_numbers_and_names_plain() {
        assert_eq!(
            parse(&["rollback", "3"]),
            Ok(Command::Rollback { to: Some(Gen(3)) })
        );
        assert_eq!(
            parse(&["rollback", "-1"]),
            Err(Usage("rollback takes a generation number, not '-1'".into()))
        );
        assert_eq!(
            parse(&["confirm-boot", "../x"]),
            Err(Usage(
                "confirm-boot takes a bundle's store name (HASH-HOST), not '../x'".into()
            ))
        );
        assert!(parse(&["confirm-boot", "ab12-host"]).is_ok());
        assert_eq!(
            parse(&["frobnicate"]),
            Err(Usage(
                "no command 'frobnicate' (or not these arguments)".into()
            ))
        );
        assert!(parse(&["status"]).unwrap().lock().is_none());
        assert!(parse(&["settle"]).unwrap().lock().is_some());
    }
}

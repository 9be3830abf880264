//! The health checks of a pulled generation: its units, something
//! listening on the deploy port, and its own release fetched again and
//! verified with its own signers (so that it can pull the next one).

use std::collections::BTreeSet;

use sitec_format::{Action, Index, UnitState};

use crate::effects::{Cmd, Effects};

/// A unit as `systemctl show` has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitRun {
    pub unit: String,
    pub active: String,
    pub result: String,
    pub kind: String,
    pub invocation: String,
    pub restarts: String,
}

/// Every unit `index` enables, as the host runs it now.
pub fn unit_runs(fx: &mut impl Effects, index: &Index) -> Vec<UnitRun> {
    index
        .units
        .iter()
        .filter(|(_, s)| **s == UnitState::Enabled)
        .map(|(unit, _)| {
            let shown = fx
                .run(
                    &Cmd::new(
                        "systemctl",
                        &[
                            "show",
                            "-p",
                            "ActiveState",
                            "-p",
                            "Result",
                            "-p",
                            "Type",
                            "-p",
                            "InvocationID",
                            "-p",
                            "NRestarts",
                            unit,
                        ],
                    )
                    .within(30),
                )
                .map(|r| String::from_utf8_lossy(&r.stdout).into_owned())
                .unwrap_or_default();
            let get = |k: &str| {
                shown
                    .lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|l| l.strip_prefix('=')))
                    .filter(|v| !v.is_empty())
                    .unwrap_or("-")
                    .to_string()
            };
            UnitRun {
                unit: unit.clone(),
                active: get("ActiveState"),
                result: get("Result"),
                kind: get("Type"),
                invocation: get("InvocationID"),
                restarts: get("NRestarts"),
            }
        })
        .collect()
}

/// What the units of generation `index` came to, judged against `before`
/// (as they ran before the switch): a unit the switch started or
/// restarted (an action names it), or that was running before, must run
/// (a oneshot may have finished with success); a unit that failed since
/// fails the check; a unit already down that the release does not touch
/// is not the release's to judge. The error is why.
pub fn units_healthy(index: &Index, before: &[UnitRun], after: &[UnitRun]) -> Result<(), String> {
    let acted: BTreeSet<&str> = index
        .files
        .values()
        .flat_map(|f| &f.actions)
        .filter_map(|a| match a {
            Action::Restart(u) | Action::Reload(u) => Some(u.as_str()),
            _ => None,
        })
        .collect();
    for u in after {
        let was = before
            .iter()
            .find(|b| b.unit == u.unit)
            .map(|b| b.active.as_str());
        let judged = acted.contains(u.unit.as_str()) || was == Some("active");
        let res = if u.result == "-" {
            String::new()
        } else {
            format!(" ({})", u.result)
        };
        let why = match (u.active.as_str(), u.result.as_str(), u.kind.as_str()) {
            ("active" | "reloading", _, _) => None,
            ("inactive", "success", "oneshot") => None,
            ("activating", _, _) => Some(format!("{} is still starting", u.unit)),
            ("failed", _, _) if was == Some("failed") && !judged => None,
            ("failed", _, _) => Some(format!("{} is failed{res}", u.unit)),
            (state, _, _) if judged => Some(format!("{} is {state}{res}", u.unit)),
            _ => None,
        };
        if let Some(why) = why {
            return Err(why);
        }
    }
    Ok(())
}

/// The units as the health checks hold them steady: each one's
/// invocation and restart count, equal 5 s apart when nothing restarted.
pub fn steady(runs: &[UnitRun]) -> Vec<(String, String, String)> {
    runs.iter()
        .map(|u| (u.unit.clone(), u.invocation.clone(), u.restarts.clone()))
        .collect()
}

/// Whether something listens on TCP `port` (sshd on the deploy port: the
/// address the host is reached at may be one of a NAT).
pub fn listening(fx: &mut impl Effects, port: &str) -> bool {
    let filter = format!("sport = :{port}");
    fx.run(&Cmd::new("ss", &["-Hltn", &filter]).within(30))
        .is_ok_and(|r| r.success && !r.stdout.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(unit: &str, active: &str, result: &str, kind: &str) -> UnitRun {
        UnitRun {
            unit: unit.into(),
            active: active.into(),
            result: result.into(),
            kind: kind.into(),
            invocation: "i".into(),
            restarts: "0".into(),
        }
    }

    fn index(actions: &str) -> Index {
        Index::parse(&format!("f\tetc/a\tab\t0644\tfalse\t-\t{actions}\n")).unwrap()
    }

    #[test]
    fn a_unit_the_release_touches_or_that_ran_must_run() {
        let i = index("restart:a.service");
        let ok = |after: &[UnitRun], before: &[UnitRun]| units_healthy(&i, before, after);
        assert_eq!(
            ok(&[run("a.service", "active", "success", "simple")], &[]),
            Ok(())
        );
        assert_eq!(
            ok(&[run("a.service", "inactive", "-", "simple")], &[]),
            Err("a.service is inactive".into())
        );
        assert_eq!(
            ok(&[run("a.service", "failed", "exit-code", "simple")], &[]),
            Err("a.service is failed (exit-code)".into())
        );
        assert_eq!(
            ok(&[run("o.service", "inactive", "success", "oneshot")], &[]),
            Ok(())
        );
        assert_eq!(
            ok(&[run("b.service", "activating", "-", "simple")], &[]),
            Err("b.service is still starting".into())
        );
        // Down before, and not the release's: not judged.
        let down = [run("b.service", "failed", "exit-code", "simple")];
        assert_eq!(ok(&down, &down), Ok(()));
        assert_eq!(
            ok(&[run("b.service", "inactive", "-", "simple")], &[]),
            Ok(())
        );
        // Ran before: must still run.
        assert_eq!(
            ok(
                &[run("b.service", "inactive", "-", "simple")],
                &[run("b.service", "active", "success", "simple")]
            ),
            Err("b.service is inactive".into())
        );
        // Failed since it ran: fails.
        assert_eq!(
            ok(&down, &[run("b.service", "active", "success", "simple")]),
            Err("b.service is failed (exit-code)".into())
        );
    }
}

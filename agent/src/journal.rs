//! The journal names the transition in progress: `FROM TO KIND`, written
//! durably before the first managed path changes and removed after the
//! transition's result is recorded. Whoever finds it settles it: a switch
//! is undone (back to FROM), a rollback of any kind is finished (on to TO,
//! the safer generation).

use std::fmt;

use crate::index::Gen;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A new generation going live.
    Switch,
    /// The operator's rollback.
    Rollback,
    /// The confirmation timer's rollback of a generation nobody confirmed.
    Unconfirmed,
    /// The rollback of a boot nobody confirmed.
    BootUnconfirmed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Switch => "switch",
            Kind::Rollback => "rollback",
            Kind::Unconfirmed => "unconfirmed",
            Kind::BootUnconfirmed => "boot-unconfirmed",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Switch,
            Kind::Rollback,
            Kind::Unconfirmed,
            Kind::BootUnconfirmed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal {
    pub from: Gen,
    pub to: Gen,
    pub kind: Kind,
}

/// A journal that is not `FROM TO KIND`: nothing is changed, the operator
/// looks (activate's exit 2).
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the journal is corrupt ('{}')", self.0)
    }
}

impl Journal {
    pub fn parse(text: &str) -> Result<Journal, Corrupt> {
        let corrupt = || Corrupt(text.trim_end().to_string());
        let mut words = text.split_whitespace();
        let number = |w: Option<&str>| -> Option<Gen> {
            let w = w?;
            if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            w.parse().ok().map(Gen)
        };
        let from = number(words.next()).ok_or_else(corrupt)?;
        let to = number(words.next()).ok_or_else(corrupt)?;
        // An earlier version wrote no kind: a switch.
        let kind = match words.next() {
            None => Kind::Switch,
            Some(k) => Kind::parse(k).ok_or_else(corrupt)?,
        };
        if words.next().is_some() {
            return Err(corrupt());
        }
        Ok(Journal { from, to, kind })
    }

    pub fn format(&self) -> String {
        format!("{} {} {}\n", self.from, self.to, self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_reads_back_what_was_written() {
        for kind in [
            Kind::Switch,
            Kind::Rollback,
            Kind::Unconfirmed,
            Kind::BootUnconfirmed,
        ] {
            let j = Journal {
                from: Gen(3),
                to: Gen(4),
                kind,
            };
            assert_eq!(Journal::parse(&j.format()), Ok(j));
        }
        assert_eq!(Journal::parse("1 2\n").unwrap().kind, Kind::Switch);
    }

    #[test]
    fn anything_else_is_corrupt() {
        for bad in [
            "",
            "1",
            "1 x switch",
            "1 2 sideways",
            "1 2 switch extra",
            "-1 2",
        ] {
            assert!(Journal::parse(bad).is_err(), "{bad:?}");
        }
    }
}

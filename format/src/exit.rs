//! The exit codes of the host agent and of `push`, as the operator's
//! scripts see them (docs/host-protocol.md, "Exit codes").

/// How an agent command or a push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done as asked.
    Ok,
    /// `push --status` and `drift`: a host drifted from what `out/` says.
    Drifted,
    /// Usage, I/O, transfer or ssh error; a state the agent did not write.
    Error,
    /// Refused before the switch: nothing changed.
    Refused,
    /// An action failed and the host rolled back.
    RolledBack,
    /// Not confirmed in time, and rolled back (a late `confirm` too).
    Unconfirmed,
    /// Another activation holds the lock, or a generation or a boot
    /// awaits confirmation.
    Busy,
    /// Stopped by signal N: 128 + N. `push` never passes it on.
    Signal(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Drifted => 1,
            Exit::Error => 2,
            Exit::Refused => 3,
            Exit::RolledBack => 4,
            Exit::Unconfirmed => 5,
            Exit::Busy => 6,
            Exit::Signal(n) => 128u8.saturating_add(n),
        }
    }

    /// The exit a code means; `None` for a code neither side uses.
    pub fn from_code(code: u8) -> Option<Exit> {
        Some(match code {
            0 => Exit::Ok,
            1 => Exit::Drifted,
            2 => Exit::Error,
            3 => Exit::Refused,
            4 => Exit::RolledBack,
            5 => Exit::Unconfirmed,
            6 => Exit::Busy,
            129.. => Exit::Signal(code - 128),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back() {
        for code in 0..=255u8 {
            if let Some(e) = Exit::from_code(code) {
                assert_eq!(e.code(), code);
            }
        }
        assert_eq!(Exit::Signal(15).code(), 143);
        assert_eq!(Exit::from_code(7), None);
    }
}

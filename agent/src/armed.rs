//! `armed`: the generation awaiting confirmation, the one to go back to,
//! and the deadline (seconds since the epoch), `GEN PREV DEADLINE`.

use crate::index::Gen;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Armed {
    pub generation: Gen,
    pub previous: Gen,
    pub deadline: u64,
}

impl Armed {
    pub fn parse(text: &str) -> Option<Armed> {
        let mut words = text.split_whitespace();
        let mut number = || -> Option<u64> {
            let w = words.next()?;
            if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            w.parse().ok()
        };
        let armed = Armed {
            generation: Gen(number()?),
            previous: Gen(number()?),
            deadline: number()?,
        };
        words.next().is_none().then_some(armed)
    }

    pub fn format(&self) -> String {
        format!("{} {} {}\n", self.generation, self.previous, self.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_reads_back_and_refuses_anything_else() {
        let a = Armed {
            generation: Gen(3),
            previous: Gen(2),
            deadline: 1_800_000_000,
        };
        assert_eq!(Armed::parse(&a.format()), Some(a));
        for bad in ["", "3 2", "3 2 x", "3 2 1 0", "-3 2 1"] {
            assert_eq!(Armed::parse(bad), None, "{bad:?}");
        }
    }
}

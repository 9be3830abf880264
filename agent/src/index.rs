//! Generation numbers: 0 is the backup (the host as sitec found it),
//! every switch takes the next.

use std::fmt;

/// A generation number; 0 is the backup (the host as sitec found it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gen(pub u64);

impl fmt::Display for Gen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

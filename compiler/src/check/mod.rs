//! Stage 3: checks that a contract cannot express alone, across fields and
//! hosts. Each check lives in its own file with a stable code; all run, and
//! every finding is reported together, sorted by file and line.

use crate::diagnostic::Diagnostic;
use crate::model::Site;

mod address_sets;
mod mesh_members;
mod service_kind;

/// A check: reads the site, appends what it finds.
type Check = fn(&Site, &mut Vec<Diagnostic>);

/// Every check, with its codes, in a fixed order.
const CHECKS: &[Check] = &[
    mesh_members::check,
    address_sets::check,
    service_kind::check,
];

/// Runs every check and returns the findings sorted by source position.
pub(crate) fn run(site: &Site) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for check in CHECKS {
        check(site, &mut found);
    }
    found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    found
}

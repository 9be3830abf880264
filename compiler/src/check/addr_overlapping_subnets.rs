//! `addr::overlapping-subnets`
//!
//! What it catches: two interfaces, bridges or tunnels of one host whose
//! subnets overlap.
//!
//! Why it matters: the host gets two connected routes for the same
//! addresses; replies leave through whichever interface the kernel picks,
//! which breaks the traffic of one of them (and often the management path).
//!
//! Example: `vmbr0.address = "10.0.200.11/24"` and `vmbr1.address = "10.0.200.129/25"`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;

use super::facts;

pub(crate) const CODE: &str = "addr::overlapping-subnets";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let assigned = facts::assigned(site, host_name, host);
        for (i, a) in assigned.iter().enumerate() {
            for b in &assigned[i + 1..] {
                let (na, nb) = (a.net.network(), b.net.network());
                if !na.overlaps(nb) {
                    continue;
                }
                out.push(
                    Diagnostic::error(
                        CODE,
                        format!(
                            "subnets {na} of {} and {nb} of {} overlap on `{host_name}`",
                            a.iface, b.iface
                        ),
                    )
                    .help("give each interface of a host its own subnet")
                    .at(site, &b.path, "overlaps")
                    .at(site, &a.path, "this subnet"),
                );
            }
        }
    }
}

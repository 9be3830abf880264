//! `zaino::shard-amount`
//!
//! What it catches: a Zaino `map_shard_amount` that is not a power of two.
//!
//! Why it matters: Zaino's sharded mempool map requires a power of two and
//! panics at startup otherwise; the container restarts in a loop.
//!
//! Example: `map_shard_amount = 12`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "zaino::shard-amount";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = host.zaino.as_ref().and_then(|z| z.map_shard_amount) else {
            continue;
        };
        if n.is_power_of_two() {
            continue;
        }
        let below = if n < 2 {
            1
        } else {
            1u64 << (63 - n.leading_zeros())
        };
        out.push(
            Diagnostic::error(
                CODE,
                format!("map_shard_amount {n} of Zaino on `{host_name}` is not a power of two"),
            )
            .help(format!(
                "use a power of two such as {below} or {}",
                below * 2
            ))
            .at(
                site,
                &path!["hosts", host_name, "zaino", "map_shard_amount"],
                "not a power of two",
            ),
        );
    }
}

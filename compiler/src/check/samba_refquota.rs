//! `samba::refquota`
//!
//! What it catches: a `refquota` (or `quota`) stated in `zfs` for the dataset
//! of a Time Machine share.
//!
//! Why it matters: the share's `quota` is the one value that drives both
//! `fruit:time machine max size` and the dataset's `refquota`. The ZFS
//! quota and the size Samba advertises must match, or macOS plans backups
//! for space ZFS refuses and they fail with "disk full". A second
//! statement could only disagree.
//!
//! Example: `time_machine.tm.quota = "3T"` and `zfs."tank/tm".refquota = "2T"`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "samba::refquota";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(samba) = &host.samba else { continue };
        for (share, tm) in &samba.time_machine {
            let Some(props) = host.zfs.get(&tm.dataset) else {
                continue;
            };
            for prop in ["refquota", "quota"] {
                if !props.contains_key(prop) {
                    continue;
                }
                out.push(
                    Diagnostic::error(CODE, format!("the {prop} of {} is stated in `zfs`, but Time Machine share {share} sets it from its `quota`", tm.dataset))
                        .help(format!("remove `{prop}` here; change `time_machine.{share}.quota` ({}) instead", tm.quota))
                        .at_name(site, &path!["hosts", host_name, "zfs", &tm.dataset, prop], "second statement of the quota")
                        .at(site, &path!["hosts", host_name, "samba", "time_machine", share, "quota"], "the one value"),
                );
            }
        }
    }
}

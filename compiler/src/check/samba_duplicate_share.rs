//! `samba::duplicate-share`
//!
//! What it catches: two shares of one host (Time Machine or plain) with the
//! same name, compared without case as SMB clients do, or with the same path.
//!
//! Why it matters: smb.conf would hold two sections that clients cannot tell
//! apart, and two shares on one directory mix Time Machine's sparsebundles
//! with other files, or apply two different sets of `valid users` to them.
//!
//! Example: `time_machine.Backup` and `shares.backup`, or two shares with
//! `path = "/tank/timemachine"`.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "samba::duplicate-share";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(samba) = &host.samba else { continue };
        let all = samba
            .time_machine
            .iter()
            .map(|(n, tm)| ("time_machine", n, &tm.path))
            .chain(samba.shares.iter().map(|(n, s)| ("shares", n, &s.path)));
        let mut names: BTreeMap<String, (&str, &str)> = BTreeMap::new();
        let mut paths: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for (kind, name, path) in all {
            let here = path!["hosts", host_name, "samba", kind, name];
            if let Some((k, other)) = names.get(&name.to_lowercase()).copied() {
                out.push(
                    Diagnostic::error(CODE, format!("`{host_name}` has two shares named {name} and {other}; share names are not case-sensitive"))
                        .help("rename one of them")
                        .at_name(site, &here, "this share")
                        .at_name(site, &path!["hosts", host_name, "samba", k, other], "same name"),
                );
            } else {
                names.insert(name.to_lowercase(), (kind, name));
            }
            if let Some((k, other)) = paths.get(path.as_str()).copied() {
                out.push(
                    Diagnostic::error(
                        CODE,
                        format!("shares {other} and {name} of `{host_name}` both serve {path}"),
                    )
                    .help("give each share its own directory")
                    .at(site, &here.field("path"), "this path")
                    .at(
                        site,
                        &path!["hosts", host_name, "samba", k, other, "path"],
                        "already shared",
                    ),
                );
            } else {
                paths.insert(path, (kind, name));
            }
        }
    }
}

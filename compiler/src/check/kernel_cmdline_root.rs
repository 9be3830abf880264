//! `kernel::cmdline-root`
//!
//! What it catches: a host with `bootloader = 'systemd_boot` whose
//! `kernel.cmdline` has no `root=` argument.
//!
//! Why it matters: with systemd-boot the file is the whole kernel command
//! line (proxmox-boot-tool copies it to every boot entry): without `root=`
//! the kernel cannot find the root file system and the host does not come
//! back from its next reboot. No rollback helps a host that does not boot.
//!
//! Example: `kernel = { bootloader = 'systemd_boot, cmdline = ["intel_iommu=on"] }`
//! on a ZFS root, which needs `"root=ZFS=rpool/ROOT/pve-1", "boot=zfs"` too.

use crate::diagnostic::Diagnostic;
use crate::model::{Bootloader, Site};
use crate::path;

pub(crate) const CODE: &str = "kernel::cmdline-root";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let k = &host.kernel;
        if k.bootloader != Bootloader::SystemdBoot
            || k.cmdline.is_empty()
            || k.cmdline.iter().any(|a| a.starts_with("root="))
        {
            continue;
        }
        out.push(
            Diagnostic::error(CODE, format!("`{host_name}` would not boot: with systemd-boot, `kernel.cmdline` is the whole command line, and it has no `root=`"))
                .help("start it with the host's root, as /etc/kernel/cmdline has it now, e.g. `\"root=ZFS=rpool/ROOT/pve-1\", \"boot=zfs\"`")
                .at(site, &path!["hosts", host_name, "kernel", "cmdline"], "no root="),
        );
    }
}

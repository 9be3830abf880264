//! The kernel: /etc/modules-load.d/sitec.conf (modules loaded at boot, and
//! at once), /etc/modprobe.d/sitec.conf (module options and blacklists,
//! taken into the initramfs) and the command line: a drop-in of
//! /etc/default/grub.d for GRUB, or /etc/kernel/cmdline for Proxmox's
//! systemd-boot. The options and the command line take effect at the next
//! boot: their actions are the ones `Action::REBOOT` names, so `sitec
//! plan`, `activate` and `push` say that a reboot is needed.

use crate::model::Bootloader;

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let kernel = &ctx.host.kernel;
    if !kernel.modules.is_empty() {
        let content = template(
            "modules-load.conf",
            &serde_json::json!({ "header": ctx.header(), "modules": kernel.modules }),
        )?;
        out.files.push(File {
            path: "etc/modules-load.d/sitec.conf".into(),
            mode: 0o644,
            content,
            actions: vec![Action::ModulesLoad],
            validator: None,
            network: false,
        });
    }
    if !kernel.options.is_empty() || !kernel.blacklist.is_empty() {
        let options: Vec<(&str, String)> = kernel
            .options
            .iter()
            .map(|(module, params)| {
                let params: Vec<String> = params
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                (module.as_str(), params.join(" "))
            })
            .collect();
        let content = template(
            "modprobe.conf",
            &serde_json::json!({
                "header": ctx.header(),
                "blacklist": kernel.blacklist,
                "options": options,
            }),
        )?;
        out.files.push(File {
            path: "etc/modprobe.d/sitec.conf".into(),
            mode: 0o644,
            content,
            // Early modules (vfio-pci takes a GPU before its driver does)
            // read their options from the initramfs.
            actions: vec![Action::Initramfs],
            validator: Some(Validator::Modprobe),
            network: false,
        });
    }
    if !kernel.cmdline.is_empty() {
        let args = kernel.cmdline.join(" ");
        let file = match kernel.bootloader {
            Bootloader::Grub => File {
                path: "etc/default/grub.d/sitec.cfg".into(),
                mode: 0o644,
                content: template(
                    "grub.cfg",
                    &serde_json::json!({ "header": ctx.header(), "args": args }),
                )?,
                actions: vec![Action::UpdateGrub],
                validator: Some(Validator::Shell),
                network: false,
            },
            // The whole command line, one line: proxmox-boot-tool reads the
            // file as it is, so it carries no header comment.
            Bootloader::SystemdBoot => File {
                path: "etc/kernel/cmdline".into(),
                mode: 0o644,
                content: format!("{args}\n"),
                actions: vec![Action::ProxmoxBootRefresh],
                validator: None,
                network: false,
            },
        };
        out.files.push(file);
    }
    Ok(())
}

//! /etc/apt/sources.list.d/NAME.sources in deb822 form, each naming the
//! keyring that signs it, and the host's own source files that apt must no
//! longer read (Proxmox's subscription repository on a host without one),
//! managed as files holding no repository. Nothing runs on a change: the
//! next `apt update` reads them.

use super::{File, HostInput, HostOutput, RenderError, Validator, template};

/// Where apt reads source files from.
const DIR: &str = "etc/apt/sources.list.d";

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(apt) = &ctx.host.apt else {
        return Ok(());
    };
    for (name, s) in &apt.sources {
        let types: Vec<&str> = s.types.iter().map(|t| t.as_str()).collect();
        let content = template(
            "apt.sources",
            &serde_json::json!({
                "header": ctx.header(),
                "types": types.join(" "),
                "uris": s.uris.join(" "),
                "suites": s.suites.join(" "),
                "components": s.components.join(" "),
                "architectures": s.architectures.as_ref().map(|a| a.join(" ")),
                "signed_by": s.signed_by,
            }),
        )?;
        out.files
            .push(apt_file(format!("{DIR}/{name}.sources"), content));
    }
    for name in &apt.disabled {
        let content = template(
            "apt.disabled",
            &serde_json::json!({ "header": ctx.header(), "name": name }),
        )?;
        out.files.push(apt_file(format!("{DIR}/{name}"), content));
    }
    Ok(())
}

fn apt_file(path: String, content: String) -> File {
    File {
        path,
        mode: 0o644,
        content,
        actions: vec![],
        validator: Some(Validator::Apt),
        network: false,
    }
}

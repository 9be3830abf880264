//! /etc/chrony/sources.d/sitec.sources: chrony's servers and pools. Debian's
//! chrony.conf reads that directory (`sourcedir`), and `chronyc reload
//! sources` picks a change up without restarting chronyd.

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(time) = &ctx.host.time else {
        return Ok(());
    };
    let content = template(
        "chrony.sources",
        &serde_json::json!({
            "header": ctx.header(),
            "servers": time.servers,
            "pools": time.pools,
        }),
    )?;
    out.files.push(File {
        path: "etc/chrony/sources.d/sitec.sources".into(),
        mode: 0o644,
        content,
        actions: vec![Action::ChronyReload],
        validator: Some(Validator::Chrony),
        network: false,
    });
    out.started_at_boot("chrony.service".into());
    Ok(())
}

//! /etc/samba/smb.conf: a standalone fileserver (SMB3, no NetBIOS, no DFS) with
//! Time Machine shares whose advertised size is the quota that also sets the
//! dataset's ZFS refquota (see `system.rs`).

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(samba) = &ctx.host.samba else {
        return Ok(());
    };
    let time_machine: Vec<_> = samba
        .time_machine
        .iter()
        .map(|(name, tm)| {
            serde_json::json!({
                "name": name, "path": tm.path, "users": tm.users.join(" "), "quota": tm.quota,
            })
        })
        .collect();
    let shares: Vec<_> = samba
        .shares
        .iter()
        .map(|(name, s)| {
            serde_json::json!({
                "name": name, "path": s.path, "users": s.users.join(" "),
                "read_only": s.read_only, "comment": s.comment,
            })
        })
        .collect();
    let content = template(
        "smb.conf",
        &serde_json::json!({
            "header": ctx.header(),
            "workgroup": samba.workgroup.to_uppercase(),
            "server_string": samba.server_string,
            "min_protocol": samba.min_protocol.as_str(),
            "netbios": samba.netbios,
            "map_to_guest": samba.map_to_guest.as_str(),
            "fruit_resource": samba.fruit_resource.as_str(),
            "fruit_locking": samba.fruit_locking.as_str(),
            "dfs": samba.dfs,
            "time_machine": time_machine,
            "shares": shares,
        }),
    )?;
    out.files.push(File {
        path: "etc/samba/smb.conf".into(),
        mode: 0o644,
        content,
        actions: vec![Action::Reload("smbd.service".into())],
        validator: Some(Validator::Testparm),
        network: false,
    });
    out.units
        .extend(samba.unit_states.iter().map(|(k, v)| (k.clone(), *v)));
    Ok(())
}

//! /etc/ssh/sshd_config.d/00-sitec.conf and /etc/ssh/authorized_keys.d/USER:
//! how sshd listens and who logs in with which key. Both can lock the
//! operator out, so a change arms confirm-or-rollback; `ssh::lockout`
//! checks the deploy path first, and `activate check` asks sshd itself
//! (`sshd -T`) whether the deploy user still gets in.

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};

/// sitec's drop-in; Debian's sshd_config includes `sshd_config.d/*.conf`
/// first, and the name sorts before every other drop-in.
pub(crate) const DROP_IN: &str = "etc/ssh/sshd_config.d/00-sitec.conf";

/// The directory of the authorized keys files, one per user.
const KEYS_DIR: &str = "etc/ssh/authorized_keys.d";

/// Where sshd looks for a user's keys when the home directory still counts:
/// OpenSSH's default files.
const HOME_KEYS: &str = ".ssh/authorized_keys .ssh/authorized_keys2";

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(ssh) = &ctx.host.ssh else {
        return Ok(());
    };
    let ours = format!("/{KEYS_DIR}/%u");
    // The default when the site names no keys and keeps the home's.
    let keys_files = match (ssh.authorized_keys.is_empty(), ssh.home_keys) {
        (true, true) => String::new(),
        (_, true) => format!("{HOME_KEYS} {ours}"),
        (_, false) => ours,
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let content = template(
        "sshd_config",
        &serde_json::json!({
            "header": ctx.header(),
            "ports": ssh.ports,
            "listen_addresses": ssh.listen_addresses,
            "root_login": ssh.root_login.as_str(),
            "password": yes_no(ssh.password_authentication),
            "allow_users": ssh.allow_users.as_ref().map(|u| u.join(" ")),
            "keys_files": keys_files,
        }),
    )?;
    out.files.push(File {
        path: DROP_IN.into(),
        mode: 0o644,
        content,
        actions: vec![Action::Reload("ssh.service".into())],
        validator: Some(Validator::Sshd),
        network: true,
    });
    for (user, keys) in &ssh.authorized_keys {
        let content = template(
            "authorized_keys",
            &serde_json::json!({ "header": ctx.header(), "user": user, "keys": keys }),
        )?;
        out.files.push(File {
            path: format!("{KEYS_DIR}/{user}"),
            mode: 0o644,
            content,
            // sshd reads the file at each login: nothing to reload.
            actions: vec![],
            validator: Some(Validator::AuthorizedKeys),
            // A key taken away can be the one the operator logs in with.
            network: true,
        });
    }
    Ok(())
}

//! /etc/systemd/system/sitec-pull.{service,timer}: pull mode
//! (`deploy.pull`). The timer runs the host agent's `pull` every
//! `interval` seconds; the URL, the signers and the timeouts reach the host
//! through the live bundle's index (`p` records), which is what the agent
//! reads.
//!
//! The service file changing only reloads systemd: restarting a oneshot
//! service would start a pull in the middle of the switch. The timer is
//! restarted, which starts it on a first switch and reschedules it after.

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};
use crate::model::UnitState;

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(pull) = &ctx.host.deploy.pull else {
        return Ok(());
    };
    let unit = |name: &str, actions: Vec<Action>| -> Result<File, RenderError> {
        let content = template(
            name,
            &serde_json::json!({ "header": ctx.header(), "interval": pull.interval }),
        )?;
        Ok(File {
            path: format!("etc/systemd/system/{name}"),
            mode: 0o644,
            content,
            actions,
            validator: Some(Validator::SystemdAnalyze),
            network: false,
        })
    };
    out.files
        .push(unit("sitec-pull.service", vec![Action::DaemonReload])?);
    out.files.push(unit(
        "sitec-pull.timer",
        vec![
            Action::DaemonReload,
            Action::Restart("sitec-pull.timer".into()),
        ],
    )?);
    out.units
        .insert("sitec-pull.timer".into(), UnitState::Enabled);
    Ok(())
}

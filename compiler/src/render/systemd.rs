//! /etc/systemd/system/<name>.service: plain services and container services
//! (docker under a fixed UID/GID), plus the unit states activation applies.

use serde::Serialize;

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};
use crate::model::{Container, Exec, Restart, Service, UnitState};

/// A unit as the template writes it.
#[derive(Serialize)]
pub(super) struct UnitSpec {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) after: Vec<String>,
    pub(super) requires: Vec<String>,
    pub(super) user: Option<String>,
    pub(super) exec_start_pre: Vec<String>,
    pub(super) exec_start: String,
    pub(super) exec_stop: Option<String>,
    pub(super) restart: String,
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let units = &ctx.host.units;
    for (name, service) in &units.services {
        let spec = spec_of(name, service)?;
        push_unit(ctx, out, spec, service.state)?;
    }
    out.units
        .extend(units.states.iter().map(|(k, v)| (k.clone(), *v)));
    Ok(())
}

/// Renders a unit file, registers its state and its restart action.
pub(super) fn push_unit(
    ctx: &HostInput,
    out: &mut HostOutput,
    spec: UnitSpec,
    state: UnitState,
) -> Result<(), RenderError> {
    let unit = format!("{}.service", spec.name);
    let content = template(
        "unit.service",
        &serde_json::json!({ "header": ctx.header(), "unit": spec }),
    )?;
    out.files.push(File {
        path: format!("etc/systemd/system/{unit}"),
        mode: 0o644,
        content,
        actions: vec![Action::DaemonReload, Action::Restart(unit.clone())],
        validator: Some(Validator::SystemdAnalyze),
        network: false,
    });
    out.units.insert(unit, state);
    Ok(())
}

fn spec_of(name: &str, s: &Service) -> Result<UnitSpec, RenderError> {
    let restart = s.restart;
    match (&s.exec, &s.container) {
        (Some(exec), None) => Ok(exec_spec(name, &s.description, exec, &s.after, restart)),
        (None, Some(c)) => Ok(container_spec(name, &s.description, c, &s.after, restart)),
        _ => Err(RenderError::Unchecked(format!(
            "service {name} needs exactly one of exec and container"
        ))),
    }
}

fn exec_spec(
    name: &str,
    description: &str,
    e: &Exec,
    after: &[String],
    restart: Restart,
) -> UnitSpec {
    let mut exec_start = e.command.clone();
    for a in &e.args {
        exec_start.push(' ');
        exec_start.push_str(a);
    }
    UnitSpec {
        name: name.to_string(),
        description: description.to_string(),
        after: after.to_vec(),
        requires: Vec::new(),
        user: e.user.clone(),
        exec_start_pre: Vec::new(),
        exec_start,
        exec_stop: None,
        restart: restart.as_str().to_string(),
    }
}

/// A container run in the foreground by docker, so systemd supervises it.
pub(super) fn container_spec(
    name: &str,
    description: &str,
    c: &Container,
    after: &[String],
    restart: Restart,
) -> UnitSpec {
    let mut run = vec![
        "/usr/bin/docker run --rm".to_string(),
        format!("--name {name}"),
        format!("--user {}:{}", c.uid, c.gid),
        format!("--network {}", c.network.as_str()),
    ];
    for p in &c.ports {
        run.push(format!(
            "--publish {}:{}/{}",
            crate::net::socket(&p.address, p.host),
            p.container,
            p.proto.as_str()
        ));
    }
    for v in &c.volumes {
        let ro = if v.read_only { ":ro" } else { "" };
        run.push(format!("--volume {}:{}{ro}", v.host, v.container));
    }
    run.push(c.image.clone());
    run.extend(c.args.iter().cloned());
    let mut units_after = vec!["docker.service".to_string()];
    units_after.extend(after.iter().cloned());
    UnitSpec {
        name: name.to_string(),
        description: description.to_string(),
        after: units_after,
        requires: vec!["docker.service".into()],
        user: None,
        exec_start_pre: vec![format!("-/usr/bin/docker rm --force {name}")],
        exec_start: run.join(" "),
        exec_stop: Some(format!("/usr/bin/docker stop {name}")),
        restart: restart.as_str().to_string(),
    }
}

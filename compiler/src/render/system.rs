//! /etc/sysctl.d/90-sitec.conf and /etc/sitec/zfs-properties. A Time Machine
//! share's quota becomes its dataset's `refquota` here, from the same value
//! that smb.conf advertises.

use std::collections::BTreeMap;

use super::{Action, File, HostInput, HostOutput, RenderError, template};

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let host = ctx.host;
    if !host.sysctl.is_empty() {
        let settings: Vec<(String, String)> = host
            .sysctl
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect();
        let content = template(
            "sysctl.conf",
            &serde_json::json!({ "header": ctx.header(), "settings": settings }),
        )?;
        out.files.push(File {
            path: "etc/sysctl.d/90-sitec.conf".into(),
            mode: 0o644,
            content,
            actions: vec![Action::SysctlLoad],
            validator: None,
            // Forwarding, rp_filter, ARP: a net.* value can cut a host off.
            network: host.sysctl.keys().any(|k| k.starts_with("net.")),
        });
    }

    let mut props: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (dataset, p) in &host.zfs {
        props
            .entry(dataset)
            .or_default()
            .extend(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    if let Some(samba) = &host.samba {
        for tm in samba.time_machine.values() {
            props
                .entry(&tm.dataset)
                .or_default()
                .insert("refquota", &tm.quota);
        }
    }
    if !props.is_empty() {
        let lines: Vec<String> = props
            .iter()
            .flat_map(|(ds, p)| p.iter().map(move |(k, v)| format!("{ds} {k} {v}")))
            .collect();
        let content = template(
            "zfs-properties",
            &serde_json::json!({ "header": ctx.header(), "lines": lines }),
        )?;
        out.files.push(File {
            path: "etc/sitec/zfs-properties".into(),
            mode: 0o644,
            content,
            actions: vec![Action::ZfsSet],
            validator: None,
            network: false,
        });
    }
    Ok(())
}

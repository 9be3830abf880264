//! What the host says of its state: `status` for people, `list` of the
//! generations, and `status.prom` for fleets (Prometheus text for
//! node_exporter's textfile collector, written with one rename after
//! every activation that may change it; not into node_exporter's own
//! directory, which Debian gives to the prometheus user, who could put a
//! link where root writes).

use std::fmt::Write as _;
use std::path::Path;

use crate::effects::{Effects, EffectsExt as _};
use crate::host::{Error, HostState, at};
use crate::index::Gen;
use crate::layout::Layout;

type R<T> = Result<T, Error>;

fn text(fx: &impl Effects, path: &Path) -> Option<String> {
    fx.text(path).map(|t| t.trim_end().to_string())
}

/// The store copy a generation links to, by its name.
fn store_name(state: &HostState, g: Gen) -> String {
    state
        .generations
        .get(&g)
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}

/// `status [N]`, line by line; `boot` what awaits a boot's confirmation
/// and what waits for a reboot, as the agent says them.
pub fn status(
    fx: &impl Effects,
    layout: &Layout,
    busy: bool,
    g: Option<Gen>,
    boot: Vec<String>,
) -> R<Vec<String>> {
    let state = HostState::read(fx, layout)?;
    let mut out = Vec::new();
    if busy {
        out.push("busy: an activation is running".to_string());
    }
    match state.current {
        None => out.push("no generation is active".to_string()),
        Some(c) => out.push(format!(
            "current generation {c}: {} ({})",
            store_name(&state, c),
            state.results.get(&c).map_or("backup", String::as_str)
        )),
    }
    if let Some(a) = text(fx, &layout.armed()) {
        let w: Vec<&str> = a.split_whitespace().collect();
        out.push(format!(
            "awaiting confirmation: {} (deadline {})",
            w.first().unwrap_or(&""),
            w.get(2).unwrap_or(&"")
        ));
    }
    if let Some(j) = text(fx, &layout.journal()) {
        out.push(format!(
            "interrupted transition: {j} (the next activation settles it)"
        ));
    }
    out.push(format!("state: {}", state.phase()));
    out.extend(boot);
    if let Some(g) = g {
        out.push(format!(
            "generation {g}: {}",
            state.results.get(&g).map_or("unknown", String::as_str)
        ));
    }
    Ok(out)
}

/// `list`: each generation, the live one marked.
pub fn list(fx: &impl Effects, layout: &Layout) -> R<Vec<String>> {
    let state = HostState::read(fx, layout)?;
    Ok(state
        .generations
        .keys()
        .map(|g| {
            let mark = if state.current == Some(*g) { '*' } else { ' ' };
            format!(
                "{mark} {g} {} {}",
                store_name(&state, *g),
                state.results.get(g).map_or("", String::as_str)
            )
            .trim_end()
            .to_string()
        })
        .collect())
}

fn gauge(out: &mut String, name: &str, help: &str, sample: Option<(&str, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    if let Some((labels, value)) = sample {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// `status.prom`'s text.
pub fn prometheus(fx: &impl Effects, layout: &Layout) -> R<String> {
    let state = HostState::read(fx, layout)?;
    let present = |p: &Path| u8::from(fx.exists(p)).to_string();
    let mut out = String::new();
    gauge(
        &mut out,
        "sitec_generation",
        "The live generation (0: the host as sitec found it).",
        state.current.map(|c| ("", c.to_string())),
    );
    let name = state
        .current
        .map(|c| store_name(&state, c))
        .unwrap_or_default();
    let name = name.rsplit('/').next().unwrap_or("");
    let info = name
        .split_once('-')
        .filter(|(h, host)| !h.is_empty() && !host.is_empty())
        .map(|(hash, host)| format!("{{bundle=\"{hash}\",host=\"{host}\"}}"));
    gauge(
        &mut out,
        "sitec_generation_info",
        "The live generation's bundle hash and host.",
        info.as_deref().map(|l| (l, "1".to_string())),
    );
    gauge(
        &mut out,
        "sitec_awaiting_confirmation",
        "Whether the live generation awaits confirmation (it rolls back at the deadline).",
        Some(("", present(&layout.armed()))),
    );
    let deadline = text(fx, &layout.armed())
        .and_then(|a| a.split_whitespace().nth(2).map(str::to_string))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if let Some(d) = deadline {
        gauge(
            &mut out,
            "sitec_confirmation_deadline_seconds",
            "When the generation awaiting confirmation rolls back (seconds since the epoch).",
            Some(("", d)),
        );
    }
    gauge(
        &mut out,
        "sitec_boot_awaiting_confirmation",
        "Whether this boot (on kernel files no confirmed boot had) awaits confirmation.",
        Some(("", present(&layout.boot_armed()))),
    );
    gauge(
        &mut out,
        "sitec_state",
        "The state the host is in (docs/host-protocol.md, the states of a host).",
        Some((
            &format!("{{state=\"{}\"}}", state.phase().name()),
            "1".to_string(),
        )),
    );
    gauge(
        &mut out,
        "sitec_transition_interrupted",
        "Whether a transition was interrupted and awaits the next activation.",
        Some(("", present(&layout.journal()))),
    );
    let pull = layout.pull();
    if fx.kind(&pull).ok().flatten() != Some(crate::effects::Kind::Dir) {
        return Ok(out);
    }
    // `last` begins with the time of the pull it tells of.
    let last = text(fx, &pull.join("last"))
        .and_then(|t| t.split_whitespace().next().and_then(crate::utc::parse_utc));
    if let Some(when) = last {
        gauge(
            &mut out,
            "sitec_pull_last_seconds",
            "When the host last pulled (seconds since the epoch).",
            Some(("", when.to_string())),
        );
    }
    gauge(
        &mut out,
        "sitec_pull_failing",
        "Whether the last pull failed (the host waits longer before the next).",
        Some(("", present(&pull.join("backoff")))),
    );
    // `serial` and `fresh` begin with a number.
    let first_number = |name: &str| {
        text(fx, &pull.join(name))
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(serial) = first_number("serial") {
        gauge(
            &mut out,
            "sitec_pull_serial",
            "The serial floor: the host takes no release with a lower serial.",
            Some(("", serial)),
        );
    }
    if let Some(until) = first_number("fresh") {
        gauge(
            &mut out,
            "sitec_pull_fresh_until_seconds",
            "Until when the release server's last valid freshness statement vouched for its release (seconds since the epoch): alert when it is past.",
            Some(("", until)),
        );
    }
    Ok(out)
}

/// Writes `status.prom` with one rename (on a host that has generations).
pub fn write_prometheus(fx: &mut impl Effects, layout: &Layout) -> R<()> {
    if !fx.exists(&layout.generations()) {
        return Ok(());
    }
    let text = prometheus(&*fx, layout)?;
    let path = layout.state.join("status.prom");
    let new = crate::effects::with_suffix(&path, ".sitec-new");
    fx.remove(&new).map_err(at(&new))?;
    fx.write(&new, text.as_bytes(), 0o644).map_err(at(&new))?;
    fx.rename(&new, &path).map_err(at(&path))
}

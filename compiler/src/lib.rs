//! sitec: a pure, typed configuration compiler for small fleets of hosts.
//!
//! The pipeline runs in one direction, one module per stage:
//! [`load`] → [`model`] → [`check`] → [`render`] → [`bundle`] → [`write`],
//! and [`plan`] beside `write` to tell what writing would change.
//! This file is the only public surface: the CLI in `main.rs` calls it and is
//! the only place that prints or exits.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

mod bundle;
mod cache;
mod check;
mod diagnostic;
mod load;
mod model;
mod net;
mod plan;
mod reference;
mod render;
mod schema;
mod tree;
mod verify;
mod write;

pub use bundle::{Bundle, BundleFile};
pub use diagnostic::{Report, Severity};
pub use load::Contracts;
pub use plan::{Change, FileChange, HostPlan, SitePlan, UnitChange, plan};
pub use verify::{Verified, verify};
pub use write::{SiteCheck, SiteWriter, read_site, write_site};

/// Where a project lives: `sites/`, `schemas/` and (by default) `out/`.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
}

/// How a site failed to compile.
#[derive(Debug)]
pub enum SiteFailure {
    /// The site file, a schema or the keys directory could not be read
    /// (`io::error`, exit 2).
    Io(Box<Report>),
    /// The site has errors (Nickel's or sitec's own), with any warnings, in
    /// file and line order (exit 1).
    Invalid(Vec<Report>),
}

impl SiteFailure {
    /// An I/O failure (`io::error`, exit 2) with the message an operator reads.
    pub fn io(message: String) -> SiteFailure {
        SiteFailure::Io(Box::new(Report::plain(
            "io::error",
            message,
            "check the path and its permissions",
        )))
    }
}

impl From<load::LoadError> for SiteFailure {
    fn from(e: load::LoadError) -> SiteFailure {
        match e {
            load::LoadError::Io { path, message } => {
                SiteFailure::io(format!("{}: {message}", path.display()))
            }
            load::LoadError::Nickel { reports } => SiteFailure::Invalid(reports),
        }
    }
}

/// A compiled site: its bundles (unless they went to a sink), each host's
/// bundle hash, any warnings, and how long each stage took.
#[derive(Debug)]
pub struct Compiled {
    pub site: String,
    /// Sorted by host; empty after [`Project::compile_to`].
    pub bundles: Vec<Bundle>,
    /// (host, bundle hash), sorted by host.
    pub hosts: Vec<(String, String)>,
    pub warnings: Vec<Report>,
    /// Wall time per stage (`--timings`); never part of any output file.
    pub timings: Vec<(&'static str, std::time::Duration)>,
    /// Every file the evaluation read, with the sha256 of what it read.
    pub inputs: Vec<(PathBuf, String)>,
    /// Each host's render key (see [`Reuse`]).
    pub render_keys: Vec<(String, String)>,
    /// How many hosts were kept as they were in `out/`.
    pub kept: usize,
}

/// A compile answered by the input-hash cache: nothing changed.
pub use cache::Hit as CacheHit;

/// Receives each host's bundle as soon as it is rendered (from several
/// threads): the writer, the `--check` comparison, or a collector.
pub type Sink<'a> = dyn Fn(Output) -> Result<(), String> + Sync + 'a;

/// What a compile hands its sink for each host.
pub enum Output {
    /// The host's bundle, rendered.
    Built(Bundle),
    /// A host whose bundle in `out/` is the one it would render (see
    /// [`Reuse`]): not rendered, nothing to write.
    Kept(String),
}

/// Hosts whose bundle in `out/` a compile may keep without rendering it:
/// host → (render key, bundle hash), as the last compile recorded them
/// where `out/` still holds what it wrote. A host's render key hashes all
/// its bundle is a function of (the site's name, the host's values, the
/// meshes and the address sets); the binary must be the same.
#[derive(Debug, Clone, Default)]
pub struct Reuse(pub(crate) std::collections::BTreeMap<String, (String, String)>);

/// How to compile: colours in rendered diagnostics, and an optional directory
/// of WireGuard private keys (`<member>.key`) that must never appear in the site.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub color: bool,
    pub keys_dir: Option<PathBuf>,
    /// Who checks the site against the schemas.
    pub contracts: Contracts,
}

impl Project {
    pub fn sites_dir(&self) -> PathBuf {
        self.root.join("sites")
    }

    pub fn schemas_dir(&self) -> PathBuf {
        self.root.join("schemas")
    }

    /// Every site: the folders of `sites/` that hold a `site.ncl`, sorted.
    pub fn all_sites(&self) -> std::io::Result<Vec<String>> {
        let mut sites = Vec::new();
        for entry in std::fs::read_dir(self.sites_dir())? {
            let entry = entry?;
            if entry.path().join("site.ncl").is_file() {
                sites.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        sites.sort();
        Ok(sites)
    }

    /// The site file of a site name, as a path relative to the project root
    /// when the root is `.` (so diagnostics show `sites/x/site.ncl`).
    fn site_file(&self, site: &str) -> PathBuf {
        relative(&self.root, Path::new("sites").join(site).join("site.ncl"))
    }

    /// Evaluates, checks and renders one site, keeping its bundles.
    pub fn compile(&self, site: &str, options: &Options) -> Result<Compiled, SiteFailure> {
        let collected = std::sync::Mutex::new(Vec::new());
        let mut compiled = self.compile_to(site, options, &Reuse::default(), &|output| {
            if let Output::Built(b) = output {
                collected
                    .lock()
                    .map_err(|_| "a renderer panicked".to_string())?
                    .push(b);
            }
            Ok(())
        })?;
        let mut bundles = collected
            .into_inner()
            .map_err(|_| SiteFailure::io("a renderer panicked".into()))?;
        bundles.sort_by(|a, b| a.host.cmp(&b.host));
        compiled.bundles = bundles;
        Ok(compiled)
    }

    /// Evaluates, checks and renders one site, handing each host's bundle to
    /// `sink` as soon as it is rendered, so that a large site is never whole
    /// in memory. Nothing reaches the sink unless every check passed; an
    /// error of the sink is an `io::error`.
    pub fn compile_to(
        &self,
        site: &str,
        options: &Options,
        reuse: &Reuse,
        sink: &Sink,
    ) -> Result<Compiled, SiteFailure> {
        let color = options.color;
        let schemas = relative(&self.root, PathBuf::from("schemas"));
        let mut loaded = load::load(
            &self.site_file(site),
            &schemas,
            &self.root,
            color,
            options.contracts,
        )?;
        let mut timings = std::mem::take(&mut loaded.stages);
        let mut clock = std::time::Instant::now();
        let mut lap = |name: &'static str, timings: &mut Vec<_>| {
            let now = std::time::Instant::now();
            timings.push((name, now - clock));
            clock = now;
        };
        let inputs = std::mem::take(&mut loaded.inputs);
        let private_keys = match &options.keys_dir {
            Some(dir) => load::private_keys(dir).map_err(SiteFailure::io)?,
            None => Vec::new(),
        };
        let site_model = model::Site::from_loaded(site, loaded, private_keys).map_err(|e| {
            SiteFailure::Invalid(vec![Report::plain(
                "internal::model",
                format!("the evaluated site does not match sitec's model: {e}"),
                "this is a gap in the schema's contracts; please report it with the site",
            )])
        })?;
        lap("model (deserialise)", &mut timings);
        let findings = check::run(&site_model);
        let reports: Vec<Report> = findings
            .iter()
            .map(|d| d.report(&site_model.sources, color))
            .collect();
        lap("checks", &mut timings);
        if reports.iter().any(|r| r.severity == Severity::Error) {
            return Err(SiteFailure::Invalid(reports));
        }
        let shared = render::prepare(&site_model).map_err(render_failure)?;
        lap("render what hosts share", &mut timings);
        let host_names: Vec<&String> = site_model.spec.hosts.keys().collect();
        let shared_key = render::shared_key(&site_model);
        let kept = std::sync::atomic::AtomicUsize::new(0);
        // Thread time per step, summed over the hosts rendered in parallel.
        let steps = [(); 3].map(|()| std::sync::atomic::AtomicU64::new(0));
        let timed = |step: usize, since: std::time::Instant| {
            let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            steps[step].fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        };
        let hosts = host_names
            .par_iter()
            .map(|host| {
                let t = std::time::Instant::now();
                let key = render::host_key(&site_model, &shared_key, host);
                if let Some((k, hash)) = reuse.0.get(host.as_str())
                    && *k == key
                {
                    sink(Output::Kept(host.to_string())).map_err(Failure::Sink)?;
                    kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok((host.to_string(), hash.clone(), key));
                }
                let out =
                    render::render_host(&site_model, &shared, host).map_err(Failure::Render)?;
                timed(0, t);
                let t = std::time::Instant::now();
                let b = bundle::build(site, host, &site_model.spec.hosts[host.as_str()], out);
                let entry = (b.host.clone(), b.hash.clone(), key);
                timed(1, t);
                let t = std::time::Instant::now();
                sink(Output::Built(b)).map_err(Failure::Sink)?;
                timed(2, t);
                Ok(entry)
            })
            .collect::<Result<Vec<_>, Failure>>()
            .map_err(|e| match e {
                Failure::Render(e) => render_failure(e),
                Failure::Sink(e) => SiteFailure::io(e),
            })?;
        lap("render, bundle, hash and write (wall)", &mut timings);
        for (step, name) in [
            "  render (thread time)",
            "  bundle: manifest, sha256 (thread time)",
            "  write or compare (thread time)",
        ]
        .into_iter()
        .enumerate()
        {
            let ns = steps[step].load(std::sync::atomic::Ordering::Relaxed);
            timings.push((name, std::time::Duration::from_nanos(ns)));
        }
        let t = std::time::Instant::now();
        drop(site_model);
        timings.push(("free the model", t.elapsed()));
        let (hosts, render_keys) = hosts
            .into_iter()
            .map(|(host, hash, key)| ((host.clone(), hash), (host, key)))
            .unzip();
        Ok(Compiled {
            site: site.to_string(),
            bundles: Vec::new(),
            hosts,
            warnings: reports,
            timings,
            inputs,
            render_keys,
            kept: kept.into_inner(),
        })
    }

    /// What compiling `site` into `out` would give, when none of its inputs
    /// (files read, the binary, `--keys`, colour) changed since the last
    /// compile recorded with [`Project::remember`] and `out/<site>` is as
    /// that compile left it; otherwise the hosts that compile may keep
    /// (see [`Reuse`]).
    pub fn cached(&self, site: &str, options: &Options, out: &Path) -> Result<CacheHit, Reuse> {
        cache::lookup(
            &self.root,
            site,
            options.color,
            options.keys_dir.as_deref(),
            out,
        )
        .map_err(Reuse)
    }

    /// Records a compile that just wrote `out/<site>`.
    pub fn remember(&self, compiled: &Compiled, options: &Options, out: &Path) {
        cache::store(
            &self.root,
            &compiled.site,
            options.color,
            options.keys_dir.as_deref(),
            out,
            &compiled.inputs,
            &compiled.hosts,
            &compiled.render_keys,
            &compiled.warnings,
        );
    }
}

enum Failure {
    Render(String),
    Sink(String),
}

impl Project {
    /// Evaluates a site and checks it against the schemas, and nothing
    /// else (no checks of sitec's own, rendering or writing): `sitec eval`.
    /// With `None`, Nickel's evaluation without the schemas' contracts
    /// alone: the benchmark's floor. `Ok(false)` when the site does not
    /// evaluate (`sitec check` shows why).
    pub fn evaluate(&self, site: &str, contracts: Option<Contracts>) -> Result<bool, SiteFailure> {
        let schemas = relative(&self.root, PathBuf::from("schemas"));
        let file = self.site_file(site);
        match contracts {
            None => Ok(load::evaluate_without_contracts(&file, &schemas)?),
            Some(c) => match load::load(&file, &schemas, &self.root, false, c) {
                Ok(_) => Ok(true),
                Err(load::LoadError::Nickel { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A renderer's error: a gap in the checks, reported as one.
fn render_failure(e: String) -> SiteFailure {
    SiteFailure::Invalid(vec![Report::plain(
        "internal::render",
        e,
        "a check should have caught this; please report it with the site",
    )])
}

/// Every diagnostic code with its explanation (What it catches / Why it
/// matters / Example), in code order.
pub fn explanations() -> Vec<(&'static str, String)> {
    check::explanations()
}

/// The explanation of one code, as `sitec explain CODE` prints it.
pub fn explain(code: &str) -> Option<String> {
    check::explanations()
        .into_iter()
        .find(|(c, _)| *c == code)
        .map(|(_, text)| text)
}

/// The site language reference (docs/site-language.md), read from the
/// project's schemas.
pub fn language_reference(project: &Project) -> Result<String, String> {
    reference::markdown(&project.schemas_dir())
}

/// DIAGNOSTICS.md as generated from the checks' documentation.
pub fn diagnostics_markdown() -> String {
    check::markdown()
}

fn relative(root: &Path, rel: PathBuf) -> PathBuf {
    if root == Path::new(".") || root.as_os_str().is_empty() {
        rel
    } else {
        root.join(rel)
    }
}

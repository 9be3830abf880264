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
mod hash;
mod load;
mod model;
mod net;
mod plan;
mod reference;
mod render;
mod schema;
mod timing;
mod tree;
mod verify;
mod write;

pub use bundle::{Bundle, BundleFile, HostHash};
pub use diagnostic::{Excerpt, ExcerptLabel, Report, Severity, Shown};
pub use load::Contracts;
pub use plan::{Change, FileChange, HostPlan, SitePlan, UnitChange, plan};
pub use timing::{Clock, Stage};
pub use verify::{Verified, verify};
pub use write::{SiteComparison, SiteWriter, read_site, write_site};

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

/// A compiled site: its bundles (unless they went to `out/`), each host's
/// bundle hash, any warnings, and how long each stage took.
#[derive(Debug)]
pub struct Compiled {
    pub site: String,
    /// Sorted by host; only [`Project::compile`] keeps them.
    pub bundles: Vec<Bundle>,
    /// Each host's bundle hash, sorted by host.
    pub hosts: Vec<HostHash>,
    pub warnings: Vec<Report>,
    /// Wall time per stage (`--timings`); never part of any output file.
    pub timings: Vec<Stage>,
    pub outcome: Outcome,
    /// Every file the evaluation read, with the sha256 of what it read.
    inputs: Vec<(PathBuf, String)>,
    /// Each host's render key (see [`cache::Keepable`]).
    render_keys: std::collections::BTreeMap<String, String>,
    /// What the hosts kept unrendered hold in `out/`, as the cache saw it.
    kept_stats: cache::SiteStats,
}

impl Compiled {
    /// How many hosts got a bundle (the external members' configurations
    /// are no host's).
    pub fn host_count(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.host != render::EXTERNAL)
            .count()
    }
}

/// How a compile came by its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The input-hash cache answered: no input changed since `out/<site>`
    /// was written, and nobody touched it.
    Cached,
    /// The site was evaluated and checked; `kept` hosts were not rendered,
    /// their bundle in `out/` being the one they would render.
    Compiled { kept: usize },
}

/// What `sitec compile --check` found: the compile, and each file of
/// `out/<site>` that differs from it, sorted.
#[derive(Debug)]
pub struct Compared {
    pub compiled: Compiled,
    pub differences: Vec<String>,
}

/// Receives each host's bundle as soon as it is rendered (from several
/// threads): the writer, the `--check` comparison, or a collector.
type Sink<'a> = dyn Fn(Output) -> std::io::Result<()> + Sync + 'a;

/// What a compile hands its sink for each host.
enum Output {
    /// The host's bundle, rendered.
    Built(Bundle),
    /// A host whose bundle in `out/` is the one it would render (see
    /// [`cache::Keepable`]): not rendered, nothing to write.
    Kept(String),
}

/// How to compile: an optional directory of WireGuard private keys
/// (`<member>.key`) that must never appear in the site, and who checks it
/// against the schemas.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub keys_dir: Option<PathBuf>,
    /// Who checks the site against the schemas.
    pub contracts: Contracts,
}

/// Whether the input-hash cache may answer a compile into `out/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCache {
    Yes,
    No,
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

    /// Evaluates, checks and renders one site, keeping its bundles (for
    /// `plan` and tests).
    pub fn compile(&self, site: &str, options: &Options) -> Result<Compiled, SiteFailure> {
        let collected = std::sync::Mutex::new(Vec::new());
        let compiled = self.run(site, options, cache::Pending::default(), &|output| {
            if let Output::Built(b) = output {
                collected
                    .lock()
                    .map_err(|_| std::io::Error::other("a renderer panicked"))?
                    .push(b);
            }
            Ok(())
        });
        let mut compiled = compiled.map_err(|e| e.or_output(|e| SiteFailure::io(e.to_string())))?;
        let mut bundles = collected
            .into_inner()
            .map_err(|_| SiteFailure::io("a renderer panicked".into()))?;
        bundles.sort_by(|a, b| a.host.cmp(&b.host));
        compiled.bundles = bundles;
        Ok(compiled)
    }

    /// Evaluates, checks and renders one site, dropping the bundles:
    /// `sitec check`.
    pub fn check(&self, site: &str, options: &Options) -> Result<Compiled, SiteFailure> {
        self.run(site, options, cache::Pending::default(), &|_| Ok(()))
            .map_err(|e| e.or_output(|e| SiteFailure::io(e.to_string())))
    }

    /// `sitec compile`: compiles one site into `out/<site>`, host by host
    /// as they are rendered (see [`SiteWriter`]). With the cache, a compile
    /// none of whose inputs changed is answered without evaluating, and a
    /// host whose bundle `out/` already holds is not rendered again.
    pub fn write(
        &self,
        site: &str,
        options: &Options,
        out: &Path,
        use_cache: UseCache,
    ) -> Result<Compiled, SiteFailure> {
        let want = cache::Want::HitOrKeepable;
        let keep = match self.lookup(site, options, out, use_cache, want) {
            Ok(hit) => return Ok(hit),
            Err(keep) => keep,
        };
        let dir = out.join(site);
        let io = |e: std::io::Error| SiteFailure::io(format!("writing {}: {e}", dir.display()));
        let writer = SiteWriter::begin(out, site).map_err(io)?;
        let mut compiled = self
            .run(site, options, keep, &|output| match output {
                Output::Built(b) => writer.write(&b),
                Output::Kept(host) => writer.keep(&host),
            })
            .map_err(|e| e.or_output(io))?;
        let t = std::time::Instant::now();
        writer.commit().map_err(io)?;
        if use_cache == UseCache::Yes {
            cache::store(
                &self.root,
                site,
                options.keys_dir.as_deref(),
                out,
                &compiled.inputs,
                &compiled.hosts,
                &compiled.render_keys,
                &compiled.warnings,
                std::mem::take(&mut compiled.kept_stats),
            );
        }
        compiled
            .timings
            .push(Stage::wall("commit out/ and the cache entry", t.elapsed()));
        Ok(compiled)
    }

    /// `sitec compile --check`: compiles one site and compares it with
    /// `out/<site>`, host by host, writing nothing. With the cache, a
    /// compile none of whose inputs changed finds `out/` current at once.
    pub fn compare(
        &self,
        site: &str,
        options: &Options,
        out: &Path,
        use_cache: UseCache,
    ) -> Result<Compared, SiteFailure> {
        if let Ok(compiled) = self.lookup(site, options, out, use_cache, cache::Want::Hit) {
            return Ok(Compared {
                compiled,
                differences: Vec::new(),
            });
        }
        // Evaluation is single-threaded: read out/ on the idle core
        // meanwhile, so that comparing later finds it in memory.
        let _warm = SiteComparison::prefetch(out, site);
        let comparison = SiteComparison::new(out, site);
        let dir = out.join(site);
        let reading =
            |e: std::io::Error| SiteFailure::io(format!("reading {}: {e}", dir.display()));
        let compiled = self
            .run(
                site,
                options,
                cache::Pending::default(),
                &|output| match output {
                    Output::Built(b) => comparison.compare(&b),
                    Output::Kept(_) => Ok(()),
                },
            )
            .map_err(|e| e.or_output(reading))?;
        let differences = comparison.finish().map_err(reading)?;
        Ok(Compared {
            compiled,
            differences,
        })
    }

    /// The cache's answer for a compile into `out/<site>` (`Ok`), or else
    /// the hosts it may keep.
    fn lookup(
        &self,
        site: &str,
        options: &Options,
        out: &Path,
        use_cache: UseCache,
        want: cache::Want,
    ) -> Result<Compiled, cache::Pending> {
        let started = std::time::Instant::now();
        if use_cache == UseCache::No {
            return Err(cache::Pending::default());
        }
        let lookup = cache::lookup(&self.root, site, options.keys_dir.as_deref(), out, want);
        match lookup {
            cache::Lookup::Hit(hit) => Ok(Compiled {
                site: site.to_string(),
                bundles: Vec::new(),
                hosts: hit.hosts,
                warnings: hit.warnings,
                timings: vec![Stage::wall(
                    "input-hash cache: nothing changed",
                    started.elapsed(),
                )],
                outcome: Outcome::Cached,
                inputs: Vec::new(),
                render_keys: std::collections::BTreeMap::new(),
                kept_stats: cache::SiteStats::new(),
            }),
            cache::Lookup::Miss(keep) => Err(keep),
        }
    }

    /// Evaluates, checks and renders one site, handing each host's bundle to
    /// `sink` as soon as it is rendered, so that a large site is never whole
    /// in memory. Hosts that `keep` finds unchanged are handed over as
    /// [`Output::Kept`]. Nothing reaches the sink unless every check
    /// passed; an error of the sink is an `io::error`.
    fn run(
        &self,
        site: &str,
        options: &Options,
        keep: cache::Pending,
        sink: &Sink,
    ) -> Result<Compiled, RunFailure> {
        let schemas = relative(&self.root, PathBuf::from("schemas"));
        let load::Evaluated { mut loaded, heap } = load::load(
            &self.site_file(site),
            &schemas,
            &self.root,
            options.contracts,
        )?;
        let mut timings = timing::Stopwatch::after(std::mem::take(&mut loaded.stages));
        let inputs = std::mem::take(&mut loaded.inputs);
        let private_keys = match &options.keys_dir {
            Some(dir) => load::private_keys(dir).map_err(SiteFailure::io)?,
            None => Vec::new(),
        };
        // Nickel's heap goes first: the model then reuses its memory,
        // which keeps the peak RSS within twice Nickel's own (building the
        // model beside it on another thread is faster by the time freeing
        // takes, but holds both at once).
        drop(heap);
        timings.lap("free Nickel's heap");
        let site_model = model::Site::from_loaded(site, loaded, private_keys).map_err(|e| {
            SiteFailure::Invalid(vec![Report::plain(
                "internal::model",
                format!("the evaluated site does not match sitec's model: {e}"),
                "this is a gap in the schema's contracts; please report it with the site",
            )])
        })?;
        timings.lap("model (deserialise)");
        let findings = check::run(&site_model);
        let reports: Vec<Report> = findings
            .iter()
            .map(|d| d.report(&site_model.sources))
            .collect();
        timings.lap("checks");
        if reports.iter().any(|r| r.severity == Severity::Error) {
            return Err(SiteFailure::Invalid(reports).into());
        }
        let shared = render::prepare(&site_model).map_err(render_failure)?;
        timings.lap("render what hosts share");
        let keep = keep.wait();
        timings.lap("wait for the stat of out/");
        let host_names: Vec<&String> = site_model.spec.hosts.keys().collect();
        let shared_key = render::shared_key(&site_model);
        // The steps of each host's work, in the order of their names.
        enum Step {
            Render,
            Bundle,
            Write,
        }
        let steps =
            timing::StepClocks::new(["render", "bundle: manifest, sha256", "write or compare"]);
        let hosts = host_names
            .par_iter()
            .map(|host| {
                let key = render::host_key(&site_model, &shared_key, host);
                if let Some(kept) = keep.hosts.get(host.as_str())
                    && kept.render_key == key
                {
                    sink(Output::Kept(host.to_string())).map_err(HostFailure::Output)?;
                    return Ok(Rendered {
                        host: HostHash {
                            host: host.to_string(),
                            hash: kept.hash.clone(),
                        },
                        key,
                        kept: true,
                    });
                }
                let out = steps
                    .time(Step::Render as usize, || {
                        render::render_host(&site_model, &shared, host)
                    })
                    .map_err(HostFailure::Render)?;
                let b = steps.time(Step::Bundle as usize, || {
                    bundle::build(site, host, &site_model.spec.hosts[host.as_str()], out)
                });
                let entry = Rendered {
                    host: HostHash {
                        host: b.host.clone(),
                        hash: b.hash.clone(),
                    },
                    key,
                    kept: false,
                };
                steps
                    .time(Step::Write as usize, || sink(Output::Built(b)))
                    .map_err(HostFailure::Output)?;
                Ok(entry)
            })
            .collect::<Result<Vec<_>, HostFailure>>()
            .map_err(|e| match e {
                HostFailure::Render(e) => RunFailure::Site(render_failure(e)),
                HostFailure::Output(e) => RunFailure::Output(e),
            })?;
        // The external members' configurations: one more directory of the
        // site's output, kept like a host's when its render key (the
        // site's name and meshes) is the recorded one.
        let mut hosts = hosts;
        let external = render::render_external(&site_model).map_err(render_failure)?;
        if !external.is_empty() {
            let name = render::EXTERNAL;
            let key = render::host_key(&site_model, &shared_key, name);
            let rendered = match keep.hosts.get(name) {
                Some(kept) if kept.render_key == key => {
                    sink(Output::Kept(name.to_string())).map_err(RunFailure::Output)?;
                    Rendered {
                        host: HostHash {
                            host: name.to_string(),
                            hash: kept.hash.clone(),
                        },
                        key,
                        kept: true,
                    }
                }
                _ => {
                    let b = bundle::external(external);
                    let rendered = Rendered {
                        host: HostHash {
                            host: b.host.clone(),
                            hash: b.hash.clone(),
                        },
                        key,
                        kept: false,
                    };
                    sink(Output::Built(b)).map_err(RunFailure::Output)?;
                    rendered
                }
            };
            hosts.push(rendered);
        }
        timings.lap("render, bundle, hash and write (wall)");
        timings.split(steps);
        // Nothing reads the model any more; freeing it need not hold up
        // the compile (the process may well exit before it is done).
        std::thread::spawn(move || drop(site_model));
        let kept_hosts: std::collections::BTreeSet<&str> = hosts
            .iter()
            .filter(|r| r.kept)
            .map(|r| r.host.host.as_str())
            .collect();
        let kept = kept_hosts
            .iter()
            .filter(|h| **h != render::EXTERNAL)
            .count();
        let mut kept_stats = keep.stats;
        kept_stats.retain(|host, _| kept_hosts.contains(host.as_str()));
        let (hosts, render_keys) = hosts
            .into_iter()
            .map(|r| {
                let key = (r.host.host.clone(), r.key);
                (r.host, key)
            })
            .unzip();
        Ok(Compiled {
            site: site.to_string(),
            bundles: Vec::new(),
            hosts,
            warnings: reports,
            timings: timings.stages(),
            outcome: Outcome::Compiled { kept },
            inputs,
            render_keys,
            kept_stats,
        })
    }
}

/// Why one host of a compile failed.
enum HostFailure {
    Render(render::RenderError),
    /// The sink could not take its bundle.
    Output(std::io::Error),
}

/// Why [`Project::run`] failed: the site, or the sink (whose caller knows
/// what it was writing or reading).
enum RunFailure {
    Site(SiteFailure),
    Output(std::io::Error),
}

impl RunFailure {
    fn or_output(self, output: impl FnOnce(std::io::Error) -> SiteFailure) -> SiteFailure {
        match self {
            RunFailure::Site(f) => f,
            RunFailure::Output(e) => output(e),
        }
    }
}

impl<E: Into<SiteFailure>> From<E> for RunFailure {
    fn from(e: E) -> RunFailure {
        RunFailure::Site(e.into())
    }
}

/// One host of a compile: its bundle hash, render key, and whether its
/// bundle in `out/` was kept unrendered.
struct Rendered {
    host: HostHash,
    key: String,
    kept: bool,
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
            Some(c) => match load::load(&file, &schemas, &self.root, c) {
                Ok(_) => Ok(true),
                Err(load::LoadError::Nickel { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A renderer's error: a gap in the checks, reported as one.
fn render_failure(e: render::RenderError) -> SiteFailure {
    SiteFailure::Invalid(vec![Report::plain(
        "internal::render",
        e.to_string(),
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

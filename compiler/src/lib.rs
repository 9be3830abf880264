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
mod check;
mod diagnostic;
mod load;
mod model;
mod net;
mod plan;
mod reference;
mod render;
mod tree;
mod verify;
mod write;

pub use bundle::{Bundle, BundleFile};
pub use diagnostic::{Report, Severity};
pub use plan::{Change, FileChange, HostPlan, SitePlan, UnitChange, plan};
pub use verify::{Verified, verify};
pub use write::{diff_site, read_site, write_site};

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

/// A compiled site: its bundles and any warnings.
#[derive(Debug)]
pub struct Compiled {
    pub site: String,
    pub bundles: Vec<Bundle>,
    pub warnings: Vec<Report>,
}

/// How to compile: colours in rendered diagnostics, and an optional directory
/// of WireGuard private keys (`<member>.key`) that must never appear in the site.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub color: bool,
    pub keys_dir: Option<PathBuf>,
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

    /// Evaluates, checks and renders one site.
    pub fn compile(&self, site: &str, options: &Options) -> Result<Compiled, SiteFailure> {
        let color = options.color;
        let schemas = relative(&self.root, PathBuf::from("schemas"));
        let loaded = match load::load(&self.site_file(site), &schemas, &self.root, color) {
            Ok(l) => l,
            Err(load::LoadError::Io { path, message }) => {
                return Err(io_failure(format!("{}: {message}", path.display())));
            }
            Err(load::LoadError::Nickel { reports }) => {
                return Err(SiteFailure::Invalid(reports));
            }
        };
        let private_keys = match &options.keys_dir {
            Some(dir) => load::private_keys(dir).map_err(io_failure)?,
            None => Vec::new(),
        };
        let site_model = model::Site::from_loaded(site, loaded, private_keys).map_err(|e| {
            SiteFailure::Invalid(vec![Report::plain(
                "internal::model",
                format!("the evaluated site does not match sitec's model: {e}"),
                "this is a gap in the schema's contracts; please report it with the site",
            )])
        })?;
        let findings = check::run(&site_model);
        let reports: Vec<Report> = findings
            .iter()
            .map(|d| d.report(&site_model.sources, color))
            .collect();
        if reports.iter().any(|r| r.severity == Severity::Error) {
            return Err(SiteFailure::Invalid(reports));
        }
        let hosts: Vec<&String> = site_model.spec.hosts.keys().collect();
        let bundles = hosts
            .par_iter()
            .map(|host| {
                let out = render::render_host(&site_model, host)?;
                Ok(bundle::build(
                    site,
                    host,
                    &site_model.spec.hosts[host.as_str()],
                    out,
                ))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| {
                SiteFailure::Invalid(vec![Report::plain(
                    "internal::render",
                    e,
                    "a check should have caught this; please report it with the site",
                )])
            })?;
        Ok(Compiled {
            site: site.to_string(),
            bundles,
            warnings: reports,
        })
    }
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

fn io_failure(message: String) -> SiteFailure {
    SiteFailure::Io(Box::new(Report::plain(
        "io::error",
        message,
        "check the path and its permissions",
    )))
}

fn relative(root: &Path, rel: PathBuf) -> PathBuf {
    if root == Path::new(".") || root.as_os_str().is_empty() {
        rel
    } else {
        root.join(rel)
    }
}

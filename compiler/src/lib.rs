//! sitec: a pure, typed configuration compiler for small fleets of hosts.
//!
//! The pipeline runs in one direction, one module per stage:
//! [`load`] → [`model`] → [`check`] → [`render`] → [`bundle`] → [`write`].
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
mod render;
mod tree;
mod verify;
mod write;

pub use bundle::{Bundle, BundleFile};
pub use verify::{Verified, verify};
pub use write::{diff_site, write_site};

use diagnostic::Severity;

/// Where a project lives: `sites/`, `schemas/` and (by default) `out/`.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
}

/// How a site failed to compile.
#[derive(Debug)]
pub enum SiteFailure {
    /// The site file or a schema could not be read (exit 2).
    Io(String),
    /// The site has errors: Nickel's or sitec's own, already rendered (exit 1).
    Invalid(Vec<String>),
}

/// A compiled site: its bundles and any warnings (rendered).
#[derive(Debug)]
pub struct Compiled {
    pub site: String,
    pub bundles: Vec<Bundle>,
    pub warnings: Vec<String>,
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
    pub fn compile(&self, site: &str, color: bool) -> Result<Compiled, SiteFailure> {
        let schemas = relative(&self.root, PathBuf::from("schemas"));
        let loaded = match load::load(&self.site_file(site), &schemas, &self.root, color) {
            Ok(l) => l,
            Err(load::LoadError::Io { path, message }) => {
                return Err(SiteFailure::Io(format!("{}: {message}", path.display())));
            }
            Err(load::LoadError::Nickel { rendered }) => {
                return Err(SiteFailure::Invalid(vec![rendered]));
            }
        };
        let site_model = model::Site::from_loaded(site, loaded)
            .map_err(|e| SiteFailure::Invalid(vec![format!("error: {e}\n")]))?;
        let findings = check::run(&site_model);
        let (errors, warnings): (Vec<_>, Vec<_>) =
            findings.iter().partition(|d| d.severity == Severity::Error);
        let render_all = |ds: Vec<&diagnostic::Diagnostic>| -> Vec<String> {
            ds.iter()
                .map(|d| d.render(&site_model.sources, color))
                .collect()
        };
        if !errors.is_empty() {
            let mut all = render_all(errors);
            all.extend(render_all(warnings));
            return Err(SiteFailure::Invalid(all));
        }
        let warnings = render_all(warnings);
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
            .map_err(|e| SiteFailure::Invalid(vec![format!("error: {e}\n")]))?;
        Ok(Compiled {
            site: site.to_string(),
            bundles,
            warnings,
        })
    }
}

fn relative(root: &Path, rel: PathBuf) -> PathBuf {
    if root == Path::new(".") || root.as_os_str().is_empty() {
        rel
    } else {
        root.join(rel)
    }
}

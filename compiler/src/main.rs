//! The `sitec` command line: the only place that prints or exits.
//!
//! Exit codes: 0 ok, 1 errors in a site (or `--check` found differences),
//! 2 usage or I/O error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sitec::{Compiled, Project, SiteFailure};

#[derive(Parser)]
#[command(
    name = "sitec",
    version,
    about = "Compile Nickel site descriptions into per-host bundles"
)]
struct Cli {
    /// Project root holding sites/, schemas/ and out/.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate, check, render and write out/ (default: every site).
    ///
    /// Example: sitec compile homelab --check
    Compile {
        /// Sites to compile (folders of sites/); all when none is given.
        sites: Vec<String>,
        /// Output directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare with out/ instead of writing; exit 1 naming each file that differs.
        #[arg(long)]
        check: bool,
    },
    /// Everything but writing; exit 1 on any error.
    ///
    /// Example: sitec check homelab
    Check {
        /// Sites to check; all when none is given.
        sites: Vec<String>,
    },
    /// Recompute a bundle's hash and compare it with its BUNDLE file.
    ///
    /// Example: sitec verify out/homelab/pve1
    Verify {
        /// A bundle directory, e.g. out/homelab/pve1.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let project = Project { root: cli.root };
    match cli.command {
        Command::Compile { sites, out, check } => {
            let out = out.unwrap_or_else(|| project.root.join("out"));
            run_sites(&project, sites, color, |c| {
                if check {
                    check_out(&out, c)
                } else {
                    sitec::write_site(&out, &c.site, &c.bundles)
                        .map(|()| {
                            eprintln!(
                                "compiled {} ({} hosts) into {}",
                                c.site,
                                c.bundles.len(),
                                out.join(&c.site).display()
                            );
                            true
                        })
                        .map_err(|e| format!("writing {}: {e}", out.join(&c.site).display()))
                }
            })
        }
        Command::Check { sites } => run_sites(&project, sites, color, |c| {
            eprintln!("{}: ok ({} hosts)", c.site, c.bundles.len());
            Ok(true)
        }),
        Command::Verify { dir } => verify(&dir),
    }
}

/// Compiles each site and hands it to `then`, which answers whether the
/// site is in order. Reports every site before choosing the exit code.
fn run_sites(
    project: &Project,
    sites: Vec<String>,
    color: bool,
    then: impl Fn(&Compiled) -> Result<bool, String>,
) -> ExitCode {
    let sites = if sites.is_empty() {
        match project.all_sites() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot list {}: {e}", project.sites_dir().display());
                return ExitCode::from(2);
            }
        }
    } else {
        sites
    };
    let mut worst = 0u8;
    for site in sites {
        match project.compile(&site, color) {
            Ok(compiled) => {
                for w in &compiled.warnings {
                    eprint!("{w}");
                }
                match then(&compiled) {
                    Ok(true) => {}
                    Ok(false) => worst = worst.max(1),
                    Err(e) => {
                        eprintln!("error: {e}");
                        worst = 2;
                    }
                }
            }
            Err(SiteFailure::Io(e)) => {
                eprintln!("error: site {site}: {e}");
                worst = 2;
            }
            Err(SiteFailure::Invalid(reports)) => {
                for r in &reports {
                    eprint!("{r}");
                    if !r.ends_with('\n') {
                        eprintln!();
                    }
                }
                eprintln!("error: site {site} has {} error(s)", reports.len());
                worst = worst.max(1);
            }
        }
    }
    ExitCode::from(worst)
}

fn check_out(out: &Path, c: &Compiled) -> Result<bool, String> {
    let diffs = sitec::diff_site(out, &c.site, &c.bundles)
        .map_err(|e| format!("reading {}: {e}", out.join(&c.site).display()))?;
    for d in &diffs {
        eprintln!("{d}");
    }
    if diffs.is_empty() {
        eprintln!("{}: out/ is current", c.site);
        Ok(true)
    } else {
        eprintln!(
            "{}: {} file(s) differ from what the site compiles to; run `sitec compile {}`",
            c.site,
            diffs.len(),
            c.site
        );
        Ok(false)
    }
}

fn verify(dir: &Path) -> ExitCode {
    match sitec::verify(dir) {
        Ok(v) if v.ok() => {
            println!("{}", v.computed);
            ExitCode::SUCCESS
        }
        Ok(v) => {
            eprintln!(
                "error: {}: BUNDLE says {}, the files hash to {}\nhelp: a fresh git checkout loses modes such as 0600; `sitec compile` restores them",
                dir.display(),
                v.recorded.as_deref().unwrap_or("nothing (no BUNDLE file)"),
                v.computed
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

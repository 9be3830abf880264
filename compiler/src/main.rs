//! The `sitec` command line: the only place that prints or exits.
//!
//! Exit codes: 0 ok, 1 errors in a site (or `--check` found differences, or
//! `plan` found changes), 2 usage or I/O error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

// The terminal form of findings; a directory of its own, since `render/`
// is the library's.
#[path = "cli/report.rs"]
mod report;
use sitec::{Clock, Compiled, Contracts, Options, Outcome, Project, Report, SiteFailure, UseCache};

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

/// How diagnostics are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// miette's graphical report on stderr.
    Text,
    /// One JSON array on stdout: site, code, severity, message, help, file, line, column.
    Json,
}

/// Options shared by the commands that compile.
#[derive(clap::Args)]
struct CompileArgs {
    /// Sites (folders of sites/); all when none is given.
    sites: Vec<String>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// A directory of WireGuard private keys (one file per member); a site
    /// string equal to one of them is an error (`secrets::private-key`).
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// Check the site against the schemas with Nickel's contracts only.
    /// By default sitec checks it itself, from the schemas read as data,
    /// and asks Nickel's contracts only to report what it refuses: the
    /// same result, several times faster on a large site.
    #[arg(long)]
    nickel_contracts: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate, check, render and write out/ (default: every site).
    ///
    /// Example: sitec compile homelab --check
    Compile {
        #[command(flatten)]
        args: CompileArgs,
        /// Output directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare with out/ instead of writing; exit 1 naming each file that differs.
        #[arg(long)]
        check: bool,
        /// Print how long each stage took (stderr).
        #[arg(long)]
        timings: bool,
        /// Compile even when no input changed since the last compile (the
        /// input-hash cache in .sitec/cache/ is not consulted).
        #[arg(long)]
        no_cache: bool,
    },
    /// Everything but writing; exit 1 on any error.
    ///
    /// Example: sitec check homelab --format json
    Check {
        #[command(flatten)]
        args: CompileArgs,
    },
    /// Explain a diagnostic code: what it catches, why it matters, an example.
    ///
    /// Example: sitec explain firewall::lockout
    Explain {
        /// The code, e.g. `wg::duplicate-key`; lists every code when absent.
        code: Option<String>,
        /// Print every explanation as Markdown (the content of DIAGNOSTICS.md).
        #[arg(long, conflicts_with = "code")]
        all: bool,
    },
    /// Recompute a bundle's hash and compare it with its BUNDLE file.
    ///
    /// Example: sitec verify out/homelab/pve1
    Verify {
        /// A bundle directory, e.g. out/homelab/pve1.
        dir: PathBuf,
    },
    /// What compile would change in out/, for review: per host the bundle
    /// hash before and after, each file with a unified diff, the actions
    /// activation will run, and whether confirm-or-rollback will be armed.
    /// Exit 0 when nothing would change, 1 when something would.
    ///
    /// Example: sitec plan homelab --base ../main/out --format markdown
    Plan {
        /// Sites (folders of sites/); all when none is given.
        sites: Vec<String>,
        /// The bundles to compare with (default: the project's out/).
        #[arg(long, value_name = "DIR")]
        base: Option<PathBuf>,
        /// How to print the plan (diagnostics go to stderr as text).
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
    },
    /// Print a shell completion script.
    ///
    /// Example: sitec completions bash > /etc/bash_completion.d/sitec
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Evaluate a site and check it against the schemas, and nothing else:
    /// no checks of sitec's own, no rendering, no writing. What
    /// `scripts/bench` measures compile against; exit 1 when the site does
    /// not evaluate.
    ///
    /// Example: sitec eval homelab --without-contracts
    Eval {
        /// The site (a folder of sites/).
        site: String,
        /// With Nickel's contracts only (as `compile --nickel-contracts`).
        #[arg(long, conflicts_with = "without_contracts")]
        nickel_contracts: bool,
        /// Nickel's evaluation of the site alone, without the schemas'
        /// contracts (the site's own `| sitec.Site` blanked out): the floor.
        #[arg(long)]
        without_contracts: bool,
    },
    /// Print the site language reference (Markdown) from the schemas'
    /// contracts and docs: the content of docs/site-language.md.
    ///
    /// Example: sitec schema > docs/site-language.md
    Schema,
    /// Print sitec's man page (roff), generated from these definitions.
    ///
    /// Example: sitec man > /usr/local/share/man/man1/sitec.1
    Man,
}

/// Shells `sitec completions` writes for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// How a plan is printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    /// For a terminal.
    Text,
    /// For a pull-request comment: a table and a collapsible section per host.
    Markdown,
    /// One JSON array of site plans.
    Json,
}

/// Writes to stdout. A reader that went away (`sitec plan | head`) ends
/// the output, not the program: what it would have read is lost, nothing
/// else.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let project = Project { root: cli.root };
    match cli.command {
        Command::Compile {
            args,
            out,
            check,
            timings,
            no_cache,
        } => {
            let out = out.unwrap_or_else(|| project.root.join("out"));
            let use_cache = if no_cache {
                UseCache::No
            } else {
                UseCache::Yes
            };
            let mode = if check {
                Mode::Compare(&out, use_cache)
            } else {
                Mode::Write(&out, use_cache)
            };
            run_sites(&project, args, color, mode, |c| {
                if timings {
                    print_timings(c);
                }
                Ok(true)
            })
        }
        Command::Check { args } => run_sites(&project, args, color, Mode::Discard, |c| {
            eprintln!("{}: ok ({} hosts)", c.site, c.host_count());
            Ok(true)
        }),
        Command::Verify { dir } => verify(&dir),
        Command::Plan {
            sites,
            base,
            format,
        } => {
            let given = base.is_some();
            let base = base.unwrap_or_else(|| project.root.join("out"));
            let args = CompileArgs {
                sites,
                format: Format::Text,
                keys: None,
                nickel_contracts: false,
            };
            let plans = std::cell::RefCell::new(Vec::new());
            let code = run_sites(&project, args, color, Mode::Collect, |c| {
                // A checkout's root instead of its out/: every host would
                // look new.
                let nested = base.join("out").join(&c.site);
                if given && !base.join(&c.site).is_dir() && nested.is_dir() {
                    return Err(format!(
                        "--base {} has no {}/, but {} has: --base names the out/ directory of the checkout",
                        base.display(),
                        c.site,
                        nested.display()
                    ));
                }
                let committed = sitec::read_site(&base, &c.site)
                    .map_err(|e| format!("reading {}: {e}", base.join(&c.site).display()))?;
                let p = sitec::plan(&c.site, &committed, &c.bundles);
                let unchanged = !p.changed();
                match format {
                    PlanFormat::Text => emit(&p.text()),
                    PlanFormat::Markdown => emit(&p.markdown()),
                    PlanFormat::Json => plans.borrow_mut().push(p),
                }
                Ok(unchanged)
            });
            if format == PlanFormat::Json {
                let text = serde_json::to_string_pretty(&plans.into_inner())
                    .unwrap_or_else(|_| "[]".to_string());
                emit(&format!("{text}\n"));
            }
            code
        }
        Command::Explain { code, all } => explain(code.as_deref(), all),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = std::io::stdout();
            match shell {
                Shell::Bash => {
                    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "sitec", &mut out)
                }
                Shell::Zsh => {
                    clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "sitec", &mut out)
                }
                Shell::Fish => {
                    clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "sitec", &mut out)
                }
            }
            ExitCode::SUCCESS
        }
        Command::Eval {
            site,
            nickel_contracts,
            without_contracts,
        } => match project.evaluate(
            &site,
            match (nickel_contracts, without_contracts) {
                (_, true) => None,
                (true, _) => Some(Contracts::Nickel),
                _ => Some(Contracts::Sitec),
            },
        ) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("error: site {site} does not evaluate; `sitec check {site}` shows why");
                ExitCode::from(1)
            }
            Err(SiteFailure::Io(report)) => {
                eprintln!("error: site {site}: {}", report.message);
                ExitCode::from(2)
            }
            Err(SiteFailure::Invalid(_)) => ExitCode::from(1),
        },
        Command::Schema => match sitec::language_reference(&project) {
            Ok(text) => {
                emit(&text);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: reading the schemas: {e}");
                ExitCode::from(2)
            }
        },
        Command::Man => match man_page() {
            Ok(page) => {
                emit(&page);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: rendering the man page: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// One page: sitec's own sections, then a section per subcommand with its
/// synopsis, description (with its example) and options.
fn man_page() -> std::io::Result<String> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("sitec {}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)?;
        man.render_description_section(&mut section)?;
        man.render_options_section(&mut section)?;
        let section = String::from_utf8_lossy(&section)
            .replace(".SH SYNOPSIS", &format!(".SH \"{}\"", name.to_uppercase()))
            .replace(".SH DESCRIPTION", ".SS Description")
            .replace(".SH OPTIONS", ".SS Options");
        page.extend_from_slice(section.as_bytes());
    }
    String::from_utf8(page).map_err(std::io::Error::other)
}

fn explain(code: Option<&str>, all: bool) -> ExitCode {
    if all {
        emit(&sitec::diagnostics_markdown());
        return ExitCode::SUCCESS;
    }
    let Some(code) = code else {
        for (code, _) in sitec::explanations() {
            emit(&format!("{code}\n"));
        }
        return ExitCode::SUCCESS;
    };
    match sitec::explain(code) {
        Some(text) => {
            emit(&format!("{code}\n\n{text}\n"));
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: no diagnostic has the code `{code}`\nhelp: `sitec explain` lists every code"
            );
            ExitCode::from(2)
        }
    }
}

/// Compiles each site and hands it to `then`, which answers whether the
/// site is in order. Reports every site before choosing the exit code.
fn run_sites(
    project: &Project,
    args: CompileArgs,
    color: bool,
    mode: Mode,
    then: impl Fn(&Compiled) -> Result<bool, String>,
) -> ExitCode {
    let sites = if args.sites.is_empty() {
        match project.all_sites() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot list {}: {e}", project.sites_dir().display());
                return ExitCode::from(2);
            }
        }
    } else {
        args.sites
    };
    let options = Options {
        keys_dir: args.keys,
        contracts: if args.nickel_contracts {
            Contracts::Nickel
        } else {
            Contracts::Sitec
        },
    };
    let mut worst = 0u8;
    let mut json = Vec::new();
    for site in sites {
        match compile_site(project, &site, &options, &mode) {
            Ok((compiled, in_order)) => {
                show(args.format, color, &mut json, &site, &compiled.warnings);
                if in_order == InOrder::No {
                    worst = worst.max(1);
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
            Err(SiteFailure::Io(report)) => {
                if args.format == Format::Json {
                    json.push(json_report(&site, &report));
                }
                eprintln!("error: site {site}: {}", report.message);
                worst = 2;
            }
            Err(SiteFailure::Invalid(reports)) => {
                show(args.format, color, &mut json, &site, &reports);
                let errors = reports
                    .iter()
                    .filter(|r| r.severity == sitec::Severity::Error)
                    .count();
                eprintln!("error: site {site} has {errors} error(s)");
                worst = worst.max(1);
            }
        }
    }
    if args.format == Format::Json {
        let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".to_string());
        emit(&format!("{text}\n"));
    }
    ExitCode::from(worst)
}

/// Prints reports on stderr, or collects them for the JSON array.
fn show(
    format: Format,
    color: bool,
    json: &mut Vec<serde_json::Value>,
    site: &str,
    reports: &[Report],
) {
    match format {
        Format::Text => eprint!("{}", report::render_all(reports, color)),
        Format::Json => json.extend(reports.iter().map(|r| json_report(site, r))),
    }
}

/// A report as a JSON object, with the site it belongs to.
fn json_report(site: &str, r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("site".into(), site.into());
    }
    v
}

/// What happens to the bundles of a compile.
enum Mode<'a> {
    /// Written into DIR/<site> (`sitec compile`).
    Write(&'a Path, UseCache),
    /// Compared with DIR/<site> (`--check`).
    Compare(&'a Path, UseCache),
    /// Rendered and dropped (`sitec check`).
    Discard,
    /// Kept in memory for the caller (`plan`).
    Collect,
}

/// Whether `out/` is in order after a compile (`--check` found no
/// difference).
#[derive(PartialEq, Eq)]
enum InOrder {
    Yes,
    No,
}

/// Compiles one site in the given mode and prints what the mode did.
fn compile_site(
    project: &Project,
    site: &str,
    options: &Options,
    mode: &Mode,
) -> Result<(Compiled, InOrder), SiteFailure> {
    match *mode {
        Mode::Write(out, use_cache) => {
            let c = project.write(site, options, out, use_cache)?;
            let dir = out.join(site);
            match c.outcome {
                Outcome::Cached => eprintln!(
                    "{site}: no input changed since out/{site} was written ({} hosts): nothing to do",
                    c.host_count()
                ),
                Outcome::Compiled { kept: 0 } => eprintln!(
                    "compiled {site} ({} hosts) into {}",
                    c.host_count(),
                    dir.display()
                ),
                Outcome::Compiled { kept } => eprintln!(
                    "compiled {site} ({} hosts, {kept} of them unchanged) into {}",
                    c.host_count(),
                    dir.display()
                ),
            }
            Ok((c, InOrder::Yes))
        }
        Mode::Compare(out, use_cache) => {
            let compared = project.compare(site, options, out, use_cache)?;
            for d in &compared.differences {
                eprintln!("{d}");
            }
            if compared.compiled.outcome == Outcome::Cached {
                eprintln!("{site}: out/ is current (no input changed since it was written)");
            } else if compared.differences.is_empty() {
                eprintln!("{site}: out/ is current");
            } else {
                eprintln!(
                    "{site}: {} file(s) differ from what the site compiles to; run `sitec compile {site}`",
                    compared.differences.len()
                );
            }
            let in_order = if compared.differences.is_empty() {
                InOrder::Yes
            } else {
                InOrder::No
            };
            Ok((compared.compiled, in_order))
        }
        Mode::Discard => Ok((project.check(site, options)?, InOrder::Yes)),
        Mode::Collect => Ok((project.compile(site, options)?, InOrder::Yes)),
    }
}

fn print_timings(c: &Compiled) {
    let total: std::time::Duration = c
        .timings
        .iter()
        .filter(|s| s.clock == Clock::Wall)
        .map(|s| s.time)
        .sum();
    for stage in &c.timings {
        // Thread-time lines split the line above them, indented.
        let (indent, suffix) = match stage.clock {
            Clock::Wall => ("", ""),
            Clock::Threads => ("  ", " (thread time)"),
        };
        let name = format!("{indent}{}{suffix}", stage.name);
        eprintln!(
            "{}: {name:<40} {:>9.3} s {:>5.1} %",
            c.site,
            stage.time.as_secs_f64(),
            100.0 * stage.time.as_secs_f64() / total.as_secs_f64().max(1e-9)
        );
    }
}

fn verify(dir: &Path) -> ExitCode {
    match sitec::verify(dir) {
        Ok(v) if v.ok() => {
            emit(&format!("{}\n", v.computed));
            ExitCode::SUCCESS
        }
        Ok(v) if !v.hash_ok() => {
            eprintln!(
                "error: {}: BUNDLE says {}, the files hash to {}\nhelp: the bundle was changed after sitec wrote it; `sitec compile` writes it again",
                dir.display(),
                v.recorded.as_deref().unwrap_or("nothing (no BUNDLE file)"),
                v.computed
            );
            ExitCode::from(1)
        }
        Ok(_) => {
            eprintln!(
                "error: {}: its index does not say what its manifest.json says (the host obeys the index)\nhelp: the bundle was changed after sitec wrote it; `sitec compile` writes it again",
                dir.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

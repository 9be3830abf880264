//! `sitec-agent`: the only place the agent prints or exits.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use sitec_agent::cli::{Command, USAGE};
use sitec_agent::layout::Layout;
use sitec_agent::lock::Lock;
use sitec_agent::os::Os;
use sitec_agent::run::{Env, Line, execute};
use sitec_format::exit::Exit;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = match Command::parse(&args) {
        Ok(c) => c,
        Err(usage) => {
            eprintln!("activate: {}\n{USAGE}", usage.0);
            return ExitCode::from(Exit::Error.code());
        }
    };
    let dir = match &mut command {
        Command::Hash { dir } => Some(dir),
        Command::Check {
            bundle: sitec_agent::cli::Bundle::Dir(dir),
            ..
        } => Some(dir),
        _ => None,
    };
    if let Some(dir) = dir {
        match std::path::absolute(&*dir) {
            Ok(d) => *dir = d,
            Err(e) => {
                eprintln!("activate: {}: {e}", dir.display());
                return ExitCode::from(Exit::Error.code());
            }
        }
    }
    if let Command::Plan {
        index: Some(text), ..
    } = &mut command
    {
        use std::io::Read as _;
        if let Err(e) = std::io::stdin().read_to_string(text) {
            eprintln!("activate: the index on stdin: {e}");
            return ExitCode::from(Exit::Error.code());
        }
    }
    let tmp: std::path::PathBuf = std::env::var_os("TMPDIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| "/tmp".into());
    let mut layout = Layout::default();
    // Off a managed host (no state of sitec's yet, or a directory checked
    // with stand-ins), the machine that checks keeps nothing of sitec's:
    // no log, no staged secrets; its state is a scratch directory, removed
    // after.
    let scratch_state = match &command {
        Command::Check { bundle, stand_ins }
            if !layout.state.is_dir()
                || (*stand_ins && matches!(bundle, sitec_agent::cli::Bundle::Dir(_))) =>
        {
            let dir = tmp.join(format!("sitec-check-state.{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&dir) {
                eprintln!("activate: {}: {e}", dir.display());
                return ExitCode::from(Exit::Error.code());
            }
            layout = Layout { state: dir.clone() };
            Some(dir)
        }
        _ => None,
    };
    let mut env = Env {
        ssh_connection: std::env::var("SSH_CONNECTION").ok(),
        pid: std::process::id(),
        tmp,
        busy: Lock::held(&layout),
        exe: std::env::current_exe().ok(),
        another_pull: false,
        hooks: sitec_agent::transition::Hooks {
            pause_at: std::env::var("SITEC_TEST_PAUSE_AT").ok(),
            pause_file: std::env::var_os("SITEC_TEST_PAUSE_FILE").map(Into::into),
            fail_at: std::env::var("SITEC_TEST_FAIL_AT").ok(),
        },
    };
    let _lock = match command.lock() {
        None => None,
        Some(wait) => match Lock::acquire(&layout, wait) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("activate: {e}");
                return ExitCode::from(e.exit().code());
            }
        },
    };
    let _pull_lock = if command == Command::Pull {
        match Lock::pull(&layout) {
            Ok(l) => {
                env.another_pull = l.is_none();
                l
            }
            Err(e) => {
                eprintln!("activate: {e}");
                return ExitCode::from(e.exit().code());
            }
        }
    } else {
        None
    };
    let mut fx = Os::new(Path::new("/"));
    // Each line as it is said; a closed stdout (the operator's session
    // gone) changes nothing.
    let mut print = |line: &Line| {
        let _ = match line {
            Line::Say(s) => {
                writeln!(std::io::stdout(), "{s}").and_then(|()| std::io::stdout().flush())
            }
            Line::Warn(w) => writeln!(std::io::stderr(), "activate: {w}"),
            Line::Listed(l) => writeln!(std::io::stderr(), "{l}"),
        };
    };
    let outcome = execute(&mut fx, &layout, &command, &env, &mut print);
    log(&layout, &outcome.log);
    if let Some(dir) = scratch_state {
        let _ = std::fs::remove_dir_all(dir);
    }
    ExitCode::from(outcome.exit.code())
}

/// Appends to the state directory's log, each line stamped with the time
/// (UTC) and this process.
fn log(layout: &Layout, lines: &[String]) {
    if lines.is_empty() || !layout.state.is_dir() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = sitec_agent::utc::utc(now);
    let pid = std::process::id();
    let text: String = lines
        .iter()
        .map(|l| format!("{stamp} [{pid}] {l}\n"))
        .collect();
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.state.join("log"))
        .and_then(|mut f| f.write_all(text.as_bytes()));
}

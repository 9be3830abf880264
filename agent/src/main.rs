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
    let layout = Layout::default();
    let env = Env {
        ssh_connection: std::env::var("SSH_CONNECTION").ok(),
        pid: std::process::id(),
        tmp: std::env::var_os("TMPDIR")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| "/tmp".into()),
        busy: Lock::held(&layout),
        exe: std::env::current_exe().ok(),
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
    let stamp = utc(now);
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

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_of_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_796_644_799), "2026-12-07T11:59:59Z");
    }
}

//! `sitec-agent`: the only place the agent prints or exits.

use std::path::Path;
use std::process::ExitCode;

use sitec_agent::cli::{Command, USAGE};
use sitec_agent::os::Os;
use sitec_format::exit::Exit;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exit = match Command::parse(&args) {
        Err(usage) => {
            eprintln!("sitec-agent: {}\n{USAGE}", usage.0);
            Exit::Error
        }
        Ok(command) => run(command),
    };
    ExitCode::from(exit.code())
}

fn run(command: Command) -> Exit {
    let fx = Os::new(Path::new("/"));
    match command {
        Command::Hash { dir } => {
            let dir = match std::path::absolute(&dir) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("sitec-agent: {}: {e}", dir.display());
                    return Exit::Error;
                }
            };
            match sitec_agent::bundle::hash(&fx, &dir) {
                Ok(h) => {
                    println!("{h}");
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("sitec-agent: {e}");
                    Exit::Error
                }
            }
        }
    }
}

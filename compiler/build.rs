//! Generates one `#[test]` per case file of the data-driven suites, as
//! Nickel's snapshot suite does per `.ncl` input: a failing case then fails
//! alone, under its own name, and never hides the cases after it.
//!
//! For each suite, `$OUT_DIR/<suite>_cases.rs` holds one
//! `#[test] fn <stem>() { case("<stem>") }` per `tests/<dir>/<stem>.<ext>`;
//! the suite's test file includes it and defines `case`.

use std::fmt::Write as _;
use std::path::Path;

/// (directory under tests/, extension, generated file).
const SUITES: &[(&str, &str, &str)] = &[
    ("diagnostics", "ncl", "diagnostics_cases.rs"),
    ("plan", "toml", "plan_cases.rs"),
];

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    for (dir, ext, generated) in SUITES {
        let dir = Path::new("tests").join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut stems: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| {
                e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                    .path()
            })
            .filter(|p| p.extension().is_some_and(|e| e == *ext))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        stems.sort();
        let mut code = String::new();
        for stem in &stems {
            let ident: String = stem
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let _ = writeln!(code, "#[test]\nfn {ident}() {{\n    case({stem:?});\n}}");
        }
        let path = Path::new(&out_dir).join(generated);
        std::fs::write(&path, code).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

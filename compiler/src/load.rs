//! Stage 1: evaluate `sites/<name>/site.ncl` with nickel-lang-core, the
//! `schemas/` contracts applied, into a [`tree::Node`] that keeps source spans.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nickel_lang_core::error::report::{ColorOpt, report_as_str};
use nickel_lang_core::error::{
    Error, EvalErrorKind, IntoDiagnostics, Label, LabelStyle, TypecheckErrorKind,
};
use nickel_lang_core::eval::cache::CacheImpl;
use nickel_lang_core::eval::value::{
    ArrayData, Container, EnumVariantData, NickelValue, ValueContentRef,
};
use nickel_lang_core::files::{FileId, Files};
use nickel_lang_core::position::{PosTable, TermPos};
use nickel_lang_core::program::{Program, ProgramBuilder};

use crate::diagnostic::{Report, Severity};
use crate::tree::{Field, Node, Sources, Span, Value, line_column};

/// A site evaluated by Nickel.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) root: Node,
    pub(crate) sources: Sources,
    /// Every file the evaluation read (site, imports, schemas) with the
    /// sha256 of the content Nickel evaluated: the input-hash cache's inputs.
    pub(crate) inputs: Vec<(PathBuf, String)>,
    /// How long Nickel's evaluation alone took (the rest of `load` walks the
    /// value into the tree).
    pub(crate) evaluation: std::time::Duration,
}

/// Why a site did not evaluate.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The site file could not be read.
    Io { path: PathBuf, message: String },
    /// Nickel rejected the site: parse, type or contract errors, each
    /// rendered with its source snippets.
    Nickel { reports: Vec<Report> },
}

/// Evaluates a site file with the Site contract of `schemas_dir` applied.
///
/// Nickel makes every path absolute; `display_root` is stripped from the file
/// names shown in messages, so they read `sites/x/site.ncl` wherever the
/// project lives.
pub(crate) fn load(
    site_file: &Path,
    schemas_dir: &Path,
    display_root: &Path,
    color: bool,
) -> Result<Loaded, LoadError> {
    let prefix = std::fs::canonicalize(display_root)
        .map(|p| format!("{}/", p.display()))
        .unwrap_or_default();
    let schema_prefix = std::fs::canonicalize(schemas_dir)
        .map(|p| format!("{}/", p.display()))
        .unwrap_or_default();
    if let Err(e) = std::fs::metadata(site_file) {
        return Err(LoadError::Io {
            path: site_file.to_path_buf(),
            message: e.to_string(),
        });
    }
    let mut program = program(site_file, schemas_dir)?;
    let color = if color {
        ColorOpt::Always
    } else {
        ColorOpt::Never
    };
    let started = std::time::Instant::now();
    let value = match program.eval_full_for_export() {
        Ok(v) => v,
        Err(error) => {
            let mut files = program.files();
            return Err(LoadError::Nickel {
                reports: nickel_reports(&mut files, error, color, &prefix, &schema_prefix),
            });
        }
    };
    let evaluated = started.elapsed();
    let files = program.files();
    let mut walker = Walker {
        files: &files,
        pos_table: program.pos_table(),
        file_index: BTreeMap::new(),
        sources: Sources::default(),
        prefix: &prefix,
        schema_prefix: &schema_prefix,
    };
    let root = walker.node(&value);
    Ok(Loaded {
        root,
        sources: walker.sources,
        inputs: evaluated_files(&files),
        evaluation: evaluated,
    })
}

/// The non-stdlib files of an evaluation with the sha256 of their content as
/// evaluated (not as on disk now: a file edited during the compile must not
/// be recorded as what was compiled).
fn evaluated_files(files: &Files) -> Vec<(PathBuf, String)> {
    let stdlib = files.stdlib_modules().count();
    let mut inputs: Vec<(PathBuf, String)> = (stdlib..files.filenames().count())
        .filter_map(|n| {
            // FileId's field is private; its serde form is the index.
            let id: FileId = serde_json::from_value(serde_json::Value::from(n)).ok()?;
            let path = std::fs::canonicalize(files.name(id)).ok()?;
            Some((path, crate::bundle::sha256_hex(files.source(id).as_bytes())))
        })
        .collect();
    inputs.sort();
    inputs.dedup();
    inputs
}

/// The site with `schemas/contract.ncl` applied, ready to evaluate.
fn program(site_file: &Path, schemas_dir: &Path) -> Result<Program<CacheImpl>, LoadError> {
    let contract = schemas_dir.join("contract.ncl");
    ProgramBuilder::new()
        .add_path(site_file.as_os_str())
        .add_contract_paths([contract.as_os_str()])
        .add_import_paths([schemas_dir.to_path_buf()])
        .build()
        .map_err(|e| LoadError::Io {
            path: site_file.to_path_buf(),
            message: e.to_string(),
        })
}

/// Evaluation alone, as `load` does it but keeping nothing: the floor the
/// benchmark measures compile against. Errors are only counted.
pub(crate) fn evaluate_only(site_file: &Path, schemas_dir: &Path) -> Result<bool, LoadError> {
    let mut program = program(site_file, schemas_dir)?;
    Ok(program.eval_full_for_export().is_ok())
}

struct Walker<'a> {
    files: &'a Files,
    pos_table: &'a PosTable,
    file_index: BTreeMap<FileId, usize>,
    sources: Sources,
    prefix: &'a str,
    schema_prefix: &'a str,
}

impl Walker<'_> {
    fn span(&mut self, pos: TermPos) -> Option<Span> {
        let raw = pos.into_opt()?;
        if self.files.is_stdlib(raw.src_id) {
            return None;
        }
        let next = self.sources.named.len();
        let file = *self.file_index.entry(raw.src_id).or_insert(next);
        if file == next {
            let name = PathBuf::from(self.files.name(raw.src_id));
            let schema = !self.schema_prefix.is_empty() && name.starts_with(self.schema_prefix);
            let name = name
                .strip_prefix(self.prefix)
                .map(Path::to_path_buf)
                .unwrap_or(name);
            self.sources
                .push(name, self.files.clone_source(raw.src_id), schema);
        }
        Some(Span {
            file,
            start: raw.start.to_usize(),
            end: raw.end.to_usize(),
        })
    }

    fn node(&mut self, v: &NickelValue) -> Node {
        let span = self.span(v.pos(self.pos_table));
        let value = match v.content_ref() {
            ValueContentRef::Null => Value::Null,
            ValueContentRef::Bool(b) => Value::Bool(b),
            ValueContentRef::Number(_) => match serde_json::to_value(v) {
                Ok(serde_json::Value::Number(n)) => Value::Number(n),
                _ => Value::Null,
            },
            ValueContentRef::String(s) => Value::String(s.to_string()),
            ValueContentRef::EnumVariant(EnumVariantData { tag, .. }) => {
                Value::Tag(tag.label().to_string())
            }
            ValueContentRef::Array(Container::Empty) => Value::Array(Vec::new()),
            ValueContentRef::Array(Container::Alloc(ArrayData { array, .. })) => {
                Value::Array(array.iter().map(|item| self.node(item)).collect())
            }
            ValueContentRef::Record(Container::Empty) => Value::Record(BTreeMap::new()),
            ValueContentRef::Record(Container::Alloc(record)) => {
                let mut fields = BTreeMap::new();
                for (id, field) in &record.fields {
                    let Some(value) = &field.value else { continue };
                    if field.metadata.not_exported() {
                        continue;
                    }
                    let name_span = self.span(id.pos);
                    fields.insert(
                        id.label().to_string(),
                        Field {
                            name_span,
                            node: self.node(value),
                        },
                    );
                }
                Value::Record(fields)
            }
            // eval_full_for_export leaves nothing else in a value that exports;
            // functions and the like become null, which the model then rejects.
            _ => Value::Null,
        };
        Node { value, span }
    }
}

/// One report per diagnostic of a Nickel error, with the absolute project
/// root stripped from file names.
pub(crate) fn nickel_reports(
    files: &mut Files,
    error: Error,
    color: ColorOpt,
    prefix: &str,
    schema_prefix: &str,
) -> Vec<Report> {
    let code = match &error {
        Error::ParseErrors(_) => "nickel::parse",
        Error::TypecheckError(e) => match e.borrow_error() {
            TypecheckErrorKind::ImportError(_) => "nickel::import",
            _ => "nickel::type",
        },
        Error::ImportError(_) => "nickel::import",
        Error::EvalError(e) => match e.error {
            EvalErrorKind::BlameError { .. } => "nickel::contract",
            EvalErrorKind::MissingFieldDef { .. } => "nickel::missing-field",
            _ => "nickel::eval",
        },
        _ => "nickel::eval",
    };
    let strip = |s: &str| {
        if prefix.is_empty() {
            s.to_string()
        } else {
            s.replace(prefix, "")
        }
    };
    let diagnostics = error.into_diagnostics(files);
    diagnostics
        .into_iter()
        .map(|mut d| {
            d.code = Some(code.to_string());
            let help = if d.notes.is_empty() {
                let help = default_help(code);
                d.notes.push(format!("help: {help}"));
                help.to_string()
            } else {
                d.notes.join("\n")
            };
            // Locate the report in the site where possible: a missing
            // field's primary label is in the schema, its record in the site.
            let in_site = |l: &&Label<FileId>| {
                let name = files.name(l.file_id).to_string_lossy();
                !files.is_stdlib(l.file_id)
                    && !name.starts_with('<')
                    && (schema_prefix.is_empty() || !name.starts_with(schema_prefix))
            };
            let primary = d
                .labels
                .iter()
                .filter(in_site)
                .find(|l| l.style == LabelStyle::Primary)
                .or_else(|| d.labels.iter().find(in_site))
                .or_else(|| d.labels.iter().find(|l| l.style == LabelStyle::Primary))
                .or(d.labels.first());
            let (line, column) = primary
                .map(|l| line_column(files.source(l.file_id), l.range.start))
                .unzip();
            Report {
                code: code.to_string(),
                severity: Severity::Error,
                message: strip(&d.message),
                help,
                file: primary.map(|l| strip(&files.name(l.file_id).to_string_lossy())),
                line,
                column,
                rendered: strip(&report_as_str(files, d, color)),
            }
        })
        .collect()
}

/// The WireGuard private keys of a keys directory: every regular file,
/// as (file name, trimmed content), sorted by name.
pub(crate) fn private_keys(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if !path.is_file() {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        keys.push((name, text.trim().to_string()));
    }
    keys.sort();
    Ok(keys)
}

/// What to do about a Nickel error that carries no note of its own.
fn default_help(code: &str) -> &'static str {
    match code {
        "nickel::missing-field" => {
            "set the field in this record; `sitec explain nickel::missing-field` and the schema's doc say what it holds"
        }
        "nickel::parse" => {
            "look just before the marked token: a missing `,` between fields, an unclosed bracket or quote"
        }
        "nickel::import" => "fix the path; imports are relative to the importing file",
        "nickel::type" => "the annotated type and the expression disagree; fix one of them",
        "nickel::contract" => "the schema's doc for this field says what it accepts",
        _ => {
            "fix the expression at the marked span; `sitec explain nickel::eval` lists common causes"
        }
    }
}

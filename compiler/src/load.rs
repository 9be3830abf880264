//! Stage 1: evaluate `sites/<name>/site.ncl` with nickel-lang-core and
//! check it against `schemas/`, into a [`tree::Node`] that keeps source
//! spans.
//!
//! Two ways, one result. First Nickel evaluates the site without the
//! schemas' contracts (the site's own `| sitec.Site` blanked out) and
//! [`crate::schema`] checks the value and fills in the defaults as the
//! contracts would: the contracts themselves cost several times the
//! evaluation. When that evaluation fails, the schema refuses a value, or
//! the site sets defaults of its own (whose merge with the schema's
//! Nickel decides), Nickel evaluates the site again with the contracts
//! applied, and its errors are what the operator sees. `tests/` compare
//! the two ways on every site they have.

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

use nickel_lang_core::term::{Import, MergePriority, Term, UnaryOp};
use nickel_lang_core::typ::TypeF;

use crate::diagnostic::{Diagnostic, Report, Severity, Shown};
use crate::schema::{Schema, UnknownField};
use crate::timing::Stage;
use crate::tree::{Field, Node, Sources, Span, Value, line_column};

/// A site evaluated by Nickel.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) root: Node,
    pub(crate) sources: Sources,
    /// Every file the evaluation read (site, imports, schemas) with the
    /// sha256 of the content Nickel evaluated: the input-hash cache's inputs.
    pub(crate) inputs: Vec<(PathBuf, String)>,
    /// How long each part of loading took, in order.
    pub(crate) stages: Vec<Stage>,
}

/// A site evaluated, and what its evaluation leaves behind.
pub(crate) struct Evaluated {
    pub(crate) loaded: Loaded,
    pub(crate) heap: NickelHeap,
}

/// Nickel's program and value after the walk into [`Loaded`]: nothing reads
/// them any more, but freeing them takes a while (some 60 ms at a thousand
/// hosts, every closure a small allocation), so the caller frees them as a
/// stage of its own (`--timings` shows it), before it builds the model in
/// the memory they held. Not `Send`: Nickel's heap is reference-counted.
pub(crate) struct NickelHeap {
    _program: Program<CacheImpl>,
    _value: NickelValue,
}

/// How a site is checked against the schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contracts {
    /// By sitec, from the schemas read as data; by Nickel's contracts when
    /// sitec refuses (the default).
    #[default]
    Sitec,
    /// By Nickel's contracts only.
    Nickel,
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
    contracts: Contracts,
) -> Result<Evaluated, LoadError> {
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
    if contracts == Contracts::Sitec {
        match load_checked_by_sitec(site_file, schemas_dir, &prefix, &schema_prefix) {
            Ok(loaded) => return Ok(loaded),
            Err(Declined {
                report: Some(report),
                ..
            }) => {
                return Err(LoadError::Nickel {
                    reports: vec![*report],
                });
            }
            Err(_) => {}
        }
    }
    let mut program = program(site_file, schemas_dir)?;
    let started = std::time::Instant::now();
    let value = match program.eval_full_for_export() {
        Ok(v) => v,
        Err(error) => {
            let mut files = program.files();
            return Err(LoadError::Nickel {
                reports: nickel_reports(&mut files, error, &prefix, &schema_prefix),
            });
        }
    };
    let evaluated = started.elapsed();
    let files = program.files();
    let mut walker = Walker::new(&files, program.pos_table(), &prefix, &schema_prefix);
    let root = walker.node(&value);
    let loaded = Loaded {
        root,
        sources: walker.sources,
        inputs: evaluated_files(&files),
        stages: vec![
            Stage::wall("evaluate with the contracts (Nickel)", evaluated),
            Stage::wall(
                "walk the value into the span tree",
                started.elapsed() - evaluated,
            ),
        ],
    };
    Ok(Evaluated {
        loaded,
        heap: NickelHeap {
            _program: program,
            _value: value,
        },
    })
}

/// Why the first way of [`load`] did not answer with the site's value.
#[derive(Debug)]
pub(crate) struct Declined {
    /// For tests.
    pub(crate) why: String,
    /// What sitec reports itself, when it knows better than Nickel's
    /// contracts would (a field the schema does not have: at the field,
    /// with the closest name it does have); `None` leaves the report to
    /// Nickel's contracts.
    pub(crate) report: Option<Box<Report>>,
}

impl From<String> for Declined {
    fn from(why: String) -> Declined {
        Declined { why, report: None }
    }
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// The site's tree with its sources, for labelling a finding of `load`.
struct Tree<'a> {
    root: &'a Node,
    sources: &'a Sources,
}

impl crate::tree::Spanned for Tree<'_> {
    fn root(&self) -> &Node {
        self.root
    }
    fn sources(&self) -> &Sources {
        self.sources
    }
}

/// The code of a field the schema does not have.
pub(crate) const UNKNOWN_FIELD: &str = "schema::unknown-field";

/// A field the schema does not have, reported at its name with the
/// closest name the record has (or all of them).
fn unknown_field_report(u: &UnknownField, root: &Node, sources: &Sources) -> Report {
    let name = u
        .path
        .steps()
        .last()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let help = match closest(&name, &u.known) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("the fields here are {}", quoted_list(&u.known)),
    };
    let steps = u.path.steps();
    let record = crate::tree::FieldPath::new(steps[..steps.len().saturating_sub(1)].to_vec());
    let of = if steps.len() > 1 {
        format!("of `{record}`")
    } else {
        "of a site".to_string()
    };
    Diagnostic::error(UNKNOWN_FIELD, format!("`{name}` is not a field {of}"))
        .help(help)
        .at_name(&Tree { root, sources }, &u.path, "unknown field")
        .report(sources)
}

fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// The known name nearest to `name` by edit distance (a swap of two
/// neighbours counts one), if it is near enough to be the one meant.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.chars().count() / 3))
        .min()
        .map(|(_, k)| k.as_str())
}

/// Optimal string alignment distance: insertions, deletions,
/// substitutions and swaps of adjacent characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The first way of [`load`]: Nickel evaluates the site without the
/// schemas' contracts, sitec checks it against the schemas read as data.
/// `Err` says why this way does not answer (for tests), and holds the
/// report when sitec makes it itself; `load` otherwise asks Nickel's
/// contracts.
pub(crate) fn load_checked_by_sitec(
    site_file: &Path,
    schemas_dir: &Path,
    prefix: &str,
    schema_prefix: &str,
) -> Result<Evaluated, Declined> {
    let started = std::time::Instant::now();
    let schema = Schema::read(schemas_dir).map_err(Declined::from)?;
    let read = started.elapsed();
    let (mut program, site_path, text) =
        program_without_contracts(site_file, schemas_dir).map_err(Declined::from)?;
    let value = program
        .eval_full_for_export()
        .map_err(|_| "Nickel reports an error".to_string())?;
    let evaluated = started.elapsed();
    let files = program.files();
    let mut walker = Walker::new(&files, program.pos_table(), prefix, schema_prefix);
    let mut root = walker.node(&value);
    if walker.defaults > 0 {
        return Err(Declined::from(
            "the site sets defaults of its own: Nickel merges them with the schema's".to_string(),
        ));
    }
    let walked = started.elapsed();
    let display = |path: &Path| {
        let name = path.display().to_string();
        name.strip_prefix(prefix)
            .map(str::to_string)
            .unwrap_or(name)
    };
    if let Err(refused) = schema.apply(&mut root, &mut walker.sources, &display) {
        let report = refused
            .unknown_field
            .as_ref()
            .map(|u| Box::new(unknown_field_report(u, &root, &walker.sources)));
        return Err(Declined {
            why: refused.message,
            report,
        });
    }
    // What was read, as it was read: the site as on disk (not as blanked
    // out for the evaluation) and every schema file.
    let site_hash = crate::hash::sha256_hex(text.as_bytes());
    let mut inputs: Vec<(PathBuf, String)> = evaluated_files(&files)
        .into_iter()
        .filter(|(p, _)| *p != site_path)
        .chain([(site_path.clone(), site_hash)])
        .chain(
            schema
                .files()
                .iter()
                .map(|f| (f.path.clone(), crate::hash::sha256_hex(f.text.as_bytes()))),
        )
        .collect();
    inputs.sort();
    inputs.dedup();
    let loaded = Loaded {
        root,
        sources: walker.sources,
        inputs,
        stages: vec![
            Stage::wall("read the schemas", read),
            Stage::wall("evaluate without the contracts (Nickel)", evaluated - read),
            Stage::wall("walk the value into the span tree", walked - evaluated),
            Stage::wall("check against the schemas", started.elapsed() - walked),
        ],
    };
    drop(files);
    Ok(Evaluated {
        loaded,
        heap: NickelHeap {
            _program: program,
            _value: value,
        },
    })
}

/// The site as a program without the schemas' contracts: the site's own
/// top-level `| sitec.Site` (`sitec` an import of `schemas/site.ncl`) is
/// blanked out with spaces, so every position stays where it was. A site
/// with any other top-level annotation is refused. Also the site's
/// canonical path and its text as read.
fn program_without_contracts(
    site_file: &Path,
    schemas_dir: &Path,
) -> Result<(Program<CacheImpl>, PathBuf, String), String> {
    let path = std::fs::canonicalize(site_file).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let build = |source: String| {
        ProgramBuilder::new()
            .add_source(std::io::Cursor::new(source.into_bytes()), path.as_os_str())
            .add_import_paths([schemas_dir.to_path_buf()])
            .build()
            .map_err(|e| e.to_string())
    };
    let (term, table) = crate::schema::parse(&path, &text).ok_or("the site does not parse")?;
    let site_schema = std::fs::canonicalize(schemas_dir.join("site.ncl")).ok();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut imports = BTreeMap::new();
    let mut body = term;
    loop {
        let next = match body.content_ref() {
            ValueContentRef::Term(Term::Let(data)) if !data.attrs.rec => {
                for (id, value) in &data.bindings {
                    if let ValueContentRef::Term(Term::Import(Import::Path { path, .. })) =
                        value.content_ref()
                    {
                        imports.insert(
                            id.label().to_string(),
                            std::fs::canonicalize(dir.join(path)).ok(),
                        );
                    }
                }
                data.body.clone()
            }
            _ => break,
        };
        body = next;
    }
    let mut blanked = text.clone();
    if let ValueContentRef::Term(Term::Annotated(data)) = body.content_ref() {
        let annot = &data.annot;
        let [contract] = annot.contracts.as_slice() else {
            return Err("the site has a top-level annotation other than `| sitec.Site`".into());
        };
        let site_contract = match &contract.typ.typ {
            TypeF::Contract(c) => match c.content_ref() {
                ValueContentRef::Term(Term::Op1(op)) => {
                    matches!(&op.op, UnaryOp::RecordAccess(f) if f.label() == "Site")
                        && matches!(op.arg.content_ref(), ValueContentRef::Term(Term::Var(v))
                            if imports.get(v.label()).is_some_and(|p| p.is_some() && *p == site_schema))
                }
                _ => false,
            },
            _ => false,
        };
        let (Some(inner), Some(whole)) = (
            data.inner.pos(&table).into_opt(),
            body.pos(&table).into_opt(),
        ) else {
            return Err("the site's annotation has no position".into());
        };
        let range = inner.end.to_usize()..whole.end.to_usize();
        if annot.typ.is_some()
            || !site_contract
            || !text.get(range.clone()).is_some_and(|a| a.is_ascii())
        {
            return Err("the site has a top-level annotation other than `| sitec.Site`".into());
        }
        let spaces: String = text[range.clone()]
            .chars()
            .map(|c| if c == '\n' { c } else { ' ' })
            .collect();
        blanked.replace_range(range, &spaces);
    }
    Ok((build(blanked)?, path, text))
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
            Some((path, crate::hash::sha256_hex(files.source(id).as_bytes())))
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

/// Nickel's evaluation of the site without the schemas' contracts and
/// nothing else, as [`load_checked_by_sitec`] starts: the floor the
/// benchmark measures compile against. Errors are only counted.
pub(crate) fn evaluate_without_contracts(
    site_file: &Path,
    schemas_dir: &Path,
) -> Result<bool, LoadError> {
    let (mut program, _, _) =
        program_without_contracts(site_file, schemas_dir).map_err(|message| LoadError::Io {
            path: site_file.to_path_buf(),
            message,
        })?;
    Ok(program.eval_full_for_export().is_ok())
}

struct Walker<'a> {
    files: &'a Files,
    pos_table: &'a PosTable,
    file_index: BTreeMap<FileId, usize>,
    sources: Sources,
    prefix: &'a str,
    schema_prefix: &'a str,
    /// How many fields had default priority.
    defaults: usize,
}

impl<'a> Walker<'a> {
    fn new(
        files: &'a Files,
        pos_table: &'a PosTable,
        prefix: &'a str,
        schema_prefix: &'a str,
    ) -> Walker<'a> {
        Walker {
            files,
            pos_table,
            file_index: BTreeMap::new(),
            sources: Sources::default(),
            prefix,
            schema_prefix,
            defaults: 0,
        }
    }

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
                    if matches!(field.metadata.priority(), MergePriority::Bottom) {
                        self.defaults += 1;
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
                shown: Shown::Nickel {
                    plain: strip(&report_as_str(files, d.clone(), ColorOpt::Never)),
                    colored: strip(&report_as_str(files, d, ColorOpt::Always)),
                },
            }
        })
        .collect()
}

/// A WireGuard private key of the `--keys` directory: no string of the
/// site may hold it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PrivateKey {
    /// The file's name, e.g. `pve1.key`.
    pub(crate) file: String,
    /// Its content, trimmed.
    pub(crate) key: String,
}

/// The WireGuard private keys of a keys directory: every regular file,
/// sorted by name.
pub(crate) fn private_keys(dir: &Path) -> Result<Vec<PrivateKey>, String> {
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
        keys.push(PrivateKey {
            file: name,
            key: text.trim().to_string(),
        });
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
        "nickel::import" => {
            "fix the path; imports are relative to the importing file. A file imported `as 'Text` must be UTF-8 text: encrypt an age file with `age --armor`"
        }
        "nickel::type" => "the annotated type and the expression disagree; fix one of them",
        "nickel::contract" => "the schema's doc for this field says what it accepts",
        _ => {
            "fix the expression at the marked span; `sitec explain nickel::eval` lists common causes"
        }
    }
}

#[cfg(test)]
mod tests {
    //! The two ways of `load` give one result: on every site of the
    //! project and every diagnostics case, the value sitec checked against
    //! the schemas is the one Nickel's contracts give, span for span, and
    //! what Nickel's contracts refuse sitec refuses too.

    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn prefixes() -> (String, String) {
        let r = std::fs::canonicalize(root()).unwrap();
        (
            format!("{}/", r.display()),
            format!("{}/", r.join("schemas").display()),
        )
    }

    /// Where two trees first differ, as a path.
    fn difference(a: &Loaded, b: &Loaded) -> Option<String> {
        fn span(l: &Loaded, s: Option<Span>) -> Option<(String, usize, usize)> {
            s.map(|s| (l.sources.name(s.file).to_string(), s.start, s.end))
        }
        fn walk(a: &Loaded, x: &Node, b: &Loaded, y: &Node, at: &str) -> Option<String> {
            if span(a, x.span) != span(b, y.span) {
                return Some(format!(
                    "{at}: span {:?} vs {:?}",
                    span(a, x.span),
                    span(b, y.span)
                ));
            }
            match (&x.value, &y.value) {
                (Value::Array(p), Value::Array(q)) => {
                    if p.len() != q.len() {
                        return Some(format!("{at}: {} vs {} items", p.len(), q.len()));
                    }
                    p.iter()
                        .zip(q)
                        .enumerate()
                        .find_map(|(i, (m, n))| walk(a, m, b, n, &format!("{at}[{i}]")))
                }
                (Value::Record(p), Value::Record(q)) => {
                    let (pk, qk): (Vec<_>, Vec<_>) = (p.keys().collect(), q.keys().collect());
                    if pk != qk {
                        return Some(format!("{at}: fields {pk:?} vs {qk:?}"));
                    }
                    p.iter().find_map(|(k, f)| {
                        let g = &q[k];
                        let at = format!("{at}.{k}");
                        if span(a, f.name_span) != span(b, g.name_span) {
                            return Some(format!(
                                "{at}: name span {:?} vs {:?}",
                                span(a, f.name_span),
                                span(b, g.name_span)
                            ));
                        }
                        walk(a, &f.node, b, &g.node, &at)
                    })
                }
                _ if x.to_json() == y.to_json() => None,
                _ => Some(format!("{at}: {} vs {}", x.to_json(), y.to_json())),
            }
        }
        walk(a, &a.root, b, &b.root, "site")
    }

    fn sites() -> Vec<PathBuf> {
        let mut sites = Vec::new();
        for dir in ["sites", "tests/diagnostics"] {
            for entry in walkdir::WalkDir::new(root().join(dir)).sort_by_file_name() {
                let entry = entry.unwrap();
                if entry.path().extension().is_some_and(|e| e == "ncl") {
                    sites.push(entry.path().to_path_buf());
                }
            }
        }
        sites
    }

    #[test]
    fn sitec_and_nickel_check_every_site_alike() {
        let (prefix, schema_prefix) = prefixes();
        let schemas = root().join("schemas");
        let mut checked_by_sitec = 0;
        for site in sites() {
            let nickel = load(&site, &schemas, &root(), Contracts::Nickel).map(|e| e.loaded);
            let sitec =
                load_checked_by_sitec(&site, &schemas, &prefix, &schema_prefix).map(|e| e.loaded);
            match (nickel, sitec) {
                (Ok(n), Ok(s)) => {
                    checked_by_sitec += 1;
                    if let Some(d) = difference(&n, &s) {
                        panic!("{}: {d}", site.display());
                    }
                }
                (Ok(_), Err(e)) => {
                    panic!("{}: sitec refuses what Nickel accepts: {e}", site.display())
                }
                (Err(_), Ok(_)) => panic!("{}: sitec accepts what Nickel refuses", site.display()),
                (Err(_), Err(_)) => {}
            }
        }
        assert!(checked_by_sitec > 20, "{checked_by_sitec}");
    }
}

//! Stage 1: evaluate `sites/<name>/site.ncl` with nickel-lang-core, the
//! `schemas/` contracts applied, into a [`tree::Node`] that keeps source spans.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nickel_lang_core::error::report::{ColorOpt, report_as_str};
use nickel_lang_core::eval::cache::CacheImpl;
use nickel_lang_core::eval::value::{
    ArrayData, Container, EnumVariantData, NickelValue, ValueContentRef,
};
use nickel_lang_core::files::{FileId, Files};
use nickel_lang_core::position::{PosTable, TermPos};
use nickel_lang_core::program::{Program, ProgramBuilder};

use crate::tree::{Field, Node, Sources, Span, Value};

/// A site evaluated by Nickel.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) root: Node,
    pub(crate) sources: Sources,
}

/// Why a site did not evaluate.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The site file could not be read.
    Io { path: PathBuf, message: String },
    /// Nickel rejected the site: parse, type or contract error, already rendered
    /// with its source snippets.
    Nickel { rendered: String },
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
    if let Err(e) = std::fs::metadata(site_file) {
        return Err(LoadError::Io {
            path: site_file.to_path_buf(),
            message: e.to_string(),
        });
    }
    let contract = schemas_dir.join("contract.ncl");
    let mut program: Program<CacheImpl> = ProgramBuilder::new()
        .add_path(site_file.as_os_str())
        .add_contract_paths([contract.as_os_str()])
        .add_import_paths([schemas_dir.to_path_buf()])
        .build()
        .map_err(|e| LoadError::Io {
            path: site_file.to_path_buf(),
            message: e.to_string(),
        })?;
    let color = if color {
        ColorOpt::Always
    } else {
        ColorOpt::Never
    };
    let value = match program.eval_full_for_export() {
        Ok(v) => v,
        Err(error) => {
            let mut files = program.files();
            let rendered = report_as_str(&mut files, error, color);
            return Err(LoadError::Nickel {
                rendered: if prefix.is_empty() {
                    rendered
                } else {
                    rendered.replace(&prefix, "")
                },
            });
        }
    };
    let files = program.files();
    let mut walker = Walker {
        files: &files,
        pos_table: program.pos_table(),
        file_index: BTreeMap::new(),
        sources: Sources::default(),
        prefix: &prefix,
    };
    let root = walker.node(&value);
    Ok(Loaded {
        root,
        sources: walker.sources,
    })
}

struct Walker<'a> {
    files: &'a Files,
    pos_table: &'a PosTable,
    file_index: BTreeMap<FileId, usize>,
    sources: Sources,
    prefix: &'a str,
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
            let name = name
                .strip_prefix(self.prefix)
                .map(Path::to_path_buf)
                .unwrap_or(name);
            self.sources.push(name, self.files.clone_source(raw.src_id));
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

//! sitec's own diagnostics: a stable code, a message in the operator's words,
//! a help line and labels on `.ncl` spans; and [`Report`], the form every
//! finding (sitec's or Nickel's) leaves the library in: data, which the CLI
//! renders when it prints (miette's graphical form, coloured or not).

use serde::{Deserialize, Serialize};

use crate::tree::{FieldPath, Sources, Span, Spanned, floor_char_boundary};

/// How bad a finding is: errors stop the compile, warnings are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a site.
#[derive(Debug, Clone)]
pub(crate) struct Diagnostic {
    pub(crate) code: &'static str,
    pub(crate) severity: Severity,
    pub(crate) message: String,
    pub(crate) help: String,
    /// The first is the primary one.
    pub(crate) labels: Vec<Label>,
}

/// A span of the site and what a finding says of it.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub(crate) span: Span,
    pub(crate) text: String,
}

impl Diagnostic {
    pub(crate) fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: String::new(),
            labels: Vec::new(),
        }
    }

    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Labels the value at `path` of the site tree (or, failing that, the
    /// nearest enclosing value that has a position).
    ///
    /// When the value is a schema default, its span is in `schemas/`; the
    /// nearest enclosing value written in the site is labelled first, as the
    /// place that selected the default (and where the fix goes), and the
    /// default itself second.
    pub(crate) fn at(
        mut self,
        site: &impl Spanned,
        path: &FieldPath,
        label: impl Into<String>,
    ) -> Self {
        let (root, sources) = (site.root(), site.sources());
        let path = path.steps();
        let label = label.into();
        let spans = (0..=path.len())
            .rev()
            .filter_map(|n| root.get_steps(&path[..n]).and_then(|node| node.span));
        let mut first = None;
        for span in spans {
            if !sources.is_schema(span.file) {
                match first {
                    None => self.labels.push(Label { span, text: label }),
                    Some(default) => {
                        let field = path.last().map_or("value".to_string(), |s| s.to_string());
                        self.labels.push(Label {
                            span,
                            text: format!("`{field}` is not set here, so the schema's default applies: {label}"),
                        });
                        self.labels.push(Label {
                            span: default,
                            text: "the default".to_string(),
                        });
                    }
                }
                return self;
            }
            first.get_or_insert(span);
        }
        if let Some(span) = first {
            self.labels.push(Label { span, text: label });
        }
        self
    }

    /// Labels a span found by walking the tree.
    pub(crate) fn at_span(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: label.into(),
        });
        self
    }

    /// Labels the field name at the end of `path` (`members.pve4 =`), or the
    /// value there when the name has no position.
    pub(crate) fn at_name(
        self,
        site: &impl Spanned,
        path: &FieldPath,
        label: impl Into<String>,
    ) -> Self {
        match site.root().field_name_span(path.steps()) {
            Some(span) if !site.sources().is_schema(span.file) => {
                let mut d = self;
                d.labels.push(Label {
                    span,
                    text: label.into(),
                });
                d
            }
            _ => self.at(site, path, label),
        }
    }

    /// Sort key: file name, then position, then code.
    fn sort_key<'a>(&'a self, sources: &'a Sources) -> (Option<(&'a str, usize)>, &'static str) {
        let pos = self
            .labels
            .first()
            .map(|l| (sources.name(l.span.file), l.span.start));
        (pos, self.code)
    }

    /// The report of this finding: its fields, and an excerpt of each file
    /// it labels (the primary label's file first).
    pub(crate) fn report(&self, sources: &Sources) -> Report {
        let (file, line, column) = match self.labels.first() {
            Some(Label { span, .. }) => {
                let (line, column) = sources.line_column(*span);
                (
                    Some(sources.name(span.file).to_string()),
                    Some(line),
                    Some(column),
                )
            }
            None => (None, None, None),
        };
        let mut files: Vec<usize> = Vec::new();
        for l in &self.labels {
            if !files.contains(&l.span.file) {
                files.push(l.span.file);
            }
        }
        // The primary label's file, then the others in file order.
        let primary = 1.min(files.len());
        files[primary..].sort_unstable();
        let excerpts = files
            .into_iter()
            .map(|file| self.excerpt(sources, file))
            .collect();
        Report {
            code: self.code.to_string(),
            severity: self.severity,
            message: self.message.clone(),
            help: self.help.clone(),
            file,
            line,
            column,
            shown: Shown::Excerpts(excerpts),
        }
    }

    /// The lines of `file` that this finding's labels in it cover, with
    /// [`EXCERPT_CONTEXT`] lines around them.
    fn excerpt(&self, sources: &Sources, file: usize) -> Excerpt {
        let text = sources.text(file);
        let labels = merged(self.labels.iter().filter(|l| l.span.file == file));
        let first = labels.iter().map(|l| l.span.start).min().unwrap_or(0);
        let last = labels.iter().map(|l| l.span.end).max().unwrap_or(0);
        let (start, first_line) = line_start_before(text, first, EXCERPT_CONTEXT);
        let end = line_end_after(text, last, EXCERPT_CONTEXT);
        Excerpt {
            file: sources.name(file).to_string(),
            first_line,
            text: text[start..end].to_string(),
            labels: labels
                .into_iter()
                .map(|l| ExcerptLabel {
                    start: l.span.start.clamp(start, end) - start,
                    len: l.span.end.clamp(start, end) - l.span.start.clamp(start, end),
                    text: l.text.clone(),
                })
                .collect(),
        }
    }
}

/// The labels with one label per span: two places a finding names that are
/// the same text (a function or a `let` that made both values) become one
/// label that says both.
fn merged<'a>(labels: impl Iterator<Item = &'a Label>) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::new();
    for l in labels {
        match out.iter_mut().find(|o| o.span == l.span) {
            Some(o) if o.text != l.text => {
                o.text = format!("{}; {} (the same lines make both)", o.text, l.text);
            }
            Some(_) => {}
            None => out.push(l.clone()),
        }
    }
    out
}

/// Lines of context an excerpt keeps around its labels: more than the one
/// line the CLI shows.
const EXCERPT_CONTEXT: usize = 2;

/// The start of the line `context` lines before the one holding `offset`,
/// and its 0-based line number.
fn line_start_before(text: &str, offset: usize, context: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let mut start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    for _ in 0..context {
        if start == 0 {
            break;
        }
        start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    (start, text[..start].matches('\n').count())
}

/// The end of the line `context` lines after the one holding `offset`
/// (its newline included).
fn line_end_after(text: &str, offset: usize, context: usize) -> usize {
    let mut end = floor_char_boundary(text, offset);
    for _ in 0..=context {
        match text[end..].find('\n') {
            Some(i) => end += i + 1,
            None => return text.len(),
        }
    }
    end
}

/// Sorts findings by file name and position, the order the operator reads them.
pub(crate) fn sort(found: &mut [Diagnostic], sources: &Sources) {
    found.sort_by(|a, b| a.sort_key(sources).cmp(&b.sort_key(sources)));
}

/// A finding as it leaves the library: the rendered text for people, the
/// fields for machines (`--format json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// A stable code such as `wg::duplicate-key`; `nickel::*` for Nickel's own errors.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub help: String,
    /// The site file of the primary label, relative to the project root.
    pub file: Option<String>,
    /// 1-based line of the primary label.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the primary label.
    pub column: Option<usize>,
    /// What a terminal shows of it besides the fields (not part of
    /// `--format json`).
    #[serde(skip)]
    pub shown: Shown,
}

/// The source a finding points at, for the CLI to render.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Shown {
    /// Nothing to point at (an unreadable file, an internal error).
    #[default]
    Plain,
    /// sitec's own finding: an excerpt of each file it labels, the
    /// primary label's file first (the others hold a schema default).
    Excerpts(Vec<Excerpt>),
    /// Nickel's error, as Nickel renders it, without and with colour.
    Nickel { plain: String, colored: String },
}

/// Whole lines of one file around a finding's labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Excerpt {
    /// The file's name as shown, e.g. `sites/homelab/site.ncl`.
    pub file: String,
    /// The 0-based number of the excerpt's first line in the file.
    pub first_line: usize,
    pub text: String,
    pub labels: Vec<ExcerptLabel>,
}

/// A label on a byte range of an [`Excerpt`]'s text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcerptLabel {
    pub start: usize,
    pub len: usize,
    pub text: String,
}

impl Report {
    /// A finding with no position, such as an unreadable file.
    pub(crate) fn plain(code: &str, message: String, help: &str) -> Report {
        Report {
            code: code.to_string(),
            severity: Severity::Error,
            message,
            help: help.to_string(),
            file: None,
            line: None,
            column: None,
            shown: Shown::Plain,
        }
    }
}

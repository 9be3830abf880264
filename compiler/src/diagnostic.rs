//! sitec's own diagnostics: a stable code, a message in the operator's words,
//! a help line and labels on `.ncl` spans, rendered by miette; and
//! [`Report`], the form every finding (sitec's or Nickel's) leaves the library in.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};
use serde::{Deserialize, Serialize};

use crate::tree::{FieldPath, Sources, Span, Spanned};

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
    /// Spans with their label text; the first is the primary one.
    pub(crate) labels: Vec<(Span, String)>,
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
                    None => self.labels.push((span, label)),
                    Some(default) => {
                        let field = path.last().map_or("value".to_string(), |s| s.to_string());
                        self.labels.push((
                            span,
                            format!("`{field}` is not set here, so the schema's default applies: {label}"),
                        ));
                        self.labels.push((default, "the default".to_string()));
                    }
                }
                return self;
            }
            first.get_or_insert(span);
        }
        if let Some(span) = first {
            self.labels.push((span, label));
        }
        self
    }

    /// Labels a span found by walking the tree.
    pub(crate) fn at_span(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push((span, label.into()));
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
                d.labels.push((span, label.into()));
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
            .map(|(s, _)| (sources.name(s.file), s.start));
        (pos, self.code)
    }

    /// The report of this finding: rendered text and its fields.
    pub(crate) fn report(&self, sources: &Sources, color: bool) -> Report {
        let (file, line, column) = match self.labels.first() {
            Some((span, _)) => {
                let (line, column) = sources.line_column(*span);
                (
                    Some(sources.name(span.file).to_string()),
                    Some(line),
                    Some(column),
                )
            }
            None => (None, None, None),
        };
        Report {
            code: self.code.to_string(),
            severity: self.severity,
            message: self.message.clone(),
            help: self.help.clone(),
            file,
            line,
            column,
            rendered: self.render(sources, color),
        }
    }

    /// Renders in miette's graphical form.
    fn render(&self, sources: &Sources, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        let primary_file = self.labels.first().map(|(s, _)| s.file);
        // Labels in other files (only a schema default's, today), one
        // snippet per file, in file order.
        let other_files: std::collections::BTreeSet<usize> = self
            .labels
            .iter()
            .map(|(s, _)| s.file)
            .filter(|f| Some(*f) != primary_file)
            .collect();
        let related: Vec<Rendered> = other_files
            .into_iter()
            .map(|file| Rendered {
                diag: self,
                sources,
                file: Some(file),
                message: "where the default comes from".to_string(),
                related: Vec::new(),
                severity: miette::Severity::Advice,
            })
            .collect();
        let report = Rendered {
            diag: self,
            sources,
            file: primary_file,
            message: self.message.clone(),
            related,
            severity: match self.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
        };
        // Writing to a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out
    }
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
    /// The graphical rendering shown on a terminal.
    #[serde(skip)]
    pub rendered: String,
}

impl Report {
    /// A finding with no position, such as an unreadable file.
    pub(crate) fn plain(code: &str, message: String, help: &str) -> Report {
        let mut rendered = format!("error[{code}]: {message}\n");
        if !help.is_empty() {
            rendered.push_str(&format!("  help: {help}\n"));
        }
        Report {
            code: code.to_string(),
            severity: Severity::Error,
            message,
            help: help.to_string(),
            file: None,
            line: None,
            column: None,
            rendered,
        }
    }
}

/// Adapter giving miette one file's text and the labels in it.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    sources: &'a Sources,
    file: Option<usize>,
    message: String,
    related: Vec<Rendered<'a>>,
    severity: miette::Severity,
}

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (self.severity != miette::Severity::Advice)
            .then(|| Box::new(self.diag.code) as Box<dyn std::fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (self.severity != miette::Severity::Advice && !self.diag.help.is_empty())
            .then(|| Box::new(&self.diag.help) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.sources.named[self.file?])
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.file?;
        Some(Box::new(
            self.diag
                .labels
                .iter()
                .filter(move |(s, _)| s.file == file)
                .map(|(s, text)| LabeledSpan::new(Some(text.clone()), s.start, s.end - s.start)),
        ))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

//! sitec's own diagnostics: a stable code, a message in the operator's words,
//! a help line and labels on `.ncl` spans, rendered by miette.

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};

use crate::tree::{Node, Sources, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    Error,
    // Lint checks (firewall races, shadowed rules) will report warnings.
    #[allow(dead_code)]
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

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Labels the value at `path` of the site tree (or, failing that, the
    /// nearest enclosing value that has a position).
    pub(crate) fn at(mut self, root: &Node, path: &[&str], label: impl Into<String>) -> Self {
        let span = (0..=path.len())
            .rev()
            .find_map(|n| root.get(&path[..n]).and_then(|node| node.span));
        if let Some(span) = span {
            self.labels.push((span, label.into()));
        }
        self
    }

    /// Labels the field name at the end of `path` (`members.pve4 =`), or the
    /// value there when the name has no position.
    pub(crate) fn at_name(self, root: &Node, path: &[&str], label: impl Into<String>) -> Self {
        match root.field_name_span(path) {
            Some(span) => {
                let mut d = self;
                d.labels.push((span, label.into()));
                d
            }
            None => self.at(root, path, label),
        }
    }

    /// Sort key: file, then position, then code.
    pub(crate) fn sort_key(&self) -> (Option<Span>, &'static str) {
        (self.labels.first().map(|l| l.0), self.code)
    }

    /// Renders in miette's graphical form.
    pub(crate) fn render(&self, sources: &Sources, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        let report = Rendered {
            diag: self,
            sources,
        };
        // Writing to a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out
    }
}

/// Adapter giving miette the primary file's text and the labels in it.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    sources: &'a Sources,
}

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.diag.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (!self.diag.help.is_empty())
            .then(|| Box::new(&self.diag.help) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        let (span, _) = self.diag.labels.first()?;
        Some(&self.sources.named[span.file])
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.diag.labels.first()?.0.file;
        Some(Box::new(
            self.diag
                .labels
                .iter()
                .filter(move |(s, _)| s.file == file)
                .map(|(s, text)| LabeledSpan::new(Some(text.clone()), s.start, s.end - s.start)),
        ))
    }
}

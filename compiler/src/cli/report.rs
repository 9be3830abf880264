//! How the CLI shows a [`Report`] on a terminal: miette's graphical form of
//! sitec's own findings (their excerpts and labels), Nickel's own rendering
//! of its errors, a line for the rest. Colour is chosen here, at print time,
//! so no finding, and no cache entry, depends on it.

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use sitec::{Excerpt, Report, Severity, Shown};

/// The text a terminal shows of a site's reports. Findings of one code at
/// the very same places (values that one function or `let` of the site
/// made, such as twelve generated virtual hosts with the same mistake) are
/// shown once, with what each of the others says listed below it.
pub(crate) fn render_all(reports: &[Report], color: bool) -> String {
    let mut groups: Vec<(&Report, Vec<&Report>)> = Vec::new();
    for r in reports {
        match groups.iter_mut().find(|(first, _)| same_place(first, r)) {
            Some((_, more)) => more.push(r),
            None => groups.push((r, Vec::new())),
        }
    }
    let mut text = String::new();
    for (first, more) in groups {
        let shown = render(first, color);
        text.push_str(&shown);
        if !shown.ends_with('\n') {
            text.push('\n');
        }
        if more.is_empty() {
            continue;
        }
        text.push_str(&format!(
            "  and {} more of {} for other values these lines make",
            more.len(),
            first.code
        ));
        // What the others say, each different text once.
        let mut said = vec![first.message.as_str()];
        let mut others = Vec::new();
        for r in more {
            if !said.contains(&r.message.as_str()) {
                said.push(&r.message);
                others.push(r.message.as_str());
            }
        }
        if others.is_empty() {
            text.push_str(", saying the same\n");
        } else {
            text.push_str(":\n");
            for m in others {
                text.push_str(&format!("    - {m}\n"));
            }
        }
    }
    text
}

/// Whether two reports are of one code and label the same places alike.
fn same_place(a: &Report, b: &Report) -> bool {
    a.code == b.code && a.severity == b.severity && places(a).is_some() && places(a) == places(b)
}

/// A labelled place: its file, first line and labels (start, length, text).
type Place<'a> = (&'a str, usize, Vec<(usize, usize, &'a str)>);

/// The places a report labels, if it labels any.
fn places(r: &Report) -> Option<Vec<Place<'_>>> {
    let Shown::Excerpts(excerpts) = &r.shown else {
        return None;
    };
    Some(
        excerpts
            .iter()
            .map(|x| {
                let labels = x
                    .labels
                    .iter()
                    .map(|l| (l.start, l.len, l.text.as_str()))
                    .collect();
                (x.file.as_str(), x.first_line, labels)
            })
            .collect(),
    )
}

/// The text a terminal shows of a report.
fn render(r: &Report, color: bool) -> String {
    match &r.shown {
        Shown::Plain => {
            let mut text = format!("error[{}]: {}\n", r.code, r.message);
            if !r.help.is_empty() {
                text.push_str(&format!("  help: {}\n", r.help));
            }
            text
        }
        Shown::Nickel { plain, colored } => {
            if color {
                colored.clone()
            } else {
                plain.clone()
            }
        }
        Shown::Excerpts(excerpts) => graphical(r, excerpts, color),
    }
}

fn graphical(r: &Report, excerpts: &[Excerpt], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    // Excerpts of other files (only a schema default's, today) are shown
    // as related advice, one per file.
    let related = excerpts
        .iter()
        .skip(1)
        .map(|e| Graphical {
            report: r,
            source: Some(ExcerptSource(e)),
            message: "where the default comes from".to_string(),
            related: Vec::new(),
            severity: miette::Severity::Advice,
        })
        .collect();
    let shown = Graphical {
        report: r,
        source: excerpts.first().map(ExcerptSource),
        message: r.message.clone(),
        related,
        severity: match r.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
    };
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = handler.render_report(&mut out, &shown);
    out
}

/// Adapter giving miette one excerpt and the labels in it.
struct Graphical<'a> {
    report: &'a Report,
    source: Option<ExcerptSource<'a>>,
    message: String,
    related: Vec<Graphical<'a>>,
    severity: miette::Severity,
}

/// An excerpt as miette's source: its lines, numbered as in the file.
/// miette's `line_count` counts the lines from the start of its source (and
/// decides with it whether two labels share a snippet), so it is shifted
/// by the excerpt's first line too: the rendering is the whole file's.
struct ExcerptSource<'a>(&'a Excerpt);

impl SourceCode for ExcerptSource<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner =
            self.0
                .text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.0.file.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.0.first_line,
            inner.column(),
            inner.line_count() + self.0.first_line,
        )))
    }
}

impl std::fmt::Debug for Graphical<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::fmt::Display for Graphical<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Graphical<'_> {}

impl miette::Diagnostic for Graphical<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (self.severity != miette::Severity::Advice)
            .then(|| Box::new(&self.report.code) as Box<dyn std::fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        (self.severity != miette::Severity::Advice && !self.report.help.is_empty())
            .then(|| Box::new(&self.report.help) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let excerpt = self.source.as_ref()?.0;
        Some(Box::new(excerpt.labels.iter().map(|l| {
            LabeledSpan::new(Some(l.text.clone()), l.start, l.len)
        })))
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

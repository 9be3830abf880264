//! The evaluated site as a plain tree of values, each carrying the source span
//! Nickel gave it, so that later stages can point diagnostics at `.ncl` lines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Every file that can appear in a span, indexed by [`Span::file`].
#[derive(Debug, Default)]
pub(crate) struct Sources {
    /// The files by name (miette's named source is only the container).
    pub(crate) named: Vec<miette::NamedSource<String>>,
    /// Whether each file is one of `schemas/` (where defaults come from).
    schema: Vec<bool>,
}

/// A byte range in one of [`Sources`]' files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    pub(crate) file: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Sources {
    /// Adds a file and returns its index.
    pub(crate) fn push(&mut self, name: PathBuf, text: Arc<str>, schema: bool) -> usize {
        self.named.push(miette::NamedSource::new(
            name.display().to_string(),
            text.to_string(),
        ));
        self.schema.push(schema);
        self.named.len() - 1
    }

    /// The index of the file shown as `name`, added when not there yet.
    pub(crate) fn index_of(&mut self, name: &str, text: Arc<str>, schema: bool) -> usize {
        match self.named.iter().position(|n| n.name() == name) {
            Some(i) => i,
            None => self.push(PathBuf::from(name), text, schema),
        }
    }

    /// Whether a file is part of `schemas/` rather than the site.
    pub(crate) fn is_schema(&self, file: usize) -> bool {
        self.schema.get(file).copied().unwrap_or(false)
    }

    /// The file's name as shown in messages, e.g. `sites/homelab/site.ncl`.
    pub(crate) fn name(&self, file: usize) -> &str {
        self.named.get(file).map_or("", |n| n.name())
    }

    /// The file's text.
    pub(crate) fn text(&self, file: usize) -> &str {
        self.named.get(file).map_or("", |n| n.inner().as_str())
    }

    /// 1-based line and column (in characters) of a span's start.
    pub(crate) fn line_column(&self, span: Span) -> (usize, usize) {
        let text = self.named.get(span.file).map_or("", |n| n.inner().as_str());
        line_column(text, span.start)
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// What a diagnostic needs of a site to label one of its values: the
/// values with their spans, and the files the spans point into.
pub(crate) trait Spanned {
    fn root(&self) -> &Node;
    fn sources(&self) -> &Sources;
}

/// One step of a [`FieldPath`]: a record field or an array element.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Field(String),
    Index(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Field(name) => f.write_str(name),
            Step::Index(i) => write!(f, "{i}"),
        }
    }
}

/// Where a value is in the site, as Nickel's own field paths are, with
/// array elements by index: `hosts.pve1.firewall.input.rules.0`. Built
/// with [`path!`](crate::path): `path!["hosts", host, "firewall", "dnat", i]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct FieldPath(Vec<Step>);

impl FieldPath {
    pub(crate) fn new(steps: Vec<Step>) -> FieldPath {
        FieldPath(steps)
    }

    /// This path, one record field further.
    pub(crate) fn field(&self, name: &str) -> FieldPath {
        let mut steps = self.0.clone();
        steps.push(Step::Field(name.to_string()));
        FieldPath(steps)
    }

    /// This path followed by `more`.
    pub(crate) fn join(&self, more: &FieldPath) -> FieldPath {
        FieldPath([&self.0[..], &more.0[..]].concat())
    }

    pub(crate) fn steps(&self) -> &[Step] {
        &self.0
    }
}

impl std::fmt::Display for FieldPath {
    /// `hosts.pve1.firewall.input.rules.0`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

/// A step of a [`FieldPath`] from a field name or an array index.
pub(crate) trait IntoStep {
    fn into_step(self) -> Step;
}

impl IntoStep for &str {
    fn into_step(self) -> Step {
        Step::Field(self.to_string())
    }
}

impl IntoStep for &String {
    fn into_step(self) -> Step {
        Step::Field(self.clone())
    }
}

impl IntoStep for usize {
    fn into_step(self) -> Step {
        Step::Index(self)
    }
}

/// A [`FieldPath`] from its steps: field names (`&str`, `&String`) and
/// array indices (`usize`).
#[macro_export]
#[doc(hidden)]
macro_rules! path {
    ($($step:expr),* $(,)?) => {
        $crate::tree::FieldPath::new(vec![$($crate::tree::IntoStep::into_step($step)),*])
    };
}

/// The largest char boundary of `text` at or before `offset`.
pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut i = offset.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A value of the evaluated site.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    /// An enum tag such as `'accept`, kept as its label.
    Tag(String),
    Array(Vec<Node>),
    Record(BTreeMap<String, Field>),
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) span: Option<Span>,
}

/// A record field: the span of its name and its value.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name_span: Option<Span>,
    pub(crate) node: Node,
}

impl Node {
    /// Converts to JSON for serde deserialization into the model.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) | Value::Tag(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => items.iter().map(Node::to_json).collect(),
            Value::Record(fields) => fields
                .iter()
                .map(|(k, f)| (k.clone(), f.node.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// The node at a path of record fields and array elements.
    pub(crate) fn get(&self, path: &FieldPath) -> Option<&Node> {
        self.get_steps(path.steps())
    }

    /// [`Node::get`] by the steps of a path.
    pub(crate) fn get_steps(&self, path: &[Step]) -> Option<&Node> {
        let mut node = self;
        for step in path {
            node = match (&node.value, step) {
                (Value::Record(fields), Step::Field(name)) => &fields.get(name)?.node,
                (Value::Array(items), Step::Index(i)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The span of the field name at the end of a path (`hosts.pve1` → the `pve1 =`).
    pub(crate) fn field_name_span(&self, path: &[Step]) -> Option<Span> {
        let (Step::Field(last), parent) = path.split_last()? else {
            return None;
        };
        match &self.get_steps(parent)?.value {
            Value::Record(fields) => fields.get(last)?.name_span,
            _ => None,
        }
    }
}

//! Part of stage 1 (load): the schemas read as data. What the contracts of
//! `schemas/*.ncl` check and which defaults they fill in, so that `load`
//! can check a site that Nickel evaluated without them: Nickel's record
//! contracts cost several times the evaluation of the site itself, and are
//! paid again for every value a site shares between hosts.
//!
//! The schema modules are read as written, from Nickel's parse of them:
//! records of fields with their annotations and defaults; types (`Array`,
//! `{ _ | C }`, enums, `Bool`, `Number`, `String`, `Dyn`); references
//! through `let`, `import` and field access; functions applied to
//! arguments (`Chain 'drop`); `std.contract.Sequence`; and the four
//! builders of `types.ncl` (`validator`, `whole_number`,
//! `integer_or_match`, `KeysMatch`), whose checks [`apply`] makes as their
//! Nickel code does. Anything else makes [`Schema::read`] fail, and `load`
//! then leaves every check to Nickel's contracts. [`apply`] only ever
//! accepts or refuses: what it refuses, Nickel's contracts report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use nickel_lang_core::ast::AstAlloc;
use nickel_lang_core::ast::compat::ToMainline;
use nickel_lang_core::cache::{InputFormat, SourceCache, SourcePath};
use nickel_lang_core::eval::value::{ArrayData, Container, NickelValue, ValueContentRef};
use nickel_lang_core::position::PosTable;
use nickel_lang_core::term::record::RecordData;
use nickel_lang_core::term::{Import, MergePriority, StrChunk, Term, UnaryOp};
use nickel_lang_core::typ::{DictTypeFlavour, EnumRowsIteratorItem, Type, TypeF};
use regex::Regex;

use crate::tree::{Field, FieldPath, Node, Sources, Span, Step, Value};

/// What [`Schema::apply`] refused first.
#[derive(Debug)]
pub(crate) struct Refused {
    /// For tests, and for the log of which way answered.
    pub(crate) message: String,
    /// The refusal was a field the schema does not have: sitec reports it
    /// itself, at the field, with the names the record does have.
    pub(crate) unknown_field: Option<UnknownField>,
}

/// A field of the site that its record's schema does not have.
#[derive(Debug)]
pub(crate) struct UnknownField {
    /// The field, in the site.
    pub(crate) path: FieldPath,
    /// The fields the record may have, sorted.
    pub(crate) known: Vec<String>,
}

/// The `Site` contract of a project's schemas, as data.
#[derive(Debug)]
pub(crate) struct Schema {
    site: Contract,
    /// The schema files read, by index (spans of defaults point into them).
    files: Vec<SchemaFile>,
}

/// A schema file: its path and the text that was read.
#[derive(Debug)]
pub(crate) struct SchemaFile {
    pub(crate) path: PathBuf,
    pub(crate) text: Arc<str>,
}

/// What one contract checks.
#[derive(Debug, Clone)]
enum Contract {
    Any,
    Bool,
    Number,
    String,
    Enum(BTreeSet<String>),
    Array(Box<Contract>),
    Dict(Box<Contract>),
    Record(Rc<Record>),
    /// `validator`: a string matching the pattern.
    Matches(Pattern),
    /// `whole_number`: a whole number from `lo` to `hi`.
    Whole {
        lo: f64,
        hi: f64,
    },
    /// `integer_or_match`: a whole number, or a string matching.
    IntegerOr(Pattern),
    /// `KeysMatch`: a record whose field names match.
    KeysMatch(Pattern),
    All(Vec<Contract>),
}

/// A regular expression, compiled when first used (a pattern such as
/// `{0,4000}` takes milliseconds to compile, and a site may use few),
/// once for every contract that has it.
#[derive(Debug, Clone)]
struct Pattern(Rc<(String, std::cell::OnceCell<Option<Regex>>)>);

impl Pattern {
    /// Whether `s` matches; `None` when the pattern does not compile
    /// (Nickel's contract then reports it).
    fn is_match(&self, s: &str) -> Option<bool> {
        let (pattern, regex) = &*self.0;
        regex
            .get_or_init(|| Regex::new(pattern).ok())
            .as_ref()
            .map(|r| r.is_match(s))
    }
}

/// A record contract: closed, as Nickel's record contracts are.
#[derive(Debug)]
struct Record {
    fields: BTreeMap<String, FieldSchema>,
}

#[derive(Debug)]
struct FieldSchema {
    name_span: Option<SchemaSpan>,
    contracts: Vec<Contract>,
    presence: Presence,
}

#[derive(Debug)]
enum Presence {
    Required,
    Optional,
    Default(Literal),
}

/// A byte range in one of [`Schema::files`].
#[derive(Debug, Clone, Copy)]
struct SchemaSpan {
    file: usize,
    start: usize,
    end: usize,
}

/// A default as written in a schema.
#[derive(Debug)]
struct Literal {
    value: LiteralValue,
    span: Option<SchemaSpan>,
}

#[derive(Debug)]
enum LiteralValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Tag(String),
    Array(Vec<Literal>),
    Record(BTreeMap<String, (Option<SchemaSpan>, Literal)>),
}

/// The builders of `types.ncl` by name, with the number of arguments each
/// takes and the one [`apply`] reads (the pattern, or `lo` then `hi`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Builder {
    Validator,
    WholeNumber,
    IntegerOrMatch,
    KeysMatch,
    Sequence,
}

impl Builder {
    fn named(name: &str) -> Option<Builder> {
        Some(match name {
            "validator" => Builder::Validator,
            "whole_number" => Builder::WholeNumber,
            "integer_or_match" => Builder::IntegerOrMatch,
            "KeysMatch" => Builder::KeysMatch,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Builder::Validator | Builder::IntegerOrMatch | Builder::KeysMatch => 3,
            Builder::WholeNumber => 4,
            Builder::Sequence => 1,
        }
    }
}

/// An expression not yet evaluated, in its module and environment.
#[derive(Clone)]
struct Thunk {
    term: NickelValue,
    module: usize,
    env: Env,
}

#[derive(Clone, Default)]
struct Env(Option<Rc<Bind>>);

struct Bind {
    name: String,
    value: Bound,
    next: Env,
}

#[derive(Clone)]
enum Bound {
    Thunk(Thunk),
    Builder(Builder),
    /// The fields of a record literal, in scope inside it (Nickel's
    /// records are recursive).
    Fields(NickelValue, usize),
}

impl Env {
    fn with(&self, name: &str, value: Bound) -> Env {
        Env(Some(Rc::new(Bind {
            name: name.to_string(),
            value,
            next: self.clone(),
        })))
    }

    /// Inside the record literal `term` (of `module`): its fields are names.
    fn inside(&self, term: &NickelValue, module: usize) -> Env {
        self.with("", Bound::Fields(term.clone(), module))
    }

    fn get(&self, name: &str) -> Option<Bound> {
        let mut at = &self.0;
        while let Some(b) = at {
            match &b.value {
                Bound::Fields(term, module) => {
                    let field = record_data(term)
                        .and_then(|r| r.fields.iter().find(|(id, _)| id.label() == name))
                        .and_then(|(_, f)| f.value.clone());
                    if let Some(value) = field {
                        return Some(Bound::Thunk(Thunk {
                            term: value,
                            module: *module,
                            env: Env(Some(b.clone())),
                        }));
                    }
                }
                _ if b.name == name => return Some(b.value.clone()),
                _ => {}
            }
            at = &b.next.0;
        }
        None
    }
}

/// What a schema expression denotes.
#[derive(Clone)]
enum Val {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
    Tag(String),
    Array(Vec<Thunk>),
    /// A record literal: a module's definitions, or a record contract.
    Record(Thunk),
    Fun {
        arg: String,
        body: Thunk,
    },
    Builder(Builder, Vec<Thunk>),
    Contract(Contract),
    Std,
    StdContract,
}

struct Module {
    pos_table: PosTable,
    term: NickelValue,
    dir: PathBuf,
    /// Whether this is `types.ncl`, whose builders are known by name.
    types: bool,
}

struct Reader {
    modules: Vec<Module>,
    by_path: HashMap<PathBuf, usize>,
    files: Vec<SchemaFile>,
    patterns: HashMap<String, Pattern>,
}

type Read<T> = Result<T, String>;

impl Schema {
    /// Reads `schemas_dir/contract.ncl` (the contract sitec applies to a
    /// site) and everything it imports.
    pub(crate) fn read(schemas_dir: &Path) -> Read<Schema> {
        let mut r = Reader {
            modules: Vec::new(),
            by_path: HashMap::new(),
            files: Vec::new(),
            patterns: HashMap::new(),
        };
        let m = r.module(&schemas_dir.join("contract.ncl"))?;
        let top = r.modules[m].term.clone();
        let v = r.eval(&Thunk {
            term: top,
            module: m,
            env: Env::default(),
        })?;
        let site = r.contract(v)?;
        Ok(Schema {
            site,
            files: r.files,
        })
    }

    /// The schema files read, with the text each was read as.
    pub(crate) fn files(&self) -> &[SchemaFile] {
        &self.files
    }

    /// Checks a site's value against `Site` and fills in the defaults, as
    /// Nickel's contracts would; `Err` names the first thing refused (for
    /// tests: Nickel's contracts report it to the operator). `file_of`
    /// gives the [`Sources`] index of a schema file, adding it if needed.
    pub(crate) fn apply(
        &self,
        root: &mut Node,
        sources: &mut Sources,
        display: &dyn Fn(&Path) -> String,
    ) -> Result<(), Refused> {
        let mut ctx = Apply {
            schema: self,
            sources,
            display,
            file_index: HashMap::new(),
            steps: Vec::new(),
            unknown_field: None,
        };
        ctx.apply(root, &self.site, "site")
            .map_err(|message| Refused {
                message,
                unknown_field: ctx.unknown_field.take(),
            })
    }
}

impl Reader {
    fn module(&mut self, path: &Path) -> Read<usize> {
        let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(&m) = self.by_path.get(&path) {
            return Ok(m);
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (term, pos_table) =
            parse(&path, &text).ok_or_else(|| format!("{}: does not parse", path.display()))?;
        let m = self.modules.len();
        self.modules.push(Module {
            pos_table,
            term,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            types: path.file_name().is_some_and(|n| n == "types.ncl"),
        });
        self.files.push(SchemaFile {
            path: path.clone(),
            text: text.into(),
        });
        self.by_path.insert(path, m);
        Ok(m)
    }

    fn span(&self, t: &Thunk) -> Option<SchemaSpan> {
        let raw = t.term.pos(&self.modules[t.module].pos_table).into_opt()?;
        Some(SchemaSpan {
            file: t.module,
            start: raw.start.to_usize(),
            end: raw.end.to_usize(),
        })
    }

    fn eval(&mut self, t: &Thunk) -> Read<Val> {
        let sub = |term: &NickelValue| Thunk {
            term: term.clone(),
            module: t.module,
            env: t.env.clone(),
        };
        Ok(match t.term.content_ref() {
            ValueContentRef::Null => Val::Null,
            ValueContentRef::Bool(b) => Val::Bool(b),
            ValueContentRef::Number(_) => match serde_json::to_value(&t.term) {
                Ok(serde_json::Value::Number(n)) => Val::Number(n),
                _ => return Err("a number that is not a JSON number".into()),
            },
            ValueContentRef::String(s) => Val::Str(s.to_string()),
            ValueContentRef::EnumVariant(v) if v.arg.is_none() => {
                Val::Tag(v.tag.label().to_string())
            }
            ValueContentRef::Array(Container::Empty) => Val::Array(Vec::new()),
            ValueContentRef::Array(Container::Alloc(ArrayData { array, .. })) => {
                Val::Array(array.iter().map(sub).collect())
            }
            ValueContentRef::Record(_) => Val::Record(t.clone()),
            ValueContentRef::Type(data) => Val::Contract(self.of_type(&data.typ, t)?),
            ValueContentRef::Term(term) => match term {
                Term::Var(id) => match t.env.get(id.label()) {
                    Some(Bound::Thunk(b)) => self.eval(&b)?,
                    Some(Bound::Builder(b)) => Val::Builder(b, Vec::new()),
                    Some(Bound::Fields(..)) => unreachable!("get resolves fields"),
                    None if id.label() == "std" => Val::Std,
                    None => return Err(format!("unknown name `{}`", id.label())),
                },
                Term::Let(data) => {
                    if data.attrs.rec {
                        return Err("a recursive let".into());
                    }
                    let mut env = t.env.clone();
                    for (id, value) in &data.bindings {
                        let name = id.label();
                        let bound = match Builder::named(name) {
                            Some(b) if self.modules[t.module].types => Bound::Builder(b),
                            _ => Bound::Thunk(sub(value)),
                        };
                        env = env.with(name, bound);
                    }
                    self.eval(&Thunk {
                        term: data.body.clone(),
                        module: t.module,
                        env,
                    })?
                }
                Term::App(app) => {
                    let head = self.eval(&sub(&app.head))?;
                    self.apply_fn(head, sub(&app.arg))?
                }
                Term::Fun(f) => Val::Fun {
                    arg: f.arg.label().to_string(),
                    body: sub(&f.body),
                },
                Term::RecRecord(_) => Val::Record(t.clone()),
                Term::Closurize(inner) => self.eval(&sub(inner))?,
                Term::Op1(op) => match &op.op {
                    UnaryOp::RecordAccess(id) => {
                        let record = self.eval(&sub(&op.arg))?;
                        self.access(record, id.label())?
                    }
                    other => return Err(format!("the operator {other:?}")),
                },
                Term::Import(Import::Path { path, .. }) => {
                    let m = self.module(&self.modules[t.module].dir.join(path))?;
                    let term = self.modules[m].term.clone();
                    self.eval(&Thunk {
                        term,
                        module: m,
                        env: Env::default(),
                    })?
                }
                Term::StrChunks(chunks) => {
                    let mut s = String::new();
                    // Nickel keeps the chunks in reverse order.
                    for chunk in chunks.iter().rev() {
                        match chunk {
                            StrChunk::Literal(l) => s.push_str(l),
                            StrChunk::Expr(e, _) => match self.eval(&sub(e))? {
                                Val::Str(part) => s.push_str(&part),
                                _ => return Err("an interpolation that is not a string".into()),
                            },
                        }
                    }
                    Val::Str(s)
                }
                other => {
                    let mut shown = format!("{other:?}");
                    shown.truncate(300);
                    return Err(format!(
                        "an expression sitec does not read as data: {shown}"
                    ));
                }
            },
            _ => return Err("a value sitec does not read as data".into()),
        })
    }

    fn access(&mut self, record: Val, name: &str) -> Read<Val> {
        match record {
            Val::Std if name == "contract" => Ok(Val::StdContract),
            Val::StdContract if name == "Sequence" => {
                Ok(Val::Builder(Builder::Sequence, Vec::new()))
            }
            Val::Record(t) => {
                if self.modules[t.module].types
                    && let Some(b) = Builder::named(name)
                {
                    return Ok(Val::Builder(b, Vec::new()));
                }
                let field = record_data(&t.term)
                    .and_then(|r| r.fields.iter().find(|(id, _)| id.label() == name))
                    .and_then(|(_, f)| f.value.clone())
                    .ok_or_else(|| format!("no field `{name}`"))?;
                self.eval(&Thunk {
                    term: field,
                    module: t.module,
                    env: t.env.inside(&t.term, t.module),
                })
            }
            _ => Err(format!("`.{name}` of something that is not a record")),
        }
    }

    fn apply_fn(&mut self, head: Val, arg: Thunk) -> Read<Val> {
        match head {
            Val::Fun { arg: name, body } => self.eval(&Thunk {
                env: body.env.with(&name, Bound::Thunk(arg)),
                ..body
            }),
            Val::Builder(b, mut args) => {
                args.push(arg);
                if args.len() < b.arity() {
                    return Ok(Val::Builder(b, args));
                }
                Ok(Val::Contract(self.build(b, &args)?))
            }
            _ => Err("an application of something that is not a function".into()),
        }
    }

    fn build(&mut self, b: Builder, args: &[Thunk]) -> Read<Contract> {
        let pattern = |r: &mut Reader| -> Read<Pattern> {
            match r.eval(&args[1])? {
                Val::Str(p) => Ok(r
                    .patterns
                    .entry(p.clone())
                    .or_insert_with(|| Pattern(Rc::new((p, std::cell::OnceCell::new()))))
                    .clone()),
                _ => Err("a pattern that is not a string".into()),
            }
        };
        let number = |r: &mut Reader, i: usize| -> Read<f64> {
            match r.eval(&args[i])? {
                Val::Number(n) => n.as_f64().ok_or_else(|| "a bound that is no number".into()),
                _ => Err("a bound that is not a number".into()),
            }
        };
        Ok(match b {
            Builder::Validator => Contract::Matches(pattern(self)?),
            Builder::IntegerOrMatch => Contract::IntegerOr(pattern(self)?),
            Builder::KeysMatch => Contract::KeysMatch(pattern(self)?),
            Builder::WholeNumber => Contract::Whole {
                lo: number(self, 1)?,
                hi: number(self, 2)?,
            },
            Builder::Sequence => match self.eval(&args[0])? {
                Val::Array(items) => Contract::All(
                    items
                        .iter()
                        .map(|i| {
                            let v = self.eval(i)?;
                            self.contract(v)
                        })
                        .collect::<Read<_>>()?,
                ),
                _ => return Err("std.contract.Sequence of something that is not an array".into()),
            },
        })
    }

    /// A value in contract position as the contract it is.
    fn contract(&mut self, v: Val) -> Read<Contract> {
        match v {
            Val::Contract(c) => Ok(c),
            Val::Record(t) => self.record(&t),
            _ => Err("a contract sitec does not read as data".into()),
        }
    }

    fn of_type(&mut self, typ: &Type, at: &Thunk) -> Read<Contract> {
        Ok(match &typ.typ {
            TypeF::Dyn => Contract::Any,
            TypeF::Number => Contract::Number,
            TypeF::Bool => Contract::Bool,
            TypeF::String => Contract::String,
            TypeF::Array(t) => Contract::Array(Box::new(self.of_type(t, at)?)),
            TypeF::Dict {
                type_fields,
                flavour: DictTypeFlavour::Contract | DictTypeFlavour::Type,
            } => Contract::Dict(Box::new(self.of_type(type_fields, at)?)),
            TypeF::Enum(rows) => {
                let mut tags = BTreeSet::new();
                for row in rows.iter() {
                    match row {
                        EnumRowsIteratorItem::Row(r) if r.typ.is_none() => {
                            tags.insert(r.id.label().to_string());
                        }
                        _ => return Err("an enum type with arguments or a tail".into()),
                    }
                }
                Contract::Enum(tags)
            }
            TypeF::Contract(term) => {
                let v = self.eval(&Thunk {
                    term: term.clone(),
                    module: at.module,
                    env: at.env.clone(),
                })?;
                self.contract(v)?
            }
            _ => return Err("a type sitec does not read as data".into()),
        })
    }

    fn record(&mut self, t: &Thunk) -> Read<Contract> {
        if let ValueContentRef::Term(Term::RecRecord(data)) = t.term.content_ref()
            && (!data.includes.is_empty() || !data.dyn_fields.is_empty())
        {
            return Err("a record contract with include or dynamic fields".into());
        }
        let data = record_data(&t.term).ok_or("a record contract that is not a record literal")?;
        let t = &Thunk {
            env: t.env.inside(&t.term, t.module),
            ..t.clone()
        };
        let mut fields = BTreeMap::new();
        for (id, field) in &data.fields {
            let meta = &field.metadata;
            if meta.not_exported() {
                return Err(format!("field `{}` is not exported", id.label()));
            }
            let contracts = meta
                .iter_annots()
                .map(|lt| self.of_type(&lt.typ, t))
                .collect::<Read<Vec<_>>>()?;
            let value = field.value.as_ref().map(|v| Thunk {
                term: v.clone(),
                module: t.module,
                env: t.env.clone(),
            });
            let presence = match (meta.opt(), meta.priority(), value) {
                (true, _, None) => Presence::Optional,
                (false, MergePriority::Bottom, Some(v)) => Presence::Default(self.literal(&v)?),
                (false, MergePriority::Neutral, None) => Presence::Required,
                _ => {
                    return Err(format!(
                        "field `{}`: a presence sitec does not read",
                        id.label()
                    ));
                }
            };
            let name_span = id.pos.into_opt().map(|raw| SchemaSpan {
                file: t.module,
                start: raw.start.to_usize(),
                end: raw.end.to_usize(),
            });
            fields.insert(
                id.label().to_string(),
                FieldSchema {
                    name_span,
                    contracts,
                    presence,
                },
            );
        }
        Ok(Contract::Record(Rc::new(Record { fields })))
    }

    /// A default as written, through the names that lead to it.
    fn literal(&mut self, t: &Thunk) -> Read<Literal> {
        if let ValueContentRef::Term(Term::Closurize(inner)) = t.term.content_ref() {
            return self.literal(&Thunk {
                term: inner.clone(),
                ..t.clone()
            });
        }
        if let ValueContentRef::Term(Term::Var(id)) = t.term.content_ref() {
            return match t.env.get(id.label()) {
                Some(Bound::Thunk(b)) => self.literal(&b),
                _ => Err(format!("a default `{}` that is not data", id.label())),
            };
        }
        let span = self.span(t);
        let value = match self.eval(t)? {
            Val::Null => LiteralValue::Null,
            Val::Bool(b) => LiteralValue::Bool(b),
            Val::Number(n) => LiteralValue::Number(n),
            Val::Str(s) => LiteralValue::String(s),
            Val::Tag(s) => LiteralValue::Tag(s),
            Val::Array(items) => {
                LiteralValue::Array(items.iter().map(|i| self.literal(i)).collect::<Read<_>>()?)
            }
            Val::Record(r) => {
                let data = record_data(&r.term).ok_or("a default record that is not a literal")?;
                let mut fields = BTreeMap::new();
                for (id, field) in &data.fields {
                    let Some(value) = &field.value else {
                        return Err("a default record with a field without value".into());
                    };
                    if !field.metadata.is_empty() {
                        return Err("a default record with annotated fields".into());
                    }
                    let name_span = id.pos.into_opt().map(|raw| SchemaSpan {
                        file: r.module,
                        start: raw.start.to_usize(),
                        end: raw.end.to_usize(),
                    });
                    let lit = self.literal(&Thunk {
                        term: value.clone(),
                        module: r.module,
                        env: r.env.clone(),
                    })?;
                    fields.insert(id.label().to_string(), (name_span, lit));
                }
                LiteralValue::Record(fields)
            }
            _ => return Err("a default that is not data".into()),
        };
        Ok(Literal { value, span })
    }
}

/// A Nickel file as the terms Nickel evaluates, with their positions:
/// Nickel's parser and its conversion, without loading the standard library
/// as a program would. `None` when it does not parse.
pub(crate) fn parse(path: &Path, text: &str) -> Option<(NickelValue, PosTable)> {
    let mut sources = SourceCache::new();
    let id = sources.add_string(
        SourcePath::Path(path.to_path_buf(), InputFormat::Nickel),
        text.to_string(),
    );
    let alloc = AstAlloc::new();
    let ast = sources.parse_nickel(&alloc, id).ok()?;
    let mut pos_table = PosTable::new();
    let term: NickelValue = ast.to_mainline(&mut pos_table);
    Some((term, pos_table))
}

fn record_data(term: &NickelValue) -> Option<&RecordData> {
    match term.content_ref() {
        ValueContentRef::Record(Container::Alloc(record)) => Some(record),
        ValueContentRef::Term(Term::RecRecord(data)) => Some(&data.record),
        _ => None,
    }
}

/// Checks and fills a site's tree against the schema.
struct Apply<'a> {
    schema: &'a Schema,
    sources: &'a mut Sources,
    display: &'a dyn Fn(&Path) -> String,
    /// Schema file index → its index in `sources`.
    file_index: HashMap<usize, usize>,
    /// Where in the site the value being checked is.
    steps: Vec<Step>,
    unknown_field: Option<UnknownField>,
}

impl Apply<'_> {
    fn span(&mut self, s: Option<SchemaSpan>) -> Option<Span> {
        let s = s?;
        let file = match self.file_index.get(&s.file) {
            Some(&f) => f,
            None => {
                let f = &self.schema.files[s.file];
                let name = (self.display)(&f.path);
                let index = self.sources.index_of(&name, f.text.clone(), true);
                self.file_index.insert(s.file, index);
                index
            }
        };
        Some(Span {
            file,
            start: s.start,
            end: s.end,
        })
    }

    fn node(&mut self, lit: &Literal) -> Node {
        let value = match &lit.value {
            LiteralValue::Null => Value::Null,
            LiteralValue::Bool(b) => Value::Bool(*b),
            LiteralValue::Number(n) => Value::Number(n.clone()),
            LiteralValue::String(s) => Value::String(s.clone()),
            LiteralValue::Tag(s) => Value::Tag(s.clone()),
            LiteralValue::Array(items) => {
                Value::Array(items.iter().map(|i| self.node(i)).collect())
            }
            LiteralValue::Record(fields) => Value::Record(
                fields
                    .iter()
                    .map(|(k, (name_span, l))| {
                        let name_span = self.span(*name_span);
                        (
                            k.clone(),
                            Field {
                                name_span,
                                node: self.node(l),
                            },
                        )
                    })
                    .collect(),
            ),
        };
        // An empty array is an inline value in Nickel, which carries no
        // position.
        let span = match &lit.value {
            LiteralValue::Array(items) if items.is_empty() => None,
            _ => self.span(lit.span),
        };
        Node { value, span }
    }

    fn apply(&mut self, node: &mut Node, c: &Contract, at: &str) -> Result<(), String> {
        let refused = |what: &str| Err(format!("{at}: {what}"));
        match (c, &mut node.value) {
            (Contract::Any, _) => Ok(()),
            (Contract::Bool, Value::Bool(_)) | (Contract::String, Value::String(_)) => Ok(()),
            (Contract::Number, Value::Number(_)) => Ok(()),
            (Contract::Enum(tags), Value::Tag(t)) if tags.contains(t.as_str()) => Ok(()),
            (Contract::Matches(re), Value::String(s)) if re.is_match(s) == Some(true) => Ok(()),
            (Contract::Whole { lo, hi }, Value::Number(n)) if whole_in(n, *lo, *hi) => Ok(()),
            (Contract::IntegerOr(_), Value::Number(n)) if whole_in(n, f64::MIN, f64::MAX) => Ok(()),
            (Contract::IntegerOr(re), Value::String(s)) if re.is_match(s) == Some(true) => Ok(()),
            (Contract::KeysMatch(re), Value::Record(fields))
                if fields.keys().all(|k| re.is_match(k) == Some(true)) =>
            {
                Ok(())
            }
            (Contract::Array(inner), Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.steps.push(Step::Index(i));
                    self.apply(item, inner, &format!("{at}[{i}]"))?;
                    self.steps.pop();
                }
                Ok(())
            }
            (Contract::Dict(inner), Value::Record(fields)) => {
                for (k, f) in fields.iter_mut() {
                    self.steps.push(Step::Field(k.clone()));
                    self.apply(&mut f.node, inner, &format!("{at}.{k}"))?;
                    self.steps.pop();
                }
                Ok(())
            }
            (Contract::Record(schema), Value::Record(fields)) => {
                if let Some(k) = fields.keys().find(|k| !schema.fields.contains_key(*k)) {
                    let mut steps = self.steps.clone();
                    steps.push(Step::Field(k.clone()));
                    self.unknown_field = Some(UnknownField {
                        path: FieldPath::new(steps),
                        known: schema.fields.keys().cloned().collect(),
                    });
                    return refused(&format!("field `{k}` is not in the schema"));
                }
                // Nickel's merge of the value with the record contract
                // keeps, for a field in both, the name (and its position)
                // of the record it iterates: the contract when the value
                // has fewer fields, else the value.
                let contract_names = fields.len() < schema.fields.len();
                for (name, f) in &schema.fields {
                    let at = format!("{at}.{name}");
                    if !fields.contains_key(name) {
                        match &f.presence {
                            Presence::Optional => continue,
                            Presence::Required => return Err(format!("{at}: missing")),
                            Presence::Default(lit) => {
                                let field = Field {
                                    name_span: self.span(f.name_span),
                                    node: self.node(lit),
                                };
                                fields.insert(name.clone(), field);
                            }
                        }
                    }
                    let Some(field) = fields.get_mut(name) else {
                        continue;
                    };
                    if contract_names {
                        field.name_span = self.span(f.name_span);
                    }
                    self.steps.push(Step::Field(name.clone()));
                    for c in &f.contracts {
                        self.apply(&mut field.node, c, &at)?;
                    }
                    self.steps.pop();
                }
                Ok(())
            }
            (Contract::All(cs), _) => {
                for c in cs {
                    self.apply(node, c, at)?;
                }
                Ok(())
            }
            _ => refused("refused by its contract"),
        }
    }
}

/// Whether a number is whole and within `lo..=hi`, as Nickel's
/// `std.number.is_integer` and comparisons say.
fn whole_in(n: &serde_json::Number, lo: f64, hi: f64) -> bool {
    if let Some(i) = n.as_i64() {
        return (i as f64) >= lo && (i as f64) <= hi;
    }
    if let Some(u) = n.as_u64() {
        return (u as f64) >= lo && (u as f64) <= hi;
    }
    // A fraction, or a number too large to be exact as an f64: Nickel's
    // check decides.
    false
}

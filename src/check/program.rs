//! What `check` hands on: every definition with its resolved signature, and the pipeline
//! evaluated to a tree of transform instances with all arguments bound and checked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::types::{Level, Ty, Typed};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast;
pub use crate::fmath::storage::Storage;

/// Index of a definition in [`Program::defs`].
pub type DefId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    /// `def`: a function, inlined where it is called.
    Def,
    Transform,
    Schedule,
    /// A combinator the compiler implements.
    Builtin,
}

impl DefKind {
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::Def => "function",
            DefKind::Transform => "transform",
            DefKind::Schedule => "schedule",
            DefKind::Builtin => "combinator",
        }
    }
}

/// The syntax a definition came from.
#[derive(Clone, Debug)]
pub enum DefAst {
    Def(Arc<ast::Def>),
    Transform(Arc<ast::Transform>),
}

/// A closed numeric interval a parameter must lie in.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub lo_inclusive: bool,
    pub hi_inclusive: bool,
    pub span: Span,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_inclusive { x >= self.lo } else { x > self.lo };
        let below = if self.hi_inclusive { x <= self.hi } else { x < self.hi };
        above && below
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.lo_inclusive { "[" } else { "(" };
        let close = if self.hi_inclusive { "]" } else { ")" };
        write!(f, "{open}{}, {}{close}", format_bound(self.lo), format_bound(self.hi))
    }
}

/// A parameter of a definition, resolved.
#[derive(Clone, Debug)]
pub struct ParamSig {
    pub name: String,
    pub name_span: Span,
    pub ty: Typed,
    pub range: Option<Interval>,
    pub default: Option<ast::Expr>,
    pub variadic: bool,
    /// The whole parameter, `name: type = default`.
    pub span: Span,
}

/// A state variable of a transform.
#[derive(Clone, Debug)]
pub struct StateSig {
    pub name: String,
    pub ty: Typed,
    /// How a `tensor` state is stored (`tensor[bfloat16]`, `tensor[mu_dtype]`).
    pub storage: StorageDecl,
    pub span: Span,
}

/// The storage type a state declares: written out, or the value of a parameter (a string
/// naming the type, `None` for float32).
#[derive(Clone, Debug, PartialEq)]
pub enum StorageDecl {
    Fixed(Storage),
    Param(String),
}

impl StorageDecl {
    /// The storage type for the hyperparameter values `arg` gives by name.
    pub fn resolve<'a>(&self, arg: impl Fn(&str) -> Option<&'a Value>) -> Storage {
        match self {
            StorageDecl::Fixed(s) => *s,
            StorageDecl::Param(p) => match arg(p) {
                Some(Value::Str(name)) => Storage::parse(name).unwrap_or_default(),
                _ => Storage::F32,
            },
        }
    }
}

/// One definition: a `def`, `transform`, `schedule` or `builtin`.
#[derive(Clone, Debug)]
pub struct Definition {
    pub name: String,
    pub kind: DefKind,
    pub doc: Option<String>,
    pub params: Vec<ParamSig>,
    /// The declared result type, if any.
    pub ret: Option<Ty>,
    pub states: Vec<StateSig>,
    /// True if the update reads `value` (the loss).
    pub reads_value: bool,
    /// True if the update or a state initialiser reads `param`.
    pub reads_param: bool,
    /// The leaf properties (`ndim`, `size`) the bodies read: each leaf's own number, so the
    /// leaves are grouped by them.
    pub reads_leaf: Vec<LeafProp>,
    /// The type a `def`'s body gives with the declared parameter types (`transform` for an
    /// alias such as `adam`).
    pub gives: Option<Ty>,
    /// True if checking the definition reported an error: the evaluator does not run its body
    /// ahead of time.
    pub has_errors: bool,
    /// The definition's name in its source.
    pub name_span: Span,
    pub is_stdlib: bool,
    pub ast: Option<DefAst>,
}

impl Definition {
    pub fn param(&self, name: &str) -> Option<&ParamSig> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// The definition table every walker of the checker reads: the definitions by id and by name,
/// and the `def`s already checked at some argument levels.
pub struct Globals<'a> {
    pub defs: &'a [Definition],
    pub by_name: &'a HashMap<String, DefId>,
    pub instances: InstanceCache,
}

/// Results of checking a `def` with given argument types, shared by all checkers.
pub type InstanceCache = RefCell<HashMap<(DefId, Vec<Typed>), Result<Typed, Vec<Diagnostic>>>>;

/// A compile-time value: what the pipeline and the arguments of its parts evaluate to.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    None,
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Entries in ascending key order.
    Map(Vec<(Value, Value)>),
    Schedule(Arc<Schedule>),
    Transform(Arc<Tx>),
    Func(Arc<Func>),
    /// Which leaves something applies to, built from globs, `ndim`/`size` comparisons, `and`,
    /// `or`, `not` ([`Mask`]; a glob string or a bool is a mask too, where one is expected).
    Mask(Mask),
    /// `ndim` or `size`: a number every leaf has, which a comparison turns into a mask.
    LeafInt(LeafProp),
    /// A numeric hyperparameter that `inject_hyperparams` turned into a float32 value that may
    /// change every step: known at run time only.
    Injected { owner: u32, name: String, ty: Ty },
    /// A value known only at run time (the updates, `param`, `value`, `step`, a state): it
    /// stands for them while the evaluator runs a transform's or schedule's body ahead of time
    /// ([`super::ahead`]), and is never part of a [`Program`].
    Runtime,
    /// Stands for something already reported as an error.
    Error,
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// Whether the two are the same value, as a join of two branches asks: floats compare by
    /// their bits (a NaN is the same as itself), shared schedules and transforms by identity.
    pub fn identical(&self, other: &Value) -> bool {
        let all = |a: &[Value], b: &[Value]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y));
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => all(a, b),
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((k, v), (l, w))| k.identical(l) && v.identical(w))
            }
            (Value::Schedule(a), Value::Schedule(b)) => Arc::ptr_eq(a, b) || a == b,
            (Value::Transform(a), Value::Transform(b)) => Arc::ptr_eq(a, b) || a == b,
            (Value::Func(a), Value::Func(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => self == other,
        }
    }

    /// Python's `==` (ints and floats compare by value).
    pub fn equals(&self, other: &Value) -> bool {
        match (self.as_f64(), other.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => self == other,
        }
    }

    /// Python's ordering of numbers and of strings; `None` for values that have none (and NaN).
    pub fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
            _ => self.as_f64()?.partial_cmp(&other.as_f64()?),
        }
    }

    /// How the value is named in a message: its type, or what a function or schedule is.
    pub fn describe(&self) -> String {
        match self {
            Value::Func(_) => "a function".to_string(),
            Value::Schedule(_) => "a schedule".to_string(),
            other => other.ty().to_string(),
        }
    }

    /// The runtime type of the value.
    pub fn ty(&self) -> Ty {
        match self {
            Value::Int(_) => Ty::Int,
            Value::Float(_) => Ty::Float,
            Value::Bool(_) => Ty::Bool,
            Value::Str(_) => Ty::Str,
            Value::None => Ty::None,
            Value::List(items) => Ty::List(Box::new(join_all(items.iter().map(Value::ty)))),
            Value::Tuple(items) => Ty::Tuple(items.iter().map(Value::ty).collect()),
            Value::Map(entries) => Ty::Map(
                Box::new(join_all(entries.iter().map(|(k, _)| k.ty()))),
                Box::new(join_all(entries.iter().map(|(_, v)| v.ty()))),
            ),
            Value::Schedule(_) => Ty::Schedule,
            Value::Transform(_) => Ty::Transform,
            Value::Func(_) => Ty::Fn(None),
            Value::Mask(_) => Ty::Mask,
            Value::LeafInt(_) => Ty::LeafInt,
            Value::Injected { ty, .. } => ty.clone(),
            Value::Runtime => Ty::Unknown,
            Value::Error => Ty::Error,
        }
    }
}

fn join_all(types: impl Iterator<Item = Ty>) -> Ty {
    types.fold(Ty::Unknown, |acc, t| acc.join(&t).unwrap_or(Ty::Error))
}

/// A schedule value: a function of a step count.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// A number used where a schedule was expected.
    Constant(Value),
    /// A `schedule` definition applied to its arguments (in parameter order).
    Instance { def: DefId, args: Vec<Value>, span: Span },
}

/// A function value, as passed to `inject_hyperparams` or `should_skip_update_fn=`.
#[derive(Clone, Debug, PartialEq)]
pub enum Func {
    Def(DefId),
    /// `inject_hyperparams(factory, static_args)`.
    Injected { factory: Arc<Func>, static_args: Vec<String> },
}

pub use super::mask::{LeafProp, Mask};

/// One arm of a `partition`: the leaves it takes, and its transform.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionArm {
    /// The leaves it takes (its patterns' union); `None` for `_`.
    pub mask: Option<Mask>,
    pub tx: Arc<Tx>,
    pub span: Span,
}

impl PartitionArm {
    /// The arm as users read it in names and labels: `*.bias`, `*.w|*.k`, `ndim == 2`, `_`.
    pub fn label(&self) -> String {
        self.mask.as_ref().map_or_else(|| "_".to_string(), Mask::label)
    }

    /// Whether the arm would take the leaf named `name` of shape `shape` (were no earlier arm
    /// to take it first).
    pub fn takes(&self, name: &str, shape: &[usize]) -> bool {
        self.mask.as_ref().is_none_or(|m| m.selects(name, shape))
    }
}

/// How an `inject_hyperparams` hyperparameter gets its value each step.
#[derive(Clone, Debug, PartialEq)]
pub enum Hyper {
    /// A number, fixed, held as float32.
    Number(Value),
    /// A schedule, evaluated at the wrapper's own step count.
    Schedule(Arc<Schedule>),
}

/// The pipeline as a tree of transforms with bound arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum Tx {
    Chain(Vec<Arc<Tx>>),
    NamedChain(Vec<(String, Arc<Tx>)>),
    /// A `transform` definition applied to its arguments (in parameter order). `lists` has the
    /// number of entries of each list state (`list[tensor]`, `list[float]`), in state order and
    /// `None` for the others, as the checker found them running the body ahead of time.
    /// `call` is the innermost call in the user's file around it (`span` itself when the user
    /// wrote it), where a requirement its leaves' shapes break is reported.
    Instance { def: DefId, args: Vec<Value>, span: Span, call: Span, lists: Vec<Option<usize>> },
    /// `masked(inner, mask)`; `span` is the user's call that made it (an alias's call when the
    /// standard library builds it), for a glob that matches no leaf.
    Masked { inner: Arc<Tx>, mask: Mask, span: Span },
    Partition(Vec<PartitionArm>),
    Flatten(Arc<Tx>),
    /// `inject_hyperparams(f)(...)`: `inner` was built with [`Value::Injected`] standing for
    /// the hyperparameters listed here.
    Inject { id: u32, hypers: Vec<(String, Hyper)>, inner: Arc<Tx> },
    /// What an alias (`adam(...)`, a `def`) expanded to; kept for summaries and state names.
    Alias { def: DefId, args: Vec<(String, Value)>, inner: Arc<Tx> },
}

impl Tx {
    /// The transform with aliases looked through.
    pub fn unaliased(&self) -> &Tx {
        match self {
            Tx::Alias { inner, .. } => inner.unaliased(),
            other => other,
        }
    }
}

/// A state variable of one transform instance in the pipeline, for the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct StateEntry {
    /// Where it lives in the tree, e.g. `chain[0].scale_by_adam.mu`.
    pub path: String,
    pub level: Level,
    pub ty: Ty,
    /// How it is stored (per-element state; float32 otherwise).
    pub storage: Storage,
    /// The number of entries of a list state (each its own slot), `None` for other states.
    pub entries: Option<usize>,
}

impl StateEntry {
    /// The bytes a per-element state keeps for each parameter, all its entries together.
    pub fn bytes(&self) -> usize {
        self.storage.bytes() * self.entries.unwrap_or(1)
    }
}

/// The checked program: definitions (standard library first) and the user's pipeline.
#[derive(Debug, Default)]
pub struct Program {
    pub defs: Vec<Definition>,
    pub pipeline: Option<Arc<Tx>>,
    /// The schedule, when the file was checked for one ([`super::Expect::Schedule`]).
    pub schedule: Option<Arc<Schedule>>,
}

impl Program {
    pub fn def(&self, id: DefId) -> &Definition {
        &self.defs[id]
    }

    pub fn lookup(&self, name: &str) -> Option<DefId> {
        self.defs.iter().position(|d| d.name == name)
    }
}

/// A range bound as written in a declaration: `0`, `1`, `inf`, `0.5`.
fn format_bound(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format_number(x) }
}

/// Formats a number the way a user would write it: ints plainly, floats with a `.` or exponent.
pub fn format_number(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.is_nan() {
        return "nan".into();
    }
    let s = format!("{x:?}");
    if s.contains('e') || x.abs() < 1e-4 && x != 0.0 || x.abs() >= 1e16 {
        let e = format!("{x:e}");
        // Like Python's repr, without padding the exponent: `1e-5`.
        return e.replace(".0e", "e");
    }
    s
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{}", format_number(*x)),
            Value::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::None => write!(f, "None"),
            Value::List(items) => write!(f, "[{}]", join(items)),
            Value::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Value::Tuple(items) => write!(f, "({})", join(items)),
            Value::Map(entries) => {
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Value::Schedule(_) => write!(f, "<schedule>"),
            Value::Transform(_) => write!(f, "<transform>"),
            Value::Func(_) => write!(f, "<function>"),
            Value::Mask(m) => write!(f, "{m}"),
            Value::LeafInt(p) => write!(f, "{}", p.name()),
            Value::Injected { name, .. } => write!(f, "<injected {name}>"),
            Value::Runtime => write!(f, "<runtime value>"),
            Value::Error => write!(f, "<error>"),
        }
    }
}

fn join(items: &[Value]) -> String {
    items.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_a_user_writes_them() {
        assert_eq!(format_number(0.001), "0.001");
        assert_eq!(format_number(1e-5), "1e-5");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(1.0), "1.0");
        assert_eq!(format_number(1e-8), "1e-8");
        assert_eq!(format_number(f64::INFINITY), "inf");
    }
}

//! Types and levels, how written types resolve, and which types accept which (widening).

use std::fmt;
use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::syntax::ast;

/// Where a value lives. Ordered: an operation takes the highest level of its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Known before the first step: literals, hyperparameters, loop variables.
    Const,
    /// One value per step.
    Uniform,
    /// One value per parameter leaf.
    Leaf,
    /// One value per parameter element.
    Element,
}

impl Level {
    pub fn describe(self) -> &'static str {
        match self {
            Level::Const => "compile-time",
            Level::Uniform => "uniform",
            Level::Leaf => "per-leaf",
            Level::Element => "per-element",
        }
    }
}

/// A function type `fn(A, B) -> R`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnTy {
    pub params: Vec<Ty>,
    pub ret: Ty,
    /// `tensor` or `leaf` results are per-element or per-leaf; others are uniform.
    pub ret_level: Level,
}

/// A type, without its level.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Float,
    Int,
    Bool,
    Str,
    None,
    /// One of these strings.
    Enum(Arc<[String]>),
    List(Box<Ty>),
    Tuple(Vec<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Optional(Box<Ty>),
    Schedule,
    /// A schedule whose values are ints (`schedule[int]`, as `multi_steps`'s `every_k_schedule`):
    /// an int, or a schedule.
    IntSchedule,
    Transform,
    /// Which leaves something applies to ([`super::mask::Mask`]): a glob over leaf names, a
    /// bool for all/none, a list of masks, or masks built with comparisons and `and`/`or`/`not`.
    Mask,
    /// `ndim` or `size`: a number of each leaf, which a comparison turns into a mask.
    LeafInt,
    /// Axes of a leaf, as numpy takes them: an int, or a list or tuple of ints.
    Axes,
    /// A compile-time hyperparameter that takes several forms, as some of Optax's do (Muon's
    /// `ns_coeffs`: a triple, a table of triples, or a preset's name): checked where it is used,
    /// when the body runs ahead with the call's values.
    Any,
    /// A function value; `None` when its signature is not stated (`fn`).
    Fn(Option<Arc<FnTy>>),
    /// The element type of an empty list: fits anything.
    Unknown,
    /// The type of something already reported as an error: fits anything, reports nothing.
    Error,
}

impl Ty {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Float | Ty::Int | Ty::Unknown | Ty::Error)
    }

    /// The least type both fit in, if any (for list elements and `if` branches).
    pub fn join(&self, other: &Ty) -> Option<Ty> {
        use Ty::*;
        Some(match (self, other) {
            (a, b) if a == b => a.clone(),
            (Error, _) | (_, Error) => Error,
            (Any, _) | (_, Any) => Any,
            (Unknown, b) => b.clone(),
            (a, Unknown) => a.clone(),
            (Int, Float) | (Float, Int) => Float,
            (None, Optional(t)) | (Optional(t), None) => Optional(t.clone()),
            (None, t) | (t, None) => Optional(Box::new(t.clone())),
            (Optional(a), b) | (b, Optional(a)) => Optional(Box::new(a.join(b)?)),
            (Str, Enum(_)) | (Enum(_), Str) | (Enum(_), Enum(_)) => Str,
            (List(a), List(b)) => List(Box::new(a.join(b)?)),
            (Tuple(a), Tuple(b)) if a.len() == b.len() => {
                Tuple(a.iter().zip(b).map(|(x, y)| x.join(y)).collect::<Option<_>>()?)
            }
            (Map(ka, va), Map(kb, vb)) => Map(Box::new(ka.join(kb)?), Box::new(va.join(vb)?)),
            (Fn(_), Fn(_)) => Fn(Option::None),
            (Axes, b) | (b, Axes) if Axes.accepts(b) => Axes,
            // An axis and a list of axes: both are `axes` (Muon's dimension numbers in a list).
            (Int, List(t)) | (List(t), Int) if **t == Int => Axes,
            // A glob, a bool and a mask expression all say which leaves.
            (Mask, b) | (b, Mask) if Mask.accepts(b) => Mask,
            (Float | Int, Schedule) | (Schedule, Float | Int) => Schedule,
            (Int, IntSchedule) | (IntSchedule, Int) => IntSchedule,
            (Float | Schedule, IntSchedule) | (IntSchedule, Float | Schedule) => Schedule,
            _ => return Option::None,
        })
    }

    /// Whether it is an int or a list or tuple of ints: axes of a leaf, or a shape.
    pub fn is_ints(&self) -> bool {
        match self {
            Ty::Int | Ty::Axes => true,
            Ty::List(t) => **t == Ty::Int,
            Ty::Tuple(items) => items.iter().all(|t| *t == Ty::Int),
            _ => false,
        }
    }

    /// Whether a value of type `found` may be passed where `self` is expected.
    pub fn accepts(&self, found: &Ty) -> bool {
        use Ty::*;
        match (self, found) {
            (_, Error) | (Error, _) | (_, Unknown) | (Any, _) | (_, Any) => true,
            (a, b) if a == b => true,
            (Float, Int) => true,
            (Schedule, Float | Int | IntSchedule) => true,
            (IntSchedule, Int | Schedule) => true,
            (Mask, Str | Bool | Enum(_)) => true,
            (Mask, List(item)) => Mask.accepts(item),
            (Axes, Int) => true,
            (Axes, List(item)) => matches!(**item, Int | Unknown),
            (Axes, Tuple(items)) => items.iter().all(|t| *t == Int),
            (Str, Enum(_)) => true,
            (Enum(_), Str) => true, // the value is checked where it is known
            (Optional(_), None) => true,
            (Optional(t), b) => t.accepts(b),
            (List(a), List(b)) => a.accepts(b),
            (Tuple(a), Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.accepts(y)),
            (Map(ka, va), Map(kb, vb)) => ka.accepts(kb) && va.accepts(vb),
            (Fn(Option::None), Fn(_)) => true,
            (Fn(Some(a)), Fn(Some(b))) => {
                a.params.len() == b.params.len()
                    && a.params.iter().zip(&b.params).all(|(x, y)| y.accepts(x))
                    && a.ret.accepts(&b.ret)
            }
            (Fn(Some(_)), Fn(Option::None)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Float => write!(f, "float"),
            Ty::Int => write!(f, "int"),
            Ty::Bool => write!(f, "bool"),
            Ty::Str => write!(f, "str"),
            Ty::None => write!(f, "None"),
            Ty::Enum(options) => {
                let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                write!(f, "{}", quoted.join(" | "))
            }
            Ty::List(t) => write!(f, "list[{t}]"),
            Ty::Tuple(ts) => {
                let parts: Vec<String> = ts.iter().map(Ty::to_string).collect();
                write!(f, "tuple[{}]", parts.join(", "))
            }
            Ty::Map(k, v) => write!(f, "map[{k}, {v}]"),
            Ty::Optional(t) => write!(f, "{t}?"),
            Ty::Schedule => write!(f, "schedule"),
            Ty::IntSchedule => write!(f, "schedule[int]"),
            Ty::Transform => write!(f, "transform"),
            Ty::Mask => write!(f, "mask"),
            Ty::LeafInt => write!(f, "leaf property"),
            Ty::Axes => write!(f, "axes"),
            Ty::Any => write!(f, "any"),
            Ty::Fn(None) => write!(f, "fn"),
            Ty::Fn(Some(sig)) => {
                let parts: Vec<String> = sig.params.iter().map(Ty::to_string).collect();
                write!(f, "fn({}) -> {}", parts.join(", "), sig.ret)
            }
            Ty::Unknown => write!(f, "_"),
            Ty::Error => write!(f, "{{error}}"),
        }
    }
}

/// A type together with the level of its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Typed {
    pub ty: Ty,
    pub level: Level,
}

impl Typed {
    pub fn new(ty: Ty, level: Level) -> Typed {
        Typed { ty, level }
    }

    pub fn konst(ty: Ty) -> Typed {
        Typed { ty, level: Level::Const }
    }

    pub fn error() -> Typed {
        Typed { ty: Ty::Error, level: Level::Const }
    }

    pub fn is_error(&self) -> bool {
        self.ty == Ty::Error
    }
}

impl fmt::Display for Typed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ty, self.level) {
            (Ty::Float, Level::Element) => write!(f, "tensor"),
            (Ty::Float, Level::Leaf) => write!(f, "leaf"),
            (Ty::List(item), Level::Element | Level::Leaf) if **item == Ty::Float => {
                write!(f, "list[{}]", Typed::new(Ty::Float, self.level))
            }
            (ty, Level::Const) => write!(f, "{ty}"),
            (ty, level) => write!(f, "{} {ty}", level.describe()),
        }
    }
}

/// Resolves a written type. `tensor` and `leaf` are floats at their level; elsewhere the
/// level is the one given by the context (`default_level`).
pub fn resolve(t: &ast::TypeExpr, default_level: Level, errors: &mut Vec<Diagnostic>) -> Typed {
    match t {
        ast::TypeExpr::Named { name, args, span } => {
            let arity = |n: usize, errors: &mut Vec<Diagnostic>| {
                if args.len() != n {
                    errors.push(
                        Diagnostic::error("bad-type", format!("`{}` takes {n} type argument(s), found {}", name.name, args.len()))
                            .with_primary(*span, "wrong number of type arguments"),
                    );
                    false
                } else {
                    true
                }
            };
            let sub = |i: usize, errors: &mut Vec<Diagnostic>| resolve(&args[i], Level::Const, errors).ty;
            let scalar = |ty: Ty| Typed::new(ty, default_level);
            match name.name.as_str() {
                "float" if arity(0, errors) => scalar(Ty::Float),
                "int" if arity(0, errors) => scalar(Ty::Int),
                "bool" if arity(0, errors) => scalar(Ty::Bool),
                "str" if arity(0, errors) => Typed::konst(Ty::Str),
                "tensor" if arity(0, errors) => Typed::new(Ty::Float, Level::Element),
                "leaf" if arity(0, errors) => Typed::new(Ty::Float, Level::Leaf),
                "schedule" if args.is_empty() => Typed::konst(Ty::Schedule),
                "schedule" if args.len() == 1 && sub(0, errors) == Ty::Int => Typed::konst(Ty::IntSchedule),
                "schedule" => {
                    errors.push(
                        Diagnostic::error("bad-type", "a schedule gives floats (`schedule`) or ints (`schedule[int]`)")
                            .with_primary(*span, "unsupported schedule type"),
                    );
                    Typed::error()
                }
                "transform" if arity(0, errors) => Typed::konst(Ty::Transform),
                "mask" if arity(0, errors) => Typed::konst(Ty::Mask),
                "axes" if arity(0, errors) => Typed::konst(Ty::Axes),
                "any" if arity(0, errors) => Typed::konst(Ty::Any),
                // `list[tensor]` (a state of per-element entries) is a list at the level of its
                // items: each entry is its own slot.
                "list" if arity(1, errors) => {
                    let item = resolve(&args[0], Level::Const, errors);
                    Typed::new(Ty::List(Box::new(item.ty)), default_level.max(item.level))
                }
                "tuple" => Typed::konst(Ty::Tuple((0..args.len()).map(|i| sub(i, errors)).collect())),
                "map" if arity(2, errors) => Typed::konst(Ty::Map(Box::new(sub(0, errors)), Box::new(sub(1, errors)))),
                "float" | "int" | "bool" | "str" | "tensor" | "leaf" | "transform" | "mask" | "list"
                | "map" => Typed::error(),
                other => {
                    let known = [
                        "float", "int", "bool", "str", "tensor", "leaf", "schedule", "transform", "mask", "list",
                        "tuple", "map", "fn",
                    ];
                    let mut d = Diagnostic::error("unknown-type", format!("unknown type `{other}`"))
                        .with_primary(name.span, "not a type");
                    if let Some(s) = super::suggest::closest(other, known.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    errors.push(d);
                    Typed::error()
                }
            }
        }
        ast::TypeExpr::Fn { sig, .. } => {
            let sig = sig.as_ref().map(|(params, ret)| {
                let ret = resolve(ret, Level::Uniform, errors);
                Arc::new(FnTy {
                    params: params.iter().map(|p| resolve(p, Level::Element, errors).ty).collect(),
                    ret: ret.ty,
                    ret_level: ret.level,
                })
            });
            Typed::konst(Ty::Fn(sig))
        }
        ast::TypeExpr::Literal { value, .. } => Typed::konst(Ty::Enum(Arc::from(vec![value.clone()]))),
        ast::TypeExpr::None(_) => Typed::konst(Ty::None),
        ast::TypeExpr::Optional(inner, _) => {
            let t = resolve(inner, default_level, errors);
            Typed::new(Ty::Optional(Box::new(t.ty)), t.level)
        }
        ast::TypeExpr::Union(parts, span) => {
            let mut options: Vec<String> = Vec::new();
            let mut optional = false;
            let mut other: Option<Typed> = None;
            for p in parts {
                match p {
                    ast::TypeExpr::Literal { value, .. } => options.push(value.clone()),
                    ast::TypeExpr::None(_) => optional = true,
                    _ if other.is_none() => other = Some(resolve(p, default_level, errors)),
                    _ => {
                        errors.push(
                            Diagnostic::error("bad-type", "a union is either strings or one type with `None`")
                                .with_primary(*span, "unsupported union")
                                .with_help("write `\"a\" | \"b\"` or `float?`"),
                        );
                        return Typed::error();
                    }
                }
            }
            let base = match (other, options.is_empty()) {
                (Some(t), true) => t,
                (None, false) => Typed::konst(Ty::Enum(Arc::from(options))),
                (None, true) => Typed::konst(Ty::None),
                (Some(_), false) => {
                    errors.push(
                        Diagnostic::error("bad-type", "a union is either strings or one type with `None`")
                            .with_primary(*span, "unsupported union")
                            .with_help("write `\"a\" | \"b\"` or `float?`"),
                    );
                    return Typed::error();
                }
            };
            if optional { Typed::new(Ty::Optional(Box::new(base.ty)), base.level) } else { base }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_accepts_ints_as_floats_and_numbers_as_schedules() {
        assert!(Ty::Float.accepts(&Ty::Int));
        assert!(Ty::Schedule.accepts(&Ty::Float));
        assert!(!Ty::Int.accepts(&Ty::Float));
        assert!(Ty::Optional(Box::new(Ty::Float)).accepts(&Ty::None));
        assert!(Ty::Mask.accepts(&Ty::Str));
        assert!(!Ty::Transform.accepts(&Ty::Schedule));
        assert!(Ty::IntSchedule.accepts(&Ty::Int) && Ty::IntSchedule.accepts(&Ty::Schedule));
        assert!(!Ty::IntSchedule.accepts(&Ty::Float));
    }

    #[test]
    fn join_finds_the_common_type() {
        assert_eq!(Ty::Int.join(&Ty::Float), Some(Ty::Float));
        assert_eq!(Ty::None.join(&Ty::Float), Some(Ty::Optional(Box::new(Ty::Float))));
        assert_eq!(Ty::Str.join(&Ty::Transform), None);
    }
}

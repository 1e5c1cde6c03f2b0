//! Masks: which leaves a `masked` transform or a `partition` arm takes. One home for what a
//! mask value is, how masks combine, whether one selects a leaf, and how one is written back.
//!
//! A mask is a glob over dotted leaf names (`"*.bias"`), `True`/`False` (every leaf, none), a
//! comparison of a leaf's shape (`ndim > 1`, `size >= 1024`), a list of masks (any of them),
//! or masks combined with `and`, `or` and `not`. Optax's rank mask
//! `lambda p: jax.tree.map(lambda x: x.ndim > 1, p)` is `ndim > 1`.

use std::fmt;

use super::program::Value;
use super::types::Ty;
use crate::syntax::ast::BinaryOp;

/// A number every leaf has, read by a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafProp {
    /// The number of dimensions (0 for a scalar).
    Ndim,
    /// The number of elements.
    Size,
    /// The sizes of the dimensions (a list; read in bodies only, never by masks).
    Shape,
    /// Which masks among the transform's hyperparameters select the leaf (`selects(m)`, in
    /// bodies only): not a number of the shape, so its leaves' groups are told apart by the
    /// masks themselves.
    Selected,
}

impl LeafProp {
    /// The names a `.opt` file reads them by.
    pub const ALL: [(&'static str, LeafProp); 2] = [("ndim", LeafProp::Ndim), ("size", LeafProp::Size)];

    pub fn by_name(name: &str) -> Option<LeafProp> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    /// The properties a transform's body reads by name: the numbers, and `shape`.
    pub fn in_body(name: &str) -> Option<LeafProp> {
        if name == "shape" { Some(LeafProp::Shape) } else { Self::by_name(name) }
    }

    /// Its number for a leaf of shape `shape` (the number of dimensions for `shape`).
    pub fn of(self, shape: &[usize]) -> i64 {
        match self {
            LeafProp::Ndim | LeafProp::Shape => shape.len() as i64,
            LeafProp::Size => shape.iter().product::<usize>() as i64,
            LeafProp::Selected => 0,
        }
    }

    /// Its value for a leaf of shape `shape`, at compile time.
    pub fn value(self, shape: &[usize]) -> Value {
        match self {
            LeafProp::Shape => Value::List(shape.iter().map(|&n| Value::Int(n as i64)).collect()),
            _ => Value::Int(self.of(shape)),
        }
    }

    /// Its name in a `.opt` file.
    pub fn name(self) -> &'static str {
        match self {
            LeafProp::Ndim => "ndim",
            LeafProp::Size => "size",
            LeafProp::Shape => "shape",
            LeafProp::Selected => "selects",
        }
    }
}

/// Which leaves something applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Mask {
    /// A glob over dotted leaf names (Python's `fnmatchcase`).
    Glob(String),
    All,
    Nothing,
    /// `prop op n`, `op` one of `<`, `<=`, `>`, `>=`, `==`, `!=`.
    Shape { prop: LeafProp, op: BinaryOp, n: f64 },
    Not(Box<Mask>),
    /// Any of them (a list, `or`, the globs of a partition arm).
    Any(Vec<Mask>),
    /// Every one of them (`and`).
    Every(Vec<Mask>),
}

impl Mask {
    /// The mask a value stands for, if it is one: a glob string, a bool, a list of masks, or a
    /// mask built with a comparison of `ndim`/`size`, `and`, `or`, `not`.
    pub fn from_value(v: &Value) -> Option<Mask> {
        match v {
            Value::Str(g) => Some(Mask::Glob(g.clone())),
            Value::Bool(true) => Some(Mask::All),
            Value::Bool(false) => Some(Mask::Nothing),
            Value::Mask(m) => Some(m.clone()),
            Value::List(items) => items.iter().map(Mask::from_value).collect::<Option<Vec<_>>>().map(Mask::Any),
            _ => None,
        }
    }

    /// `l op r` for masks (`and`, `or`) and for a leaf's number against a number (`ndim > 1`);
    /// `None` if the operands are not such.
    pub fn binary(op: BinaryOp, l: &Value, r: &Value) -> Option<Mask> {
        match (l, r) {
            (Value::LeafInt(prop), n) | (n, Value::LeafInt(prop)) if op.is_comparison() => {
                let n = n.as_f64()?;
                // `1 < ndim` is `ndim > 1`.
                let op = if matches!(l, Value::LeafInt(_)) { op } else { flipped(op) };
                Some(Mask::Shape { prop: *prop, op, n })
            }
            (Value::Bool(_), Value::Bool(_)) => None,
            _ if matches!(op, BinaryOp::And | BinaryOp::Or) => {
                let (a, b) = (Mask::from_value(l)?, Mask::from_value(r)?);
                Some(if op == BinaryOp::And { Mask::Every(vec![a, b]) } else { Mask::Any(vec![a, b]) })
            }
            _ => None,
        }
    }

    /// Whether the mask takes the leaf named `name` of shape `shape`.
    pub fn selects(&self, name: &str, shape: &[usize]) -> bool {
        self.judge(Some(name), shape).unwrap_or(false)
    }

    /// Whether the mask takes a value of shape `shape` that has no name (under `flatten`, every
    /// leaf as one vector); `None` if it reads a name (holds a glob).
    pub fn selects_nameless(&self, shape: &[usize]) -> Option<bool> {
        self.judge(None, shape)
    }

    fn judge(&self, name: Option<&str>, shape: &[usize]) -> Option<bool> {
        Some(match self {
            Mask::Glob(g) => crate::glob::matches(g, name?),
            Mask::All => true,
            Mask::Nothing => false,
            Mask::Shape { prop, op, n } => {
                let x = prop.of(shape) as f64;
                match op {
                    BinaryOp::Lt => x < *n,
                    BinaryOp::Le => x <= *n,
                    BinaryOp::Gt => x > *n,
                    BinaryOp::Ge => x >= *n,
                    BinaryOp::Eq => x == *n,
                    _ => x != *n,
                }
            }
            Mask::Not(m) => !m.judge(name, shape)?,
            Mask::Any(ms) => ms.iter().map(|m| m.judge(name, shape)).collect::<Option<Vec<bool>>>()?.contains(&true),
            Mask::Every(ms) => !ms.iter().map(|m| m.judge(name, shape)).collect::<Option<Vec<bool>>>()?.contains(&false),
        })
    }

    /// The globs of a mask that is a union of globs only (what the glob analyses understand:
    /// coverage of partition arms, did-you-mean), with the spanless `True` as `*`.
    pub fn as_globs(&self) -> Option<Vec<&str>> {
        match self {
            Mask::Glob(g) => Some(vec![g.as_str()]),
            Mask::All => Some(vec!["*"]),
            Mask::Nothing => Some(Vec::new()),
            Mask::Any(ms) => ms.iter().map(Mask::as_globs).try_fold(Vec::new(), |mut acc, g| {
                acc.extend(g?);
                Some(acc)
            }),
            _ => None,
        }
    }

    /// Every glob written anywhere in the mask (to report one that matches no leaf).
    pub fn globs(&self) -> Vec<&str> {
        match self {
            Mask::Glob(g) => vec![g.as_str()],
            Mask::Not(m) => m.globs(),
            Mask::Any(ms) | Mask::Every(ms) => ms.iter().flat_map(Mask::globs).collect(),
            _ => Vec::new(),
        }
    }

    /// The mask as a short label for users (a log column's `lr[*.bias]`, a state's path):
    /// globs bare, a union of globs joined with `|`.
    pub fn label(&self) -> String {
        match self {
            Mask::Any(ms) if !ms.is_empty() => ms.iter().map(|m| m.part(false)).collect::<Vec<_>>().join("|"),
            _ => self.written(false),
        }
    }

    /// The mask as an operand of `not`, `and`, `or`: bracketed when it is itself a union or an
    /// intersection.
    fn part(&self, quoted: bool) -> String {
        match self {
            Mask::Any(_) | Mask::Every(_) => format!("({})", self.written(quoted)),
            _ => self.written(quoted),
        }
    }

    /// The mask as a `.opt` file writes it (globs quoted when `quoted`).
    fn written(&self, quoted: bool) -> String {
        let part = |m: &Mask| m.part(quoted);
        match self {
            Mask::Glob(g) if quoted => format!("{g:?}"),
            Mask::Glob(g) => g.clone(),
            Mask::All => "True".into(),
            Mask::Nothing => "False".into(),
            Mask::Shape { prop, op, n } => format!("{} {} {n}", prop.name(), op.symbol()),
            Mask::Not(m) => format!("not {}", part(m)),
            Mask::Any(ms) => ms.iter().map(part).collect::<Vec<_>>().join(" or "),
            Mask::Every(ms) => ms.iter().map(part).collect::<Vec<_>>().join(" and "),
        }
    }
}

impl fmt::Display for Mask {
    /// As a `.opt` file writes it: `"*.bias"`, `ndim > 1`, `not "*.bias"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written(true))
    }
}

/// Whether a value of type `t` may be combined as a mask with `and`, `or`, `not` (two bools
/// stay a bool).
pub fn is_mask_type(t: &Ty) -> bool {
    matches!(t, Ty::Mask | Ty::Str | Ty::Enum(_) | Ty::Bool)
}

fn flipped(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(v: Value) -> Mask {
        Mask::from_value(&v).expect("a mask")
    }

    fn binary(op: BinaryOp, l: Value, r: Value) -> Mask {
        Mask::binary(op, &l, &r).expect("a mask")
    }

    #[test]
    fn masks_select_by_name_and_shape() {
        let rank = binary(BinaryOp::Gt, Value::LeafInt(LeafProp::Ndim), Value::Int(1));
        assert!(rank.selects("w", &[3, 4]) && !rank.selects("b", &[4]) && !rank.selects("s", &[]));
        // `1 < ndim` reads as `ndim > 1`.
        assert_eq!(Mask::binary(BinaryOp::Lt, &Value::Int(1), &Value::LeafInt(LeafProp::Ndim)), Some(rank.clone()));
        let big = binary(BinaryOp::Ge, Value::LeafInt(LeafProp::Size), Value::Int(12));
        assert!(big.selects("w", &[3, 4]) && !big.selects("w", &[3, 3]));
        let not_bias = Mask::Not(Box::new(mask(Value::Str("*.bias".into()))));
        let both = binary(BinaryOp::And, Value::Mask(rank.clone()), Value::Mask(not_bias));
        assert!(both.selects("l.w", &[2, 2]) && !both.selects("l.bias", &[2, 2]) && !both.selects("l.w", &[2]));
        let list = mask(Value::List(vec![Value::Str("*.w".into()), Value::Str("*.k".into())]));
        assert!(list.selects("a.k", &[1]) && !list.selects("a.b", &[1]));
        assert_eq!(list.as_globs(), Some(vec!["*.w", "*.k"]));
        assert_eq!(rank.as_globs(), None);
    }

    #[test]
    fn masks_are_written_as_a_file_writes_them() {
        let rank = binary(BinaryOp::Gt, Value::LeafInt(LeafProp::Ndim), Value::Int(1));
        let any = binary(BinaryOp::Or, Value::Mask(rank.clone()), Value::Str("*.emb".into()));
        let not = Mask::Not(Box::new(any));
        assert_eq!(not.to_string(), r#"not (ndim > 1 or "*.emb")"#);
        assert_eq!(not.label(), "not (ndim > 1 or *.emb)");
        assert_eq!(mask(Value::List(vec![Value::Str("*.w".into()), Value::Str("*.k".into())])).label(), "*.w|*.k");
    }
}

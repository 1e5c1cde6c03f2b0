//! Values during instantiation: compile-time values stay exact (Python's doubles and ints)
//! until they meet a runtime value, where they are rounded to float32 (or int32), as a Python
//! float meeting a jnp array is.

use super::{Inst, Which};
use crate::check::consts;
use crate::check::program::Value;
use crate::diagnostic::Diagnostic;
use crate::ir::op::{Kind, Op, Scalar};
use crate::ir::NodeId;
use crate::syntax::ast::{BinaryOp, UnaryOp};

/// A value during instantiation.
#[derive(Clone, Debug, PartialEq)]
pub enum IVal {
    /// Known at compile time.
    Const(Value),
    /// A runtime scalar (uniform, per leaf or per element).
    Node(NodeId),
    /// A list with runtime entries (`list[float]` state).
    List(Vec<IVal>),
    Tuple(Vec<IVal>),
}

impl IVal {
    /// What a `for` loop or a comprehension iterates over: the items of a list or tuple, or
    /// the `(key, value)` entries of a map.
    pub fn iterated(self) -> Option<Vec<IVal>> {
        match self {
            IVal::Const(Value::Map(entries)) => {
                Some(entries.into_iter().map(|(k, v)| IVal::Const(Value::Tuple(vec![k, v]))).collect())
            }
            other => other.items(),
        }
    }

    /// The items of a list or tuple, compile-time or runtime; `None` for anything else.
    pub fn items(self) -> Option<Vec<IVal>> {
        match self {
            IVal::Const(Value::List(items) | Value::Tuple(items)) => Some(items.into_iter().map(IVal::Const).collect()),
            IVal::List(items) | IVal::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// Whether the two are the same value ([`Value::identical`]: a NaN is itself).
    pub fn identical(&self, other: &IVal) -> bool {
        let all = |a: &[IVal], b: &[IVal]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y));
        match (self, other) {
            (IVal::Const(a), IVal::Const(b)) => a.identical(b),
            (IVal::List(a), IVal::List(b)) | (IVal::Tuple(a), IVal::Tuple(b)) => all(a, b),
            _ => self == other,
        }
    }
}

impl crate::check::bind::Bound for IVal {
    fn known(&self) -> Option<&Value> {
        match self {
            IVal::Const(v) => Some(v),
            _ => None,
        }
    }

    fn from_value(v: Value) -> IVal {
        IVal::Const(v)
    }

    fn list(items: Vec<IVal>) -> IVal {
        super::body::collect(items, false)
    }
}

impl Inst<'_> {
    /// The value as a node of `which`, or `None` (reported) if it is not a scalar.
    pub fn node_for(&mut self, v: IVal, which: Which) -> Option<NodeId> {
        let g = self.graph(which);
        match v {
            IVal::Node(n) => Some(n),
            IVal::Const(Value::Float(x)) => Some(g.constant(Scalar::F32(x as f32))),
            IVal::Const(Value::Int(n)) => Some(match i32::try_from(n) {
                Ok(n) => g.constant(Scalar::I32(n)),
                Err(_) => g.constant(Scalar::F32(n as f32)),
            }),
            IVal::Const(Value::Bool(b)) => Some(g.constant(Scalar::Bool(b))),
            IVal::Const(Value::Injected { owner, name, .. }) => {
                let values = match which {
                    Which::Step => &self.injected,
                    Which::Init => &self.injected_init,
                    Which::Eval => &self.injected_eval,
                };
                match values.get(&(owner, name.clone())) {
                    Some(&n) => Some(n),
                    None => {
                        self.error(Diagnostic::bug(format!("the injected hyperparameter `{name}` has no value")));
                        None
                    }
                }
            }
            other => {
                self.error(Diagnostic::bug(format!("a {} value cannot be computed at run time", describe(&other))));
                None
            }
        }
    }

    /// The value as a node of kind `kind` (converted as jnp would).
    pub fn convert(&mut self, v: IVal, kind: Kind, which: Which) -> IVal {
        match (&v, kind) {
            (IVal::Const(Value::Int(n)), Kind::F32) => IVal::Const(Value::Float(*n as f64)),
            (IVal::Node(n), _) if self.graph(which).kind(*n) != kind => {
                let op = match kind {
                    Kind::F32 => Op::ToF32,
                    Kind::I32 => Op::ToI32,
                    Kind::Bool => Op::Ne,
                };
                let n = *n;
                if kind == Kind::Bool {
                    let zero = self.graph(which).constant(Scalar::F32(0.0));
                    let f = self.op(which, Op::ToF32, &[n]);
                    IVal::Node(self.op(which, op, &[f, zero]))
                } else {
                    IVal::Node(self.op(which, op, &[n]))
                }
            }
            _ => v,
        }
    }

    /// The value as a float32 node.
    pub fn f32_node(&mut self, v: IVal, which: Which) -> NodeId {
        let v = self.convert(v, Kind::F32, which);
        self.node_of(v, which, Kind::F32)
    }

    /// The value as a node, converted to `kind`.
    pub fn node_of(&mut self, v: IVal, which: Which, kind: Kind) -> NodeId {
        let v = self.convert(v, kind, which);
        match self.node_for(v, which) {
            Some(n) => n,
            None => self.graph(which).constant(Scalar::F32(0.0)),
        }
    }

    /// `l op r`: exact if both are compile-time, else float32 (or int32) nodes.
    pub fn binary(&mut self, op: BinaryOp, l: IVal, r: IVal, which: Which) -> IVal {
        if let (IVal::Const(a), IVal::Const(b)) = (&l, &r)
            && !matches!(a, Value::Injected { .. })
            && !matches!(b, Value::Injected { .. })
        {
            return match consts::binary(op, a, b) {
                Ok(v) => IVal::Const(v),
                Err(e) => {
                    self.error(Diagnostic::error(e.code, e.message));
                    IVal::Const(Value::Float(0.0))
                }
            };
        }
        // Joining lists, one of them (or both) holding runtime values.
        if op == BinaryOp::Add
            && let (IVal::List(_) | IVal::Const(Value::List(_)), IVal::List(_) | IVal::Const(Value::List(_))) = (&l, &r)
        {
            let (a, b) = (l.items().unwrap_or_default(), r.items().unwrap_or_default());
            return IVal::List(a.into_iter().chain(b).collect());
        }
        // `x ^ 2` with an int literal exponent is multiplication, as in JAX (`lax.integer_pow`).
        if op == BinaryOp::Pow
            && let IVal::Const(Value::Int(n)) = r
            && n.abs() <= 64
            && let Some(x) = self.node_for(l.clone(), which)
        {
            return IVal::Node(self.integer_pow(x, n, which));
        }
        // `x ^ 0.5` and `x ^ -0.5` are a square root and its reciprocal, as LLVM rewrites
        // `pow(x, 0.5)`: more exact than a general power, and a tenth of its cost per element.
        if op == BinaryOp::Pow
            && let IVal::Const(Value::Float(e)) = r
            && e.abs() == 0.5
            && let Some(x) = self.node_for(l.clone(), which)
        {
            return IVal::Node(self.half_pow(x, e < 0.0, which));
        }
        let (Some(a), Some(b)) = (self.node_for(l, which), self.node_for(r, which)) else {
            return IVal::Const(Value::Float(0.0));
        };
        IVal::Node(self.binary_nodes(op, a, b, which))
    }

    /// `a op b` on nodes, converting ints and bools as jnp promotes them.
    pub fn binary_nodes(&mut self, op: BinaryOp, a: NodeId, b: NodeId, which: Which) -> NodeId {
        let (ka, kb) = (self.graph(which).kind(a), self.graph(which).kind(b));
        let both_int = ka == Kind::I32 && kb == Kind::I32;
        let both_bool = ka == Kind::Bool && kb == Kind::Bool;
        let as_f32 = |this: &mut Self, n: NodeId| this.f32_node(IVal::Node(n), which);
        let (op, a, b) = match op {
            BinaryOp::And | BinaryOp::Or => {
                let o = if op == BinaryOp::And { Op::And } else { Op::Or };
                (o, a, b)
            }
            BinaryOp::Eq | BinaryOp::Ne if both_bool || both_int => {
                (if op == BinaryOp::Eq { Op::Eq } else { Op::Ne }, a, b)
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Rem if both_int => {
                let o = match op {
                    BinaryOp::Add => Op::Add,
                    BinaryOp::Sub => Op::Sub,
                    BinaryOp::Mul => Op::Mul,
                    _ => Op::Rem,
                };
                (o, a, b)
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge if both_int => (cmp_op(op), a, b),
            _ => {
                let o = match op {
                    BinaryOp::Add => Op::Add,
                    BinaryOp::Sub => Op::Sub,
                    BinaryOp::Mul => Op::Mul,
                    BinaryOp::Div => Op::Div,
                    BinaryOp::Rem => Op::Rem,
                    BinaryOp::Pow => Op::Pow,
                    _ => cmp_op(op),
                };
                let (a, b) = (as_f32(self, a), as_f32(self, b));
                (o, a, b)
            }
        };
        self.op(which, op, &[a, b])
    }

    /// `x ^ n` by repeated squaring, in the order of JAX's `integer_pow`.
    fn integer_pow(&mut self, x: NodeId, n: i64, which: Which) -> NodeId {
        let mut x = self.f32_node(IVal::Node(x), which);
        if n == 0 {
            return self.graph(which).constant(Scalar::F32(1.0));
        }
        let mut y = n.unsigned_abs();
        let mut acc: Option<NodeId> = None;
        while y > 0 {
            if y & 1 == 1 {
                acc = Some(match acc {
                    None => x,
                    Some(a) => self.op(which, Op::Mul, &[a, x]),
                });
            }
            y >>= 1;
            if y > 0 {
                x = self.op(which, Op::Mul, &[x, x]);
            }
        }
        let acc = acc.unwrap_or(x);
        if n < 0 {
            let one = self.graph(which).constant(Scalar::F32(1.0));
            self.op(which, Op::Div, &[one, acc])
        } else {
            acc
        }
    }

    /// `x ^ 0.5` (or `x ^ -0.5` if `reciprocal`) with C99's special values: the root of
    /// `x + 0`, which is +0 for -0 (as `pow(-0, 0.5)`); at -inf, whose root is NaN, `pow`'s
    /// +inf (or +0).
    fn half_pow(&mut self, x: NodeId, reciprocal: bool, which: Which) -> NodeId {
        let x = self.f32_node(IVal::Node(x), which);
        let zero = self.graph(which).constant(Scalar::F32(0.0));
        let unsigned = self.op(which, Op::Add, &[x, zero]);
        let root = self.op(which, if reciprocal { Op::Rsqrt } else { Op::Sqrt }, &[unsigned]);
        let minus_inf = self.graph(which).constant(Scalar::F32(f32::NEG_INFINITY));
        let at_minus_inf = self.op(which, Op::Eq, &[x, minus_inf]);
        let limit = self.graph(which).constant(Scalar::F32(if reciprocal { 0.0 } else { f32::INFINITY }));
        self.op(which, Op::Select, &[at_minus_inf, limit, root])
    }

    pub fn unary(&mut self, op: UnaryOp, v: IVal, which: Which) -> IVal {
        match (op, v) {
            (UnaryOp::Pos, v) => v,
            (UnaryOp::Neg, IVal::Const(Value::Int(n))) => IVal::Const(Value::Int(-n)),
            (UnaryOp::Neg, IVal::Const(Value::Float(x))) => IVal::Const(Value::Float(-x)),
            (UnaryOp::Not, IVal::Const(Value::Bool(b))) => IVal::Const(Value::Bool(!b)),
            (op, v) => {
                let Some(n) = self.node_for(v, which) else { return IVal::Const(Value::Float(0.0)) };
                let o = if op == UnaryOp::Not { Op::Not } else { Op::Neg };
                IVal::Node(self.op(which, o, &[n]))
            }
        }
    }

    /// `if c { a } else { b }` selecting per element (or per leaf, or uniform).
    pub fn select(&mut self, c: IVal, a: IVal, b: IVal, which: Which) -> IVal {
        match c {
            IVal::Const(Value::Bool(true)) => return a,
            IVal::Const(Value::Bool(false)) => return b,
            _ => {}
        }
        if a == b {
            return a;
        }
        match (a, b) {
            (IVal::List(xs), IVal::List(ys)) if xs.len() == ys.len() => IVal::List(
                xs.into_iter().zip(ys).map(|(x, y)| self.select(c.clone(), x, y, which)).collect(),
            ),
            (a, b) => {
                let Some(c) = self.node_for(c, which) else { return a };
                let kind_of = |this: &mut Self, v: &IVal| match v {
                    IVal::Node(n) => this.graph(which).kind(*n),
                    IVal::Const(Value::Int(_)) => Kind::I32,
                    IVal::Const(Value::Bool(_)) => Kind::Bool,
                    _ => Kind::F32,
                };
                let (ka, kb) = (kind_of(self, &a), kind_of(self, &b));
                let kind = if ka == kb { ka } else { Kind::F32 };
                let a = self.node_of(a, which, kind);
                let b = self.node_of(b, which, kind);
                IVal::Node(self.op(which, Op::Select, &[c, a, b]))
            }
        }
    }
}

fn cmp_op(op: BinaryOp) -> Op {
    match op {
        BinaryOp::Eq => Op::Eq,
        BinaryOp::Ne => Op::Ne,
        BinaryOp::Lt => Op::Lt,
        BinaryOp::Le => Op::Le,
        BinaryOp::Gt => Op::Gt,
        _ => Op::Ge,
    }
}

fn describe(v: &IVal) -> String {
    match v {
        IVal::Const(c) => c.ty().to_string(),
        IVal::Node(_) => "scalar".into(),
        IVal::List(_) => "list".into(),
        IVal::Tuple(_) => "tuple".into(),
    }
}

//! The untyped syntax tree. Every node carries its [`Span`]; no meaning is attached yet.

use std::sync::Arc;

use crate::source::Span;

/// A parsed `.opt` file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Let(Let),
    // Definitions are shared, not copied, by the checked program (and by the cache of the
    // standard library's trees, across threads).
    Def(Arc<Def>),
    Transform(Arc<Transform>),
    Schedule(Arc<Def>),
    Builtin(Arc<Def>),
    /// A bare expression; the last one of a user file is its pipeline.
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `let pattern = value`
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub pattern: Pattern,
    pub value: Expr,
    pub span: Span,
}

/// A name or a tuple of patterns.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Name(Ident),
    Tuple(Vec<Pattern>, Span),
}

impl Pattern {
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(id) => id.span,
            Pattern::Tuple(_, span) => *span,
        }
    }
}

/// A `def`, `schedule` or `builtin`: a name, parameters and (but for builtins) a body.
#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    pub name: Ident,
    /// The comment block right above the definition, without the `#`s.
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    /// `None` only for builtins.
    pub body: Option<Block>,
    pub span: Span,
}

/// `name: type in [lo, hi) = default`, or `*name: type`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub range: Option<RangeBound>,
    pub default: Option<Expr>,
    pub variadic: bool,
    pub span: Span,
}

/// `in [lo, hi)`: whether each end is included.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeBound {
    pub lo: Expr,
    pub hi: Expr,
    pub lo_inclusive: bool,
    pub hi_inclusive: bool,
    pub span: Span,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `float`, `list[int]`, `map[int, float]`
    Named { name: Ident, args: Vec<TypeExpr>, span: Span },
    /// `fn(A, B) -> R`; `fn` alone when `sig` is `None`.
    Fn { sig: Option<(Vec<TypeExpr>, Box<TypeExpr>)>, span: Span },
    /// A string literal in a union: `"sign" | "refined"`.
    Literal { value: String, span: Span },
    None(Span),
    /// `A | B | C`
    Union(Vec<TypeExpr>, Span),
    /// `T?`
    Optional(Box<TypeExpr>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named { span, .. }
            | TypeExpr::Fn { span, .. }
            | TypeExpr::Literal { span, .. }
            | TypeExpr::None(span)
            | TypeExpr::Union(_, span)
            | TypeExpr::Optional(_, span) => *span,
        }
    }
}

/// `transform name(params) { state ...; update(g) { ... }; eval_params { ... } }`
#[derive(Clone, Debug, PartialEq)]
pub struct Transform {
    pub name: Ident,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub states: Vec<StateDecl>,
    /// `None` if the transform has no `update` block (an error reported by the checker).
    pub update: Option<Update>,
    /// `eval_params { ... }`: the weights to evaluate the model with, if not the parameters.
    pub eval_params: Option<EvalParams>,
    pub span: Span,
}

/// `state name: type = init`
#[derive(Clone, Debug, PartialEq)]
pub struct StateDecl {
    pub name: Ident,
    pub doc: Option<String>,
    pub ty: TypeExpr,
    pub init: Expr,
    pub span: Span,
}

/// `update(g) { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub input: Ident,
    pub body: Block,
    pub span: Span,
}

/// `eval_params { ... }`: per element, the weights to evaluate the model with, computed from
/// `param` (the parameters after the last step) and the state.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalParams {
    pub body: Block,
    pub span: Span,
}

/// `{ statements; result }`
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    /// The final expression, the block's value.
    pub result: Option<Box<Expr>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let(Let),
    Assign(Assign),
    For(For),
    Assert { cond: Expr, message: Option<String>, span: Span },
    /// `reset inner`: the nested transform `inner` starts again from its initial state.
    Reset(Ident),
    /// `revert inner`: what `inner` did to its state this step is undone (its output stays).
    Revert(Ident),
    /// An expression used as a statement: an `if` statement.
    Expr(Expr),
}

/// `target op value`
#[derive(Clone, Debug, PartialEq)]
pub struct Assign {
    pub target: Ident,
    /// `s[i] = ...`
    pub index: Option<Expr>,
    pub op: AssignOp,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

/// `for pattern in iter { body }`
#[derive(Clone, Debug, PartialEq)]
pub struct For {
    pub pattern: Pattern,
    pub iter: Expr,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    Name(String),
    List(Vec<Expr>),
    /// `[elem for pattern in iter]`
    ListComp { elem: Box<Expr>, pattern: Pattern, iter: Box<Expr> },
    Tuple(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Unary { op: UnaryOp, operand: Box<Expr> },
    Binary { op: BinaryOp, op_span: Span, lhs: Box<Expr>, rhs: Box<Expr> },
    Call { callee: Box<Expr>, args: Vec<Arg>, args_span: Span },
    Index { base: Box<Expr>, index: Box<Expr> },
    Slice { base: Box<Expr>, start: Option<Box<Expr>>, end: Option<Box<Expr>> },
    If { cond: Box<Expr>, then: Block, otherwise: Option<Block> },
    Partition(Vec<Arm>),
    /// Stands for a part that failed to parse and was already reported.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Pos,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Pow => "^",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Positional(Expr),
    Keyword { name: Ident, value: Expr },
    /// `**map`
    Splat(Expr),
}

/// `"glob" | "glob" => tx` in a `partition`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    pub patterns: Vec<ArmPattern>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArmPattern {
    Glob(String, Span),
    /// An expression whose value is a `mask`: a name bound to a glob, `ndim == 2`,
    /// `not "*.bias"`, ...
    Mask(Expr),
    Wildcard(Span),
}

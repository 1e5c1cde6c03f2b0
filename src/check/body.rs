//! The static checker of definition bodies: names, types and levels of every expression in a
//! `def`, `schedule`, `transform` (state initialisers and `update`). It keeps going after an
//! error, giving the failed part the type `{error}`, which fits anything and reports nothing.

use std::collections::HashMap;

use super::bind::{self, CallArg, CallArgs, Slot};
use super::builtins;
use super::program::{DefId, DefKind, Definition, Globals, LeafProp};
use super::suggest;
use super::types::{Level, Ty, Typed};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};

/// Which body is being checked: decides which special names exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    Def,
    Schedule,
    StateInit,
    Update,
    /// A transform's `eval_params`.
    EvalParams,
}

#[derive(Clone, Debug)]
pub(super) enum VarKind {
    Local,
    /// A state variable, with its declared type.
    State(Typed),
    /// A hyperparameter: cannot be assigned.
    Param,
}

#[derive(Clone, Debug)]
pub(super) struct Var {
    pub ty: Typed,
    pub kind: VarKind,
}

/// Checks one body. Create one per body with [`Checker::new`].
pub struct Checker<'a, 'g> {
    pub(super) globals: &'a Globals<'g>,
    pub(super) ctx: Ctx,
    pub(super) scopes: Vec<HashMap<String, Var>>,
    pub errors: Vec<Diagnostic>,
    /// Set when the body reads `value`.
    pub reads_value: bool,
    /// Set when the body reads `param`.
    pub reads_param: bool,
    /// The leaf properties (`ndim`, `size`) a transform's body reads as each leaf's number.
    pub reads_leaf: Vec<LeafProp>,
    /// Transform parameters applied so far, and where.
    pub(super) applied: HashMap<String, Span>,
    /// The level of the conditions of the `if` statements around the current statement.
    pub(super) cond_level: Level,
    /// Inside a `for` body.
    pub(super) in_loop: bool,
    /// The defs being checked at their call sites, to catch recursion.
    pub(super) def_stack: Vec<DefId>,
}

impl<'a, 'g> Checker<'a, 'g> {
    pub fn new(globals: &'a Globals<'g>, ctx: Ctx) -> Checker<'a, 'g> {
        Checker {
            globals,
            ctx,
            scopes: vec![HashMap::new()],
            errors: Vec::new(),
            reads_value: false,
            reads_param: false,
            reads_leaf: Vec::new(),
            applied: HashMap::new(),
            cond_level: Level::Const,
            in_loop: false,
            def_stack: Vec::new(),
        }
    }

    pub fn declare(&mut self, name: &str, ty: Typed, kind: VarKind) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), Var { ty, kind });
        }
    }

    pub(super) fn lookup(&self, name: &str) -> Option<&Var> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn lookup_mut(&mut self, name: &str) -> Option<&mut Var> {
        self.scopes.iter_mut().rev().find_map(|s| s.get_mut(name))
    }

    pub(super) fn err(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    // ---- blocks and statements -----------------------------------------------------------

    /// Checks a block in a new scope; returns the type of its result, if it has one.
    pub fn block(&mut self, block: &ast::Block) -> Option<Typed> {
        self.scopes.push(HashMap::new());
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
        let result = block.result.as_ref().map(|e| self.expr(e));
        self.scopes.pop();
        result
    }

    fn stmt(&mut self, stmt: &ast::Stmt) {
        match stmt {
            ast::Stmt::Let(l) => {
                let ty = self.expr(&l.value);
                self.bind_pattern(&l.pattern, ty);
            }
            ast::Stmt::Assign(a) => self.assign(a),
            ast::Stmt::For(f) => self.for_loop(f),
            ast::Stmt::Assert { cond, span, .. } => {
                let t = self.expr(cond);
                if t.is_error() {
                    return;
                }
                if t.ty != Ty::Bool {
                    self.err(type_mismatch(cond.span, "an `assert` condition", &Ty::Bool, &t));
                } else if t.level > Level::Const {
                    self.err(
                        Diagnostic::error("level-mismatch", "an `assert` is checked at compile time")
                            .with_primary(cond.span, format!("this condition is {}", t.level.describe()))
                            .with_secondary(*span, "in this `assert`")
                            .with_help("assert only on hyperparameters and constants"),
                    );
                }
            }
            ast::Stmt::Reset(name) | ast::Stmt::Revert(name) => {
                let word = if matches!(stmt, ast::Stmt::Reset(_)) { "reset" } else { "revert" };
                let ok = self.ctx == Ctx::Update
                    && matches!(self.lookup(&name.name), Some(Var { ty, kind: VarKind::Param }) if ty.ty == Ty::Transform);
                if !ok {
                    self.err(
                        Diagnostic::error("bad-reset", format!("`{word} {}` needs a transform parameter", name.name))
                            .with_primary(name.span, "not a transform parameter of this transform")
                            .with_help(format!("`{word}` acts on the state of a nested transform inside `update`")),
                    );
                } else if word == "revert" && !self.applied.contains_key(&name.name) {
                    self.err(
                        Diagnostic::error("bad-reset", format!("`revert {}` before `{}` is applied", name.name, name.name))
                            .with_primary(name.span, "nothing to revert yet")
                            .with_help(format!("apply it first: `let u = {}(g)`", name.name)),
                    );
                }
            }
            ast::Stmt::Expr(e) => match &e.kind {
                ExprKind::If { cond, then, otherwise } => self.if_stmt(cond, then, otherwise.as_ref()),
                ExprKind::Error => {}
                _ => {
                    let t = self.expr(e);
                    if !t.is_error() {
                        self.err(
                            Diagnostic::error("unused-value", "this value is computed and thrown away")
                                .with_primary(e.span, "not used")
                                .with_help("bind it with `let`, or make it the last line of the block"),
                        );
                    }
                }
            },
        }
    }

    fn bind_pattern(&mut self, pattern: &ast::Pattern, ty: Typed) {
        match pattern {
            ast::Pattern::Name(id) => self.declare(&id.name, ty, VarKind::Local),
            ast::Pattern::Tuple(parts, span) => {
                let parts_ty: Vec<Typed> = match &ty.ty {
                    Ty::Tuple(items) if items.len() == parts.len() => {
                        items.iter().map(|t| Typed::new(t.clone(), ty.level)).collect()
                    }
                    Ty::List(item) => vec![Typed::new((**item).clone(), ty.level); parts.len()],
                    // (Checked where the call's value is known.)
                    Ty::Any => vec![Typed::new(Ty::Any, ty.level); parts.len()],
                    Ty::Error => vec![Typed::error(); parts.len()],
                    other => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("cannot unpack {other} into {} names", parts.len()))
                                .with_primary(*span, format!("expected a tuple of {}", parts.len())),
                        );
                        vec![Typed::error(); parts.len()]
                    }
                };
                for (p, t) in parts.iter().zip(parts_ty) {
                    self.bind_pattern(p, t);
                }
            }
        }
    }

    fn assign(&mut self, a: &ast::Assign) {
        let value = self.expr(&a.value);
        let Some(var) = self.lookup(&a.target.name).cloned() else {
            let d = self.unknown_name(&a.target.name, a.target.span);
            self.err(d.with_help("declare it first with `let` (or as a `state` of the transform)"));
            return;
        };
        let value = if a.op == ast::AssignOp::Set {
            value
        } else {
            let op = match a.op {
                ast::AssignOp::Add => ast::BinaryOp::Add,
                ast::AssignOp::Sub => ast::BinaryOp::Sub,
                ast::AssignOp::Mul => ast::BinaryOp::Mul,
                _ => ast::BinaryOp::Div,
            };
            let current = self.index_type(&var.ty, a.index.as_ref(), a.target.span);
            self.binary_types(op, &current, &value, a.span)
        };
        let value = Typed::new(value.ty, value.level.max(self.cond_level));
        match &var.kind {
            VarKind::Param => self.err(
                Diagnostic::error("assign-to-parameter", format!("cannot assign to the parameter `{}`", a.target.name))
                    .with_primary(a.target.span, "a parameter is fixed")
                    .with_help(format!("bind a new name: `let {0}_ = ...`", a.target.name)),
            ),
            VarKind::State(_) if self.ctx == Ctx::EvalParams => self.err(
                Diagnostic::error("bad-assignment", format!("`eval_params` cannot change the state `{}`", a.target.name))
                    .with_primary(a.target.span, "the state is read-only here")
                    .with_help("change the state in `update`; `eval_params` only reads it"),
            ),
            VarKind::State(declared) => {
                let target = match &a.index {
                    Some(_) => self.index_type(declared, a.index.as_ref(), a.target.span),
                    None => declared.clone(),
                };
                if !target.is_error() && !value.is_error() {
                    if !target.ty.accepts(&value.ty) {
                        self.err(type_mismatch(a.value.span, &format!("state `{}`", a.target.name), &target.ty, &value));
                    } else if value.level > target.level {
                        let list = matches!(declared.ty, Ty::List(_));
                        self.err(level_too_high(&a.target.name, &target, &value, a.value.span, self.cond_level, list));
                    }
                }
            }
            VarKind::Local => {
                if let Some(index) = &a.index {
                    self.err(
                        Diagnostic::error("bad-assignment", "only a list state (`list[float]`, `list[tensor]`, `list[leaf]`) can be assigned by index")
                            .with_primary(index.span, "index of a local"),
                    );
                    return;
                }
                let joined = var.ty.ty.join(&value.ty);
                let Some(ty) = joined else {
                    self.err(type_mismatch(a.value.span, &format!("`{}`", a.target.name), &var.ty.ty, &value));
                    return;
                };
                let level = value.level.max(if self.in_loop { var.ty.level } else { Level::Const });
                if let Some(v) = self.lookup_mut(&a.target.name) {
                    v.ty = Typed::new(ty, level);
                }
            }
        }
    }

    /// The type of `base[index]` (or of `base` without an index).
    fn index_type(&mut self, base: &Typed, index: Option<&ast::Expr>, span: Span) -> Typed {
        let Some(index) = index else { return base.clone() };
        let i = self.expr(index);
        if !i.is_error() && (i.ty != Ty::Int || i.level > Level::Const) {
            self.err(
                Diagnostic::error("bad-index", "a state list is indexed by a compile-time int")
                    .with_primary(index.span, format!("found {i}"))
                    .with_help("index with a `for` loop variable over `range(...)`")
                    .with_note("each entry of a state list is a slot of its own; to keep the last n values, shift the entries (`s[i] = s[i + 1]`) and write the newest last"),
            );
        }
        match &base.ty {
            Ty::List(item) => Typed::new((**item).clone(), base.level),
            Ty::Error => Typed::error(),
            other => {
                self.err(Diagnostic::error("bad-index", format!("cannot index {other}")).with_primary(span, "not a list"));
                Typed::error()
            }
        }
    }

    fn for_loop(&mut self, f: &ast::For) {
        let iter = self.expr(&f.iter);
        let item = match (&iter.ty, iter.level) {
            (Ty::Error, _) => Typed::error(),
            (_, level) if level > Level::Const => {
                self.err(
                    Diagnostic::error("level-mismatch", "a `for` loop runs at compile time")
                        .with_primary(f.iter.span, format!("this is {}, not known at compile time", level.describe()))
                        .with_help("loop over a list, a map or `range(n)` of hyperparameters"),
                );
                Typed::error()
            }
            (Ty::List(t), _) => Typed::konst((**t).clone()),
            (Ty::Map(k, v), _) => Typed::konst(Ty::Tuple(vec![(**k).clone(), (**v).clone()])),
            (Ty::Any, _) => Typed::konst(Ty::Any),
            (other, _) => {
                self.err(
                    Diagnostic::error("type-mismatch", format!("cannot loop over {other}"))
                        .with_primary(f.iter.span, "expected a list, a map or `range(n)`"),
                );
                Typed::error()
            }
        };
        // Check the body twice: the second pass sees the levels the first pass gave the
        // variables it assigns, as an unrolled loop would.
        let saved_errors = std::mem::take(&mut self.errors);
        let was_in_loop = std::mem::replace(&mut self.in_loop, true);
        for pass in 0..2 {
            self.scopes.push(HashMap::new());
            self.bind_pattern(&f.pattern, item.clone());
            self.statement_branch(&f.body, None);
            self.scopes.pop();
            if pass == 0 {
                self.errors.clear();
            }
        }
        self.in_loop = was_in_loop;
        let body_errors = std::mem::replace(&mut self.errors, saved_errors);
        self.errors.extend(body_errors);
    }

    fn if_stmt(&mut self, cond: &ast::Expr, then: &ast::Block, otherwise: Option<&ast::Block>) {
        let c = self.condition(cond);
        if c.level == Level::Element && (assigns(then) || otherwise.is_some_and(assigns)) {
            self.err(
                Diagnostic::error("level-mismatch", "the condition of an `if` statement must be uniform or per-leaf")
                    .with_primary(cond.span, "this condition is per-element")
                    .with_help("select per element with an `if` expression: `x = if c { a } else { b }`"),
            );
        }
        let narrowed = self.narrowed(narrowing(cond));
        let outer = self.cond_level;
        self.cond_level = outer.max(c.level.min(Level::Leaf));
        let before = self.snapshot();
        self.statement_branch(then, narrowed.as_ref().filter(|n| !n.none_in_then));
        let after_then = self.snapshot();
        self.restore(&before);
        if let Some(block) = otherwise {
            self.statement_branch(block, narrowed.as_ref().filter(|n| n.none_in_then));
        }
        self.merge(&after_then);
        self.cond_level = outer;
    }

    /// A branch of an `if` statement, or a loop's body: a last line that is an `if` is a
    /// statement too, so `if a { ... } else if b { ... }` needs no `else` and no values.
    fn statement_branch(&mut self, block: &ast::Block, narrow: Option<&Narrowing>) {
        match block.result.as_deref() {
            Some(ast::Expr { kind: ExprKind::If { cond, then, otherwise }, .. }) => {
                self.scopes.push(HashMap::new());
                if let Some(n) = narrow {
                    self.declare(&n.name, n.ty.clone(), n.kind.clone());
                }
                self.scopes.push(HashMap::new());
                for stmt in &block.stmts {
                    self.stmt(stmt);
                }
                self.if_stmt(cond, then, otherwise.as_ref());
                self.scopes.pop();
                self.scopes.pop();
            }
            _ => {
                self.branch(block, narrow);
            }
        }
    }

    pub(super) fn branch(&mut self, block: &ast::Block, narrow: Option<&Narrowing>) -> Option<Typed> {
        self.scopes.push(HashMap::new());
        if let Some(n) = narrow {
            self.declare(&n.name, n.ty.clone(), n.kind.clone());
        }
        let result = self.block(block);
        self.scopes.pop();
        result
    }

    fn snapshot(&self) -> Vec<HashMap<String, Var>> {
        self.scopes.clone()
    }

    fn restore(&mut self, snapshot: &[HashMap<String, Var>]) {
        self.scopes = snapshot.to_vec();
    }

    /// After an `if`: each local's type is the join of its types in the two branches.
    fn merge(&mut self, other: &[HashMap<String, Var>]) {
        for (scope, other_scope) in self.scopes.iter_mut().zip(other) {
            for (name, var) in scope.iter_mut() {
                if let Some(o) = other_scope.get(name)
                    && let Some(ty) = var.ty.ty.join(&o.ty.ty)
                {
                    var.ty = Typed::new(ty, var.ty.level.max(o.ty.level));
                }
            }
        }
    }

    /// Checks a condition: a bool at any level.
    pub(super) fn condition(&mut self, cond: &ast::Expr) -> Typed {
        let c = self.expr(cond);
        if !c.is_error() && c.ty != Ty::Bool {
            self.err(type_mismatch(cond.span, "a condition", &Ty::Bool, &c));
        }
        c
    }

    // ---- names ---------------------------------------------------------------------------

    pub(super) fn name(&mut self, name: &str, span: Span) -> Typed {
        if let Some(var) = self.lookup(name) {
            return var.ty.clone();
        }
        match (name, self.ctx) {
            ("param", Ctx::Update | Ctx::StateInit | Ctx::EvalParams) => {
                self.reads_param = true;
                return Typed::new(Ty::Float, Level::Element);
            }
            // Known per leaf at instantiation, which instantiates the body once per shape: a
            // compile-time value there (`range(ndim)`, `shape[-1]`, an `if` that keeps one branch).
            (_, Ctx::Update | Ctx::StateInit | Ctx::EvalParams) if LeafProp::in_body(name).is_some() => {
                let prop = LeafProp::in_body(name).unwrap_or(LeafProp::Ndim);
                if !self.reads_leaf.contains(&prop) {
                    self.reads_leaf.push(prop);
                }
                return Typed::konst(if prop == LeafProp::Shape { Ty::List(Box::new(Ty::Int)) } else { Ty::Int });
            }
            ("value", Ctx::Update) => {
                self.reads_value = true;
                return Typed::new(Ty::Float, Level::Uniform);
            }
            ("step", Ctx::Schedule) => return Typed::new(Ty::Int, Level::Uniform),
            ("param" | "value" | "step", _) => {
                let where_ = match name {
                    "step" => "in a `schedule` body",
                    "value" => "inside a transform's `update`",
                    _ => "inside a transform's `update`, `eval_params` and state initialisers",
                };
                let help = if self.ctx == Ctx::EvalParams {
                    "the evaluation weights are computed from `param` and the state, after the last step"
                } else {
                    "pass it in as an argument"
                };
                self.err(
                    Diagnostic::error("unknown-name", format!("`{name}` is only available {where_}"))
                        .with_primary(span, "not available here")
                        .with_help(help),
                );
                return Typed::error();
            }
            _ => {}
        }
        if builtins::CONSTANTS.iter().any(|(n, _)| *n == name) {
            return Typed::konst(Ty::Float);
        }
        if LeafProp::by_name(name).is_some() {
            return Typed::konst(Ty::LeafInt);
        }
        if let Some(&id) = self.globals.by_name.get(name) {
            return Typed::konst(def_as_value(&self.globals.defs[id]));
        }
        if builtins::is_builtin(name) {
            self.err(builtins::used_as_value(name, span));
            return Typed::error();
        }
        let mut d = self.unknown_name(name, span);
        if self.ctx == Ctx::EvalParams {
            d = d.with_note("`eval_params` has no gradient: it reads `param` (the parameters after the last step), the state and the hyperparameters");
        }
        self.err(d);
        Typed::error()
    }

    pub(super) fn unknown_name(&self, name: &str, span: Span) -> Diagnostic {
        let specials: &[&str] = match self.ctx {
            Ctx::Update => &["param", "value"],
            Ctx::StateInit | Ctx::EvalParams => &["param"],
            Ctx::Schedule => &["step"],
            Ctx::Def => &[],
        };
        let mut candidates: Vec<&str> = self.scopes.iter().flat_map(|s| s.keys().map(String::as_str)).collect();
        candidates.extend(specials.iter().copied());
        candidates.extend(self.globals.by_name.keys().map(String::as_str));
        for n in builtins::names() {
            candidates.push(n);
        }
        suggest::unknown_name(name, span, candidates)
    }

    // ---- calls into definitions ----------------------------------------------------------

    /// Binds and checks the arguments of a call to a definition; returns the slots' types.
    pub(super) fn bind_args(&mut self, id: DefId, args: &[ast::Arg], args_span: Span) -> Vec<Slot<Typed>> {
        let mut call = CallArgs { args: Vec::new(), opaque_splat: false, span: args_span };
        for a in args {
            match a {
                ast::Arg::Positional(e) => call.args.push(CallArg::Positional(self.expr(e), e.span)),
                ast::Arg::Keyword { name, value } => {
                    call.args.push(CallArg::Keyword(name.clone(), self.expr(value), name.span.to(value.span)))
                }
                ast::Arg::Splat(e) => {
                    let t = self.expr(e);
                    if !matches!(t.ty, Ty::Map(..) | Ty::Error) {
                        self.err(type_mismatch(e.span, "`**`", &Ty::Map(Box::new(Ty::Str), Box::new(Ty::Unknown)), &t));
                    }
                    call.opaque_splat = true;
                }
            }
        }
        let def = &self.globals.defs[id];
        let mut errors = Vec::new();
        let slots = bind::bind(self.globals.defs, def, call, &mut errors);
        self.errors.extend(errors);
        for (slot, param) in slots.iter().zip(&def.params) {
            let given: Vec<(&Typed, Span)> = match slot {
                Slot::Given(t, s) => vec![(t, *s)],
                Slot::Variadic(items) => items.iter().map(|(t, s)| (t, *s)).collect(),
                Slot::Default => Vec::new(),
            };
            for (t, span) in given {
                if !param.ty.ty.accepts(&t.ty) {
                    let what = format!("`{}` of `{}`", param.name, def.name);
                    let d = type_mismatch(span, &what, &param.ty.ty, t)
                        .with_secondary(param.span, format!("`{}` is declared here", param.name));
                    self.errors.push(d);
                }
            }
        }
        slots
    }
}

/// The type a definition has when its name is used as a value.
pub fn def_as_value(def: &Definition) -> Ty {
    match def.kind {
        DefKind::Transform | DefKind::Def | DefKind::Builtin | DefKind::Schedule => Ty::Fn(None),
    }
}

/// Whether a block assigns anything (making an `if` around it a statement).
fn assigns(block: &ast::Block) -> bool {
    block.stmts.iter().any(|s| match s {
        ast::Stmt::Assign(_) | ast::Stmt::Reset(_) | ast::Stmt::Revert(_) => true,
        ast::Stmt::For(f) => assigns(&f.body),
        ast::Stmt::Expr(e) => match &e.kind {
            ExprKind::If { then, otherwise, .. } => assigns(then) || otherwise.as_ref().is_some_and(assigns),
            _ => false,
        },
        _ => false,
    })
}

/// `if x == None { A } else { B }` (or `!=`): `x` is not `None` in one of the branches.
pub(super) struct Narrowing {
    name: String,
    ty: Typed,
    kind: VarKind,
    /// True when `x` is `None` in the `then` branch (so it is narrowed in `else`).
    pub(super) none_in_then: bool,
}

/// The name and direction of a `x == None` / `x != None` / `x is None` condition.
pub(super) fn narrowing(cond: &ast::Expr) -> Option<(String, bool)> {
    let ExprKind::Binary { op, lhs, rhs, .. } = &cond.kind else { return None };
    let (name, other) = match (&lhs.kind, &rhs.kind) {
        (ExprKind::Name(n), other) | (other, ExprKind::Name(n)) => (n, other),
        _ => return None,
    };
    if *other != ExprKind::None {
        return None;
    }
    match op {
        ast::BinaryOp::Eq => Some((name.clone(), true)),
        ast::BinaryOp::Ne => Some((name.clone(), false)),
        _ => None,
    }
}

impl Checker<'_, '_> {
    /// Resolves a narrowing condition against the current scope.
    pub(super) fn narrowed(&self, spec: Option<(String, bool)>) -> Option<Narrowing> {
        let (name, none_in_then) = spec?;
        let var = self.lookup(&name)?;
        let Ty::Optional(inner) = &var.ty.ty else { return None };
        Some(Narrowing { ty: Typed::new((**inner).clone(), var.ty.level), kind: var.kind.clone(), name, none_in_then })
    }
}

pub(super) fn type_mismatch(span: Span, what: &str, expected: &Ty, found: &Typed) -> Diagnostic {
    Diagnostic::error("type-mismatch", format!("{what} expects {expected}, found {found}"))
        .with_primary(span, format!("expected {expected}"))
}

fn level_too_high(name: &str, target: &Typed, value: &Typed, span: Span, cond_level: Level, list: bool) -> Diagnostic {
    let mut d = Diagnostic::error(
        "level-mismatch",
        format!("state `{name}` is {} but is given a {} value", target.level.describe(), value.level.describe()),
    )
    .with_primary(span, format!("this is {}", value.level.describe()));
    if cond_level > target.level {
        d = d.with_note(format!("it is assigned under a {} condition", cond_level.describe()));
    }
    let higher = if list { "`list[tensor]`, `list[leaf]`" } else { "`tensor`, `leaf`" };
    d.with_help(format!("reduce it first (`sum`, `norm`, `leaf_norm`, ...) or declare the state at a higher level ({higher})"))
}

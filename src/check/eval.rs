//! Compile-time evaluation: the user's `let`s and pipeline, and every `def` they call, are run
//! here on [`Value`]s, in Python's arithmetic (double floats, unbounded ints), giving the
//! pipeline as a tree of transform instances. Errors are reported where the user can fix them.

use std::collections::HashMap;
use std::sync::Arc;

use super::builtins;
use super::program::{Func, Globals, LeafProp, Mask, PartitionArm, Tx, Value};
use super::suggest;
use super::types::Ty;
use crate::diagnostic::Diagnostic;
use crate::limits;
use crate::source::{SourceMap, Span};
use crate::syntax::ast::{self, BinaryOp, ExprKind, UnaryOp};

pub struct Evaluator<'a, 'g> {
    pub(super) globals: &'a Globals<'g>,
    pub(super) sources: &'a SourceMap,
    pub errors: Vec<Diagnostic>,
    pub(super) scopes: Vec<HashMap<String, Value>>,
    /// Spans of the calls being evaluated, outermost first.
    pub(super) calls: Vec<Span>,
    pub(super) next_inject: u32,
    /// Running a body ahead of time ([`super::ahead`]): runtime values flow silently.
    pub(super) ahead: bool,
    /// The int hyperparameters `inject_hyperparams` made runtime values in the body run ahead.
    pub(super) ahead_injected: Vec<String>,
    /// What evaluation has spent, against [`crate::limits`].
    pub(super) budget: super::budget::Budget,
}

impl<'a, 'g> Evaluator<'a, 'g> {
    pub fn new(globals: &'a Globals<'g>, sources: &'a SourceMap) -> Evaluator<'a, 'g> {
        Evaluator { globals, sources, errors: Vec::new(), scopes: vec![HashMap::new()], calls: Vec::new(), next_inject: 0, ahead: false, ahead_injected: Vec::new(), budget: Default::default() }
    }

    pub(super) fn err(&mut self, d: Diagnostic) {
        self.errors.push(self.in_user_code(d));
    }

    /// A list literal: its items must share one type (an int among floats widens).
    fn list(&mut self, values: Vec<Value>, span: Span) -> Value {
        let mut ty = Ty::Unknown;
        for v in &values {
            let t = v.ty();
            match ty.join(&t) {
                Some(j) => ty = j,
                None => {
                    self.err(
                        Diagnostic::error("type-mismatch", format!("a list holds one type, found {ty} and {t}"))
                            .with_primary(span, "mixed types")
                            .with_help("use a tuple `(a, b)` to group values of different types"),
                    );
                    return Value::Error;
                }
            }
        }
        self.sized(Value::List(values), span)
    }

    /// A diagnostic found inside a definition also points at the user's call that led there:
    /// as its primary label when it points into the standard library, so the user sees where
    /// to act; as a secondary one in the user's own definitions.
    fn in_user_code(&self, mut d: Diagnostic) -> Diagnostic {
        let in_stdlib = |span: Span| self.sources.get(span.file).is_some_and(|f| f.is_stdlib);
        let Some(primary) = d.primary.as_ref().map(|l| l.span) else { return d };
        let Some(&user) = self.calls.iter().rev().find(|s| !in_stdlib(**s)) else { return d };
        if in_stdlib(primary) {
            let inner = d.primary.take();
            d = d.with_primary(user, "in this call");
            if let Some(label) = inner {
                d.secondary.insert(0, label);
            }
        } else if primary.file != user.file || primary.end <= user.start || primary.start >= user.end {
            d = d.with_secondary(user, "with the values of this call");
        }
        d
    }

    /// `span`, or the innermost call in the user's file around it when it lies in the standard
    /// library.
    pub(super) fn user_span(&self, span: Span) -> Span {
        let in_stdlib = |span: Span| self.sources.get(span.file).is_some_and(|f| f.is_stdlib);
        if !in_stdlib(span) {
            return span;
        }
        self.calls.iter().rev().copied().find(|s| !in_stdlib(*s)).unwrap_or(span)
    }

    pub fn bind(&mut self, name: &str, value: Value) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), value);
        }
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn assign_existing(&mut self, name: &str, value: Value) -> bool {
        match self.scopes.iter_mut().rev().find_map(|s| s.get_mut(name)) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    // ---- blocks --------------------------------------------------------------------------

    /// Evaluates a block in a new scope; its result, or `None` if it has none.
    pub fn block(&mut self, block: &ast::Block) -> Option<Value> {
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
                let v = self.expr(&l.value);
                self.bind_pattern(&l.pattern, v);
            }
            ast::Stmt::Assign(a) => {
                let value = self.expr(&a.value);
                let target = self.lookup(&a.target.name).cloned().unwrap_or(Value::Error);
                let index = a.index.as_ref().map(|i| (self.expr(i), i.span));
                let value = match a.op {
                    ast::AssignOp::Set => value,
                    op => {
                        let current = match &index {
                            Some((i, span)) => self.index(target.clone(), i.clone(), *span),
                            None => target.clone(),
                        };
                        let op = match op {
                            ast::AssignOp::Add => BinaryOp::Add,
                            ast::AssignOp::Sub => BinaryOp::Sub,
                            ast::AssignOp::Mul => BinaryOp::Mul,
                            _ => BinaryOp::Div,
                        };
                        self.binary(op, current, value, a.span)
                    }
                };
                // `s[i] = v` replaces one item of a list (a `list[float]` state).
                let value = match (index, target) {
                    (None, _) => value,
                    (Some((Value::Int(i), _)), Value::List(mut items)) => {
                        let n = items.len() as i64;
                        match usize::try_from(if i < 0 { i + n } else { i }).ok().and_then(|k| items.get_mut(k)) {
                            Some(item) => *item = value,
                            None => {
                                let span = a.index.as_ref().map_or(a.span, |e| e.span);
                                self.err(out_of_range(i, n, span));
                                return;
                            }
                        }
                        Value::List(items)
                    }
                    (Some(_), Value::Error) => Value::Error,
                    (Some(_), _) => Value::Runtime,
                };
                if !self.assign_existing(&a.target.name, value) {
                    self.err(
                        Diagnostic::error("unknown-name", format!("cannot find `{}`", a.target.name))
                            .with_primary(a.target.span, "not declared")
                            .with_help("declare it first with `let`"),
                    );
                }
            }
            ast::Stmt::For(f) => {
                let items = match self.expr(&f.iter) {
                    Value::List(items) | Value::Tuple(items) => items,
                    Value::Map(entries) => entries.into_iter().map(|(k, v)| Value::Tuple(vec![k, v])).collect(),
                    Value::Error => return,
                    // A loop over runtime values: its body runs once on a runtime item, and
                    // what it assigns is known only at run time.
                    Value::Runtime => {
                        let before = self.scopes.clone();
                        self.scopes.push(HashMap::new());
                        self.bind_pattern(&f.pattern, Value::Runtime);
                        self.block(&f.body);
                        self.scopes.pop();
                        self.join(&before);
                        return;
                    }
                    other => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("cannot loop over {}", other.ty()))
                                .with_primary(f.iter.span, "expected a list, a map or `range(n)`"),
                        );
                        return;
                    }
                };
                for item in items {
                    if !self.spend(1, f.span) {
                        return;
                    }
                    self.scopes.push(HashMap::new());
                    self.bind_pattern(&f.pattern, item);
                    self.block(&f.body);
                    self.scopes.pop();
                }
            }
            ast::Stmt::Assert { cond, message, span } => self.assert(cond, message.as_deref(), *span),
            ast::Stmt::Reset(_) | ast::Stmt::Revert(_) => {}
            ast::Stmt::Expr(e) => {
                self.expr(e);
            }
        }
    }

    pub(super) fn assert(&mut self, cond: &ast::Expr, message: Option<&str>, span: Span) {
        match self.expr(cond) {
            Value::Bool(true) | Value::Error => {}
            Value::Bool(false) => self.err(super::bind::failed_assert(message, span)),
            _ => {}
        }
    }

    pub(super) fn bind_pattern(&mut self, pattern: &ast::Pattern, value: Value) {
        match pattern {
            ast::Pattern::Name(id) => self.bind(&id.name, value),
            ast::Pattern::Tuple(parts, span) => {
                let items = match value {
                    Value::Tuple(items) | Value::List(items) if items.len() == parts.len() => items,
                    v @ (Value::Error | Value::Runtime) => vec![v; parts.len()],
                    other => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("cannot unpack {other} into {} names", parts.len()))
                                .with_primary(*span, format!("expected {} values", parts.len())),
                        );
                        vec![Value::Error; parts.len()]
                    }
                };
                for (p, v) in parts.iter().zip(items) {
                    self.bind_pattern(p, v);
                }
            }
        }
    }

    // ---- expressions ---------------------------------------------------------------------

    pub fn expr(&mut self, e: &ast::Expr) -> Value {
        if !self.spend(1, e.span) {
            return Value::Error;
        }
        match &e.kind {
            ExprKind::Int(n) => Value::Int(*n),
            ExprKind::Float(x) => Value::Float(*x),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::None => Value::None,
            ExprKind::Error => Value::Error,
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => {
                let values: Vec<Value> = items.iter().map(|i| self.expr(i)).collect();
                self.list(values, e.span)
            }
            ExprKind::Tuple(items) => {
                let values = items.iter().map(|i| self.expr(i)).collect();
                self.sized(Value::Tuple(values), e.span)
            }
            ExprKind::ListComp { elem, pattern, iter } => {
                let items = match self.expr(iter) {
                    Value::List(items) | Value::Tuple(items) => items,
                    Value::Map(entries) => entries.into_iter().map(|(k, v)| Value::Tuple(vec![k, v])).collect(),
                    Value::Runtime => return Value::Runtime,
                    _ => return Value::Error,
                };
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    self.scopes.push(HashMap::new());
                    self.bind_pattern(pattern, item);
                    out.push(self.expr(elem));
                    self.scopes.pop();
                }
                self.sized(Value::List(out), e.span)
            }
            ExprKind::Map(entries) => {
                let map = self.map(entries);
                self.sized(map, e.span)
            }
            ExprKind::Unary { op, operand } => {
                let v = self.expr(operand);
                match (op, v) {
                    (_, v @ (Value::Error | Value::Runtime)) => v,
                    (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnaryOp::Not, v @ (Value::Str(_) | Value::Mask(_))) => {
                        Mask::from_value(&v).map_or(Value::Error, |m| Value::Mask(Mask::Not(Box::new(m))))
                    }
                    (UnaryOp::Neg, Value::Int(n)) => n.checked_neg().map_or(Value::Error, Value::Int),
                    (UnaryOp::Neg, Value::Float(x)) => Value::Float(-x),
                    (UnaryOp::Pos, v @ (Value::Int(_) | Value::Float(_))) => v,
                    (_, v @ Value::Injected { .. }) => self.not_constant(&v, operand.span),
                    (_, v) => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("this operator does not apply to {}", v.ty()))
                                .with_primary(operand.span, format!("this is {}", v.ty())),
                        );
                        Value::Error
                    }
                }
            }
            ExprKind::Binary { op, op_span, lhs, rhs } => {
                // `and` / `or` short-circuit, as in Python.
                let l = self.expr(lhs);
                match (op, &l) {
                    (BinaryOp::And, Value::Bool(false)) => return Value::Bool(false),
                    (BinaryOp::Or, Value::Bool(true)) => return Value::Bool(true),
                    _ => {}
                }
                let r = self.expr(rhs);
                self.binary(*op, l, r, *op_span)
            }
            ExprKind::Call { callee, args, args_span } => self.call(callee, args, *args_span, e.span),
            ExprKind::Index { base, index } => {
                let b = self.expr(base);
                let i = self.expr(index);
                self.index(b, i, index.span)
            }
            ExprKind::Slice { base, start, end } => {
                let b = self.expr(base);
                let s = start.as_ref().map(|x| self.expr(x));
                let t = end.as_ref().map(|x| self.expr(x));
                self.slice(b, s, t, e.span)
            }
            ExprKind::If { cond, then, otherwise } => match self.expr(cond) {
                c @ (Value::Bool(_) | Value::Runtime) => self.branches(c, then, otherwise.as_ref()),
                Value::Error => Value::Error,
                v @ Value::Injected { .. } => self.not_constant(&v, cond.span),
                other => {
                    self.err(
                        Diagnostic::error("type-mismatch", format!("a condition must be a bool, found {}", other.ty()))
                            .with_primary(cond.span, "expected bool"),
                    );
                    Value::Error
                }
            },
            ExprKind::Partition(arms) => self.partition(arms, e.span),
        }
    }

    fn name(&mut self, name: &str, span: Span) -> Value {
        if let Some(v) = self.lookup(name) {
            return v.clone();
        }
        if let Some((_, x)) = builtins::CONSTANTS.iter().find(|(n, _)| *n == name) {
            return Value::Float(*x);
        }
        if let Some(prop) = LeafProp::by_name(name) {
            return Value::LeafInt(prop);
        }
        if let Some(&id) = self.globals.by_name.get(name) {
            return Value::Func(Arc::new(Func::Def(id)));
        }
        if builtins::is_builtin(name) {
            self.err(builtins::used_as_value(name, span));
            return Value::Error;
        }
        let mut candidates: Vec<&str> = self.scopes.iter().flat_map(|s| s.keys().map(String::as_str)).collect();
        candidates.extend(self.globals.by_name.keys().map(String::as_str));
        for n in builtins::names() {
            candidates.push(n);
        }
        let mut d = suggest::unknown_name(name, span, candidates);
        if d.help.is_empty() && matches!(name, "step" | "param" | "value" | "g") {
            d = d.with_note(format!("`{name}` exists only inside the body of a transform or schedule"));
        }
        self.err(d);
        Value::Error
    }

    fn map(&mut self, entries: &[(ast::Expr, ast::Expr)]) -> Value {
        let mut out: Vec<(Value, Value, Span)> = Vec::new();
        for (k, v) in entries {
            let key = self.expr(k);
            let value = self.expr(v);
            let known = !matches!(key, Value::Error | Value::Runtime);
            if known && let Some((_, _, first)) = out.iter().find(|(existing, _, _)| existing.equals(&key)) {
                let first = *first;
                self.err(
                    Diagnostic::error("duplicate-key", format!("the key {key} appears twice in this map"))
                        .with_primary(k.span, "repeated key")
                        .with_secondary(first, "first here"),
                );
                continue;
            }
            out.push((key, value, k.span));
        }
        // Maps iterate in ascending key order.
        out.sort_by(|(a, _, _), (b, _, _)| a.compare(b).unwrap_or(std::cmp::Ordering::Equal));
        Value::Map(out.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    fn partition(&mut self, arms: &[ast::Arm], span: Span) -> Value {
        let mut out = Vec::new();
        let mut wildcard: Option<Span> = None;
        for arm in arms {
            if let Some(w) = wildcard {
                self.err(
                    Diagnostic::error("unreachable-arm", "this arm comes after `_`, which takes every leaf")
                        .with_primary(arm.span, "never used")
                        .with_secondary(w, "`_` matches everything")
                        .with_help("move `_` to the end"),
                );
            }
            let mut parts = Vec::new();
            for p in &arm.patterns {
                match p {
                    ast::ArmPattern::Wildcard(s) => wildcard = Some(*s),
                    ast::ArmPattern::Glob(g, s) => {
                        self.validate_glob(g, *s);
                        parts.push(Mask::Glob(g.clone()));
                    }
                    ast::ArmPattern::Mask(e) => match self.expr(e) {
                        Value::Error => {}
                        v => match Mask::from_value(&v) {
                            Some(mask) => {
                                for g in mask.globs() {
                                    self.validate_glob(g, e.span);
                                }
                                parts.push(mask);
                            }
                            None => self.err(
                                Diagnostic::error("type-mismatch", format!("a partition arm selects leaves by a mask, found {}", v.describe()))
                                    .with_primary(e.span, "not a mask")
                                    .with_help("a glob (`\"*.bias\"`), a comparison of `ndim` or `size` (`ndim == 2`), or masks combined with `and`, `or`, `not`"),
                            ),
                        },
                    },
                }
            }
            let is_wild = arm.patterns.iter().any(|p| matches!(p, ast::ArmPattern::Wildcard(_)));
            let mask = if parts.len() == 1 { parts.pop().unwrap_or(Mask::Nothing) } else { Mask::Any(parts) };
            if !is_wild && wildcard.is_none() {
                self.warn_if_covered(&out, &mask, arm.span);
            }
            let tx = match self.expr(&arm.value) {
                Value::Transform(tx) => tx,
                Value::Error => continue,
                other => {
                    let d = self.expected_transform(&other, arm.value.span, "a partition arm");
                    self.err(d);
                    continue;
                }
            };
            // (An arm the standard library writes is reported at the user's call that made it.)
            out.push(PartitionArm { mask: (!is_wild).then_some(mask), tx, span: self.user_span(arm.span) });
        }
        if out.is_empty() && arms.is_empty() {
            self.err(
                Diagnostic::error("empty-partition", "a partition needs at least one arm")
                    .with_primary(span, "no arms")
                    .with_help("add `_ => transform` to cover every leaf"),
            );
            return Value::Error;
        }
        self.built(Tx::Partition(out), 0, span)
    }

    fn validate_glob(&mut self, glob: &str, span: Span) {
        if let Err(msg) = crate::glob::validate(glob) {
            self.err(Diagnostic::error("bad-glob", format!("invalid glob `{glob}`: {msg}")).with_primary(span, msg));
        }
    }

    /// Warns about a partition arm whose globs only match leaves that earlier arms take. Only
    /// globs are compared: an arm that selects by shape is never called unreachable.
    fn warn_if_covered(&mut self, earlier: &[PartitionArm], mask: &Mask, span: Span) {
        let Some(globs) = mask.as_globs().filter(|g| !g.is_empty()) else { return };
        fn arm_globs(a: &PartitionArm) -> Vec<&str> {
            a.mask.as_ref().and_then(Mask::as_globs).unwrap_or_default()
        }
        let before: Vec<&str> = earlier.iter().flat_map(arm_globs).collect();
        if !globs.iter().all(|g| crate::glob::covered(g, &before)) {
            return;
        }
        let mut d = Diagnostic::warning("unreachable-arm", "this arm is never used: earlier arms take every leaf it matches")
            .with_primary(span, "never used")
            .with_note("the first arm whose glob matches a leaf takes it")
            .with_help("remove this arm, or move it above the arms that take its leaves");
        let single = earlier.iter().find(|a| {
            let own = arm_globs(a);
            globs.iter().all(|g| crate::glob::covered(g, &own))
        });
        match single {
            Some(a) => d = d.with_secondary(a.span, "this arm takes them"),
            None => {
                for a in earlier {
                    d = d.with_secondary(a.span, "these arms take them");
                }
            }
        }
        self.err(d);
    }

    /// The diagnostic for a value that should have been a transform.
    pub(super) fn expected_transform(&self, found: &Value, span: Span, what: &str) -> Diagnostic {
        let mut d = Diagnostic::error("type-mismatch", format!("{what} expects a transform, found {}", found.describe()))
            .with_primary(span, "expected a transform");
        if let Value::Func(f) = found
            && let Func::Def(id) = **f
        {
            let name = &self.globals.defs[id].name;
            d = d.with_help(format!("call it: `{name}(...)`"));
        } else if let Value::Schedule(_) = found {
            d = d.with_help("a schedule is passed to a transform, e.g. `adam(learning_rate=schedule)`");
        }
        d
    }

    pub(super) fn not_constant(&mut self, v: &Value, span: Span) -> Value {
        let name = match v {
            Value::Injected { name, .. } => name.clone(),
            _ => "this value".into(),
        };
        self.not_constant_named(&name, span)
    }

    /// [`Self::not_constant`] for the hyperparameter `name`.
    pub(super) fn not_constant_named(&mut self, name: &str, span: Span) -> Value {
        self.err(
            Diagnostic::error("not-constant", format!("`{name}` is not known at compile time"))
                .with_primary(span, "needed at compile time here")
                .with_note(format!("`inject_hyperparams` makes `{name}` a value that may change every step"))
                .with_help(format!("list it in `static_args` to keep it fixed: `inject_hyperparams(f, static_args=[\"{name}\"])`")),
        );
        Value::Error
    }

    pub(super) fn enter_call(&mut self, span: Span) -> bool {
        if self.calls.len() >= limits::CALLS.max {
            let span = self.user_span(span);
            self.err(limits::CALLS.exceeded(span));
            return false;
        }
        if !self.spend(super::budget::CALL_COST, span) {
            return false;
        }
        self.calls.push(span);
        true
    }
}

/// The diagnostic for an index past the end of a list of `n` items.
pub(super) fn out_of_range(i: i64, n: i64, span: Span) -> Diagnostic {
    Diagnostic::error("bad-index", format!("index {i} is out of range for {n} items")).with_primary(span, "no such item")
}

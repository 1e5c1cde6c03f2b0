//! Types and levels of expressions, and of calls: built-ins, definitions (each `def` is checked
//! again with the levels of its arguments, as it will be inlined), schedules, nested transforms
//! and function values.

use std::collections::HashMap;

use super::bind::Slot;
use super::body::{Checker, Ctx, VarKind, narrowing, type_mismatch};
use super::builtins;
use super::mask::is_mask_type;
use super::program::{DefId, DefKind, LeafProp};
use super::types::{Level, Ty, Typed};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, BinaryOp, ExprKind, UnaryOp};

impl Checker<'_, '_> {
    pub fn expr(&mut self, e: &ast::Expr) -> Typed {
        match &e.kind {
            ExprKind::Int(_) => Typed::konst(Ty::Int),
            ExprKind::Float(_) => Typed::konst(Ty::Float),
            ExprKind::Str(_) => Typed::konst(Ty::Str),
            ExprKind::Bool(_) => Typed::konst(Ty::Bool),
            ExprKind::None => Typed::konst(Ty::None),
            ExprKind::Error => Typed::error(),
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(items) => {
                let types: Vec<Typed> = items.iter().map(|i| self.expr(i)).collect();
                self.list_of(&types, e.span)
            }
            ExprKind::ListComp { elem, pattern, iter } => {
                let it = self.expr(iter);
                let item = match &it.ty {
                    _ if it.level > Level::Const => {
                        self.err(
                            Diagnostic::error("level-mismatch", "a list comprehension runs at compile time")
                                .with_primary(iter.span, format!("this is {}", it.level.describe())),
                        );
                        Typed::error()
                    }
                    Ty::List(t) => Typed::konst((**t).clone()),
                    Ty::Any => Typed::konst(Ty::Any),
                    Ty::Map(k, v) => Typed::konst(Ty::Tuple(vec![(**k).clone(), (**v).clone()])),
                    Ty::Error => Typed::error(),
                    other => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("cannot loop over {other}"))
                                .with_primary(iter.span, "expected a list, a map or `range(n)`"),
                        );
                        Typed::error()
                    }
                };
                self.scopes.push(HashMap::new());
                self.bind_comprehension(pattern, item);
                let t = self.expr(elem);
                self.scopes.pop();
                self.list_of(&[t], e.span)
            }
            ExprKind::Tuple(items) => {
                let types: Vec<Typed> = items.iter().map(|i| self.expr(i)).collect();
                let level = types.iter().map(|t| t.level).max().unwrap_or(Level::Const);
                Typed::new(Ty::Tuple(types.into_iter().map(|t| t.ty).collect()), level)
            }
            ExprKind::Map(entries) => {
                let mut key = Ty::Unknown;
                let mut value = Ty::Unknown;
                for (k, v) in entries {
                    let kt = self.expr(k);
                    let vt = self.expr(v);
                    if kt.level > Level::Const || vt.level > Level::Const {
                        self.err(
                            Diagnostic::error("level-mismatch", "maps hold compile-time values")
                                .with_primary(k.span.to(v.span), "not known at compile time"),
                        );
                    }
                    key = key.join(&kt.ty).unwrap_or(Ty::Error);
                    value = value.join(&vt.ty).unwrap_or(Ty::Error);
                }
                Typed::konst(Ty::Map(Box::new(key), Box::new(value)))
            }
            ExprKind::Unary { op, operand } => {
                let t = self.expr(operand);
                if t.is_error() {
                    return t;
                }
                if *op == UnaryOp::Not && is_mask_type(&t.ty) && t.ty != Ty::Bool {
                    return Typed::konst(Ty::Mask);
                }
                let ok = match op {
                    UnaryOp::Not => t.ty == Ty::Bool,
                    UnaryOp::Neg | UnaryOp::Pos => t.ty.is_numeric(),
                };
                if !ok {
                    let (sym, want) = if *op == UnaryOp::Not { ("not", "a bool") } else { ("-", "a number") };
                    self.err(
                        Diagnostic::error("type-mismatch", format!("`{sym}` takes {want}, found {t}"))
                            .with_primary(operand.span, format!("this is {t}")),
                    );
                    return Typed::error();
                }
                t
            }
            ExprKind::Binary { op, op_span, lhs, rhs } => {
                let l = self.expr(lhs);
                let r = self.expr(rhs);
                let t = self.binary_types(*op, &l, &r, *op_span);
                if t.is_error() && !l.is_error() && !r.is_error()
                    && let Some(d) = self.errors.last_mut() {
                        d.secondary.push(crate::diagnostic::Label { span: lhs.span, message: format!("this is {l}") });
                        d.secondary.push(crate::diagnostic::Label { span: rhs.span, message: format!("this is {r}") });
                    }
                t
            }
            ExprKind::Call { callee, args, args_span } => self.call(callee, args, *args_span, e.span),
            ExprKind::Index { base, index } => self.index(base, index),
            ExprKind::Slice { base, start, end } => {
                let b = self.expr(base);
                for bound in start.iter().chain(end.iter()) {
                    let t = self.expr(bound);
                    if !t.is_error() && (t.ty != Ty::Int || t.level > Level::Const) {
                        self.err(type_mismatch(bound.span, "a slice bound", &Ty::Int, &t));
                    }
                }
                match &b.ty {
                    Ty::List(_) | Ty::Str | Ty::Error => b,
                    other => {
                        self.err(
                            Diagnostic::error("type-mismatch", format!("cannot slice {other}"))
                                .with_primary(base.span, "expected a list or a string"),
                        );
                        Typed::error()
                    }
                }
            }
            ExprKind::If { cond, then, otherwise } => self.if_expr(cond, then, otherwise.as_ref(), e.span),
            ExprKind::Partition(arms) => {
                for arm in arms {
                    for p in &arm.patterns {
                        if let ast::ArmPattern::Mask(mask) = p {
                            let t = self.expr(mask);
                            if !t.is_error() && !Ty::Mask.accepts(&t.ty) {
                                self.err(type_mismatch(mask.span, "a partition arm's mask", &Ty::Mask, &t));
                            }
                        }
                    }
                    let t = self.expr(&arm.value);
                    if !t.is_error() && t.ty != Ty::Transform {
                        self.err(type_mismatch(arm.value.span, "a partition arm", &Ty::Transform, &t));
                    }
                }
                Typed::konst(Ty::Transform)
            }
        }
    }

    fn bind_comprehension(&mut self, pattern: &ast::Pattern, item: Typed) {
        // A comprehension's names are locals of its own scope (pushed by the caller).
        match pattern {
            ast::Pattern::Name(id) => self.declare(&id.name, item, VarKind::Local),
            ast::Pattern::Tuple(parts, _) => {
                let items: Vec<Typed> = match &item.ty {
                    Ty::Tuple(ts) if ts.len() == parts.len() => ts.iter().map(|t| Typed::konst(t.clone())).collect(),
                    _ => vec![Typed::error(); parts.len()],
                };
                for (p, t) in parts.iter().zip(items) {
                    self.bind_comprehension(p, t);
                }
            }
        }
    }

    fn list_of(&mut self, items: &[Typed], span: Span) -> Typed {
        let mut ty = Ty::Unknown;
        let mut level = Level::Const;
        for t in items {
            level = level.max(t.level);
            match ty.join(&t.ty) {
                Some(j) => ty = j,
                None => {
                    self.err(
                        Diagnostic::error("type-mismatch", format!("a list holds one type, found {ty} and {}", t.ty))
                            .with_primary(span, "mixed types")
                            .with_help("use a tuple `(a, b)` to group values of different types"),
                    );
                    return Typed::error();
                }
            }
        }
        if level > Level::Uniform {
            self.err(
                Diagnostic::error("level-mismatch", "lists hold compile-time or uniform values")
                    .with_primary(span, format!("this list holds {} values", level.describe()))
                    .with_help("use a `tensor` value directly, or keep them in a `list[tensor]` state, entry by entry (`s[i] = g`)"),
            );
            return Typed::error();
        }
        Typed::new(Ty::List(Box::new(ty)), level)
    }

    /// The type of `l op r`; reports and returns `{error}` if the operands do not fit.
    pub(super) fn binary_types(&mut self, op: BinaryOp, l: &Typed, r: &Typed, span: Span) -> Typed {
        if l.is_error() || r.is_error() {
            return Typed::error();
        }
        let level = l.level.max(r.level);
        let both_int = l.ty == Ty::Int && r.ty == Ty::Int;
        let numeric = l.ty.is_numeric() && r.ty.is_numeric();
        let result = match op {
            // A hyperparameter of several forms is checked where the body runs ahead.
            _ if l.ty == Ty::Any || r.ty == Ty::Any => {
                Some(if op.is_comparison() || matches!(op, BinaryOp::Eq | BinaryOp::Ne) { Ty::Bool } else { Ty::Any })
            }
            // `ndim > 1`: a mask.
            _ if op.is_comparison() && matches!((&l.ty, &r.ty), (Ty::LeafInt, Ty::Int | Ty::Float) | (Ty::Int | Ty::Float, Ty::LeafInt)) => {
                Some(Ty::Mask)
            }
            // `"*.w" or "*.k"`, `ndim > 1 and not "*.emb"`: masks.
            BinaryOp::And | BinaryOp::Or if is_mask_type(&l.ty) && is_mask_type(&r.ty) && !(l.ty == Ty::Bool && r.ty == Ty::Bool) => {
                Some(Ty::Mask)
            }
            BinaryOp::Add if matches!((&l.ty, &r.ty), (Ty::List(_), Ty::List(_))) => l.ty.join(&r.ty),
            BinaryOp::Add if l.ty == Ty::Str && r.ty == Ty::Str => Some(Ty::Str),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Rem | BinaryOp::Pow if numeric => {
                Some(if both_int { Ty::Int } else { Ty::Float })
            }
            BinaryOp::Div if numeric => Some(Ty::Float),
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge if numeric => Some(Ty::Bool),
            BinaryOp::Eq | BinaryOp::Ne => {
                let comparable = numeric
                    || l.ty.join(&r.ty).is_some_and(|j| {
                        matches!(j, Ty::Str | Ty::Enum(_) | Ty::Bool | Ty::None | Ty::Optional(_) | Ty::Int | Ty::Float)
                    });
                comparable.then_some(Ty::Bool)
            }
            BinaryOp::And | BinaryOp::Or if l.ty == Ty::Bool && r.ty == Ty::Bool => Some(Ty::Bool),
            _ => None,
        };
        match result {
            Some(ty) => Typed::new(ty, level),
            None => {
                let hint = match op {
                    BinaryOp::And | BinaryOp::Or => "`and` and `or` take bools, or masks",
                    BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => "only numbers are ordered",
                    _ => "arithmetic takes numbers",
                };
                self.err(
                    Diagnostic::error("type-mismatch", format!("cannot apply `{}` to {l} and {r}", op.symbol()))
                        .with_primary(span, hint),
                );
                Typed::error()
            }
        }
    }

    fn index(&mut self, base: &ast::Expr, index: &ast::Expr) -> Typed {
        let b = self.expr(base);
        let i = self.expr(index);
        if b.is_error() || i.is_error() {
            return Typed::error();
        }
        let literal = literal_int(index);
        match &b.ty {
            Ty::Any => Typed::new(Ty::Any, b.level.max(i.level)),
            Ty::List(item) => {
                if !matches!(i.ty, Ty::Int | Ty::Any) || i.level > Level::Const {
                    self.err(type_mismatch(index.span, "a list index", &Ty::Int, &i).with_note("lists are indexed by compile-time ints"));
                    return Typed::error();
                }
                Typed::new((**item).clone(), b.level)
            }
            Ty::Map(key, value) => {
                if !key.accepts(&i.ty) {
                    self.err(type_mismatch(index.span, "a map key", key, &i));
                    return Typed::error();
                }
                Typed::new((**value).clone(), b.level)
            }
            Ty::Str => Typed::konst(Ty::Str),
            Ty::Tuple(items) => {
                let n = items.len() as i64;
                if let Some(k) = literal {
                    let k = if k < 0 { k + n } else { k };
                    if let Some(t) = usize::try_from(k).ok().and_then(|k| items.get(k)) {
                        return Typed::new(t.clone(), b.level);
                    }
                    self.err(
                        Diagnostic::error("bad-index", format!("index out of range for a tuple of {n}"))
                            .with_primary(index.span, "no such element"),
                    );
                    return Typed::error();
                }
                match items.iter().try_fold(Ty::Unknown, |acc, t| acc.join(t)) {
                    Some(t) => Typed::new(t, b.level.max(i.level)),
                    None => {
                        self.err(
                            Diagnostic::error("bad-index", "a tuple of mixed types is indexed by a literal")
                                .with_primary(index.span, "write the position: `t[0]`"),
                        );
                        Typed::error()
                    }
                }
            }
            other => {
                self.err(Diagnostic::error("bad-index", format!("cannot index {other}")).with_primary(base.span, "not indexable"));
                Typed::error()
            }
        }
    }

    fn if_expr(&mut self, cond: &ast::Expr, then: &ast::Block, otherwise: Option<&ast::Block>, span: Span) -> Typed {
        let c = self.condition(cond);
        let narrowed = self.narrowed(narrowing(cond));
        let a = self.branch(then, narrowed.as_ref().filter(|n| !n.none_in_then));
        let b = otherwise.and_then(|o| self.branch(o, narrowed.as_ref().filter(|n| n.none_in_then)));
        let (Some(a), Some(b)) = (a, b) else {
            self.err(
                Diagnostic::error("if-without-value", "an `if` used as a value needs a value in both branches")
                    .with_primary(span, "one branch has no value")
                    .with_help("end both blocks with an expression, and add `else { ... }`"),
            );
            return Typed::error();
        };
        if a.is_error() || b.is_error() {
            return Typed::error();
        }
        let Some(ty) = a.ty.join(&b.ty) else {
            self.err(
                Diagnostic::error("type-mismatch", format!("the branches of this `if` differ: {a} and {b}"))
                    .with_primary(span, "branches of different types"),
            );
            return Typed::error();
        };
        Typed::new(ty, a.level.max(b.level).max(c.level))
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg], args_span: Span, span: Span) -> Typed {
        if let ExprKind::Name(name) = &callee.kind
            && self.lookup(name).is_none()
        {
            if builtins::is_builtin(name) {
                return self.builtin_call(name, args, span);
            }
            if let Some(&id) = self.globals.by_name.get(name) {
                return self.def_call(id, args, args_span, span);
            }
        }
        let f = self.expr(callee);
        let report = !f.is_error();
        let positional = |this: &mut Self| -> Vec<(Typed, Span)> {
            let mut out = Vec::new();
            for a in args {
                match a {
                    ast::Arg::Positional(e) => out.push((this.expr(e), e.span)),
                    ast::Arg::Keyword { value: e, .. } | ast::Arg::Splat(e) => {
                        this.expr(e);
                        if !report {
                            continue;
                        }
                        this.err(
                            Diagnostic::error("unknown-keyword", "this call takes positional arguments only")
                                .with_primary(e.span, "passed by keyword"),
                        );
                    }
                }
            }
            out
        };
        match &f.ty {
            Ty::Error => {
                positional(self);
                Typed::error()
            }
            Ty::Schedule | Ty::IntSchedule => {
                let given = positional(self);
                match given.as_slice() {
                    [(t, s)] if !t.is_error() && t.ty != Ty::Int => {
                        self.err(type_mismatch(*s, "a schedule", &Ty::Int, t).with_note("a schedule is called with a step count"));
                        Typed::error()
                    }
                    [(t, _)] => Typed::new(Ty::Float, t.level.max(Level::Uniform)),
                    _ => {
                        self.err(
                            Diagnostic::error("wrong-arity", "a schedule is called with one step count")
                                .with_primary(args_span, format!("found {} arguments", args.len()))
                                .with_help("call it as `schedule(count)`"),
                        );
                        Typed::error()
                    }
                }
            }
            Ty::Transform => self.apply_transform(callee, args, args_span, span),
            Ty::Fn(Some(sig)) => {
                let sig = sig.clone();
                let given = positional(self);
                if given.len() != sig.params.len() {
                    self.err(
                        Diagnostic::error("wrong-arity", format!("this function takes {} arguments, found {}", sig.params.len(), given.len()))
                            .with_primary(args_span, "wrong number of arguments"),
                    );
                    return Typed::error();
                }
                let mut level = Level::Const;
                for ((t, s), want) in given.iter().zip(&sig.params) {
                    if !want.accepts(&t.ty) {
                        self.err(type_mismatch(*s, "this argument", want, t));
                    }
                    level = level.max(t.level);
                }
                let level = if level > Level::Const { sig.ret_level } else { Level::Const };
                Typed::new(sig.ret.clone(), level)
            }
            Ty::Fn(None) => {
                positional(self);
                Typed::error()
            }
            other => {
                self.err(
                    Diagnostic::error("not-callable", format!("{other} cannot be called"))
                        .with_primary(callee.span, format!("this is {f}")),
                );
                Typed::error()
            }
        }
    }

    fn builtin_call(&mut self, name: &str, args: &[ast::Arg], span: Span) -> Typed {
        let mut types = Vec::new();
        for a in args {
            match a {
                ast::Arg::Positional(e) => types.push(self.expr(e)),
                ast::Arg::Keyword { name: k, value } if k.name == "axis" && builtins::AXIS_REDUCTIONS.contains(&name) => {
                    let axis = self.expr(value);
                    return self.axis_reduction(name, &types, &axis, value.span, span);
                }
                ast::Arg::Keyword { name: k, value } => {
                    // Typed as if positional, so the arity is not reported as well.
                    types.push(self.expr(value));
                    self.err(
                        Diagnostic::error("unknown-keyword", format!("the built-in `{name}` takes no keyword arguments"))
                            .with_primary(k.span, "keyword argument")
                            .with_help("pass the arguments by position"),
                    );
                }
                ast::Arg::Splat(e) => {
                    self.expr(e);
                }
            }
        }
        if builtins::is_matrix(name) {
            self.reads_shape();
        }
        if name == "selects" {
            self.reads_masks();
        }
        match builtins::check(name, &types) {
            Ok(t) => t,
            Err(message) => {
                let code = if message.contains("argument(s)") {
                    "wrong-arity"
                } else if message.contains(" is per-") || message.contains(" is uniform") || message.contains(" is compile-time") || message.contains("compile-time argument") {
                    "level-mismatch"
                } else {
                    "type-mismatch"
                };
                let mut d = Diagnostic::error(code, message).with_primary(span, "in this call");
                if let Some(doc) = builtins::doc(name) {
                    d = d.with_note(format!("`{name}`: {doc}"));
                }
                self.err(d);
                Typed::error()
            }
        }
    }

    /// `sum(x, axis=a)` and friends: `x` reduced over axes of each leaf, keeping them (numpy's
    /// `keepdims=True`), so the result combines with the leaf's own values.
    fn axis_reduction(&mut self, name: &str, args: &[Typed], axis: &Typed, axis_span: Span, span: Span) -> Typed {
        self.reads_shape();
        if args.iter().any(Typed::is_error) || axis.is_error() {
            return Typed::error();
        }
        if !axis.ty.is_ints() || axis.level > Level::Const {
            self.err(
                Diagnostic::error("type-mismatch", format!("`axis` is an int or a list of ints known at compile time, found {axis}"))
                    .with_primary(axis_span, "the axes to reduce")
                    .with_help("count axes from 0, or from -1 for the last; a leaf's `ndim` and `shape` are known at compile time"),
            );
            return Typed::error();
        }
        match args {
            [x] if x.ty.is_numeric() && x.level == Level::Element => Typed::new(Ty::Float, Level::Element),
            [x] if x.ty.is_numeric() => {
                self.err(
                    Diagnostic::error("level-mismatch", format!("`{name}(x, axis=...)` reduces a per-element value, but this argument is {}", x.level.describe()))
                        .with_primary(span, "in this call"),
                );
                Typed::error()
            }
            [x] => {
                self.err(Diagnostic::error("type-mismatch", format!("`{name}` reduces numbers, found {x}")).with_primary(span, "in this call"));
                Typed::error()
            }
            _ => {
                self.err(
                    Diagnostic::error("wrong-arity", format!("`{name}(x, axis=...)` takes one tensor and the axes"))
                        .with_primary(span, "in this call"),
                );
                Typed::error()
            }
        }
    }

    /// Notes that the body depends on each leaf's shape (axes and matrices do): it is
    /// instantiated once per shape, so its axes are counted on leaves of one shape.
    fn reads_shape(&mut self) {
        if !self.reads_leaf.contains(&LeafProp::Shape) {
            self.reads_leaf.push(LeafProp::Shape);
        }
    }

    /// Notes that the body asks which leaves a mask selects (`selects(m)`): it is instantiated
    /// per group of leaves that the masks of its hyperparameters treat alike.
    fn reads_masks(&mut self) {
        if !self.reads_leaf.contains(&LeafProp::Selected) {
            self.reads_leaf.push(LeafProp::Selected);
        }
    }

    /// `inner(g)` inside `update`: applies a transform parameter.
    fn apply_transform(&mut self, callee: &ast::Expr, args: &[ast::Arg], args_span: Span, span: Span) -> Typed {
        let name = match &callee.kind {
            ExprKind::Name(n) if matches!(self.lookup(n), Some(v) if matches!(v.kind, VarKind::Param)) => n.clone(),
            _ => {
                self.err(
                    Diagnostic::error("bad-application", "only a transform parameter can be applied inside `update`")
                        .with_primary(callee.span, "not a parameter of this transform")
                        .with_help("take the transform as a parameter (`inner: transform`) and apply that"),
                );
                return Typed::error();
            }
        };
        if self.ctx != Ctx::Update {
            self.err(
                Diagnostic::error("bad-application", "a transform is applied only inside `update`")
                    .with_primary(span, "applied here"),
            );
            return Typed::error();
        }
        let input = match args {
            [ast::Arg::Positional(e)] => {
                let t = self.expr(e);
                if !t.is_error() && t.ty != Ty::Float && t.ty != Ty::Int {
                    self.err(type_mismatch(e.span, "a transform", &Ty::Float, &t).with_note("a transform is applied to an update tree"));
                }
                t
            }
            _ => {
                self.err(
                    Diagnostic::error("wrong-arity", "a transform is applied to one update tree")
                        .with_primary(args_span, "expected one argument")
                        .with_help(format!("write `{name}(g)`")),
                );
                Typed::error()
            }
        };
        let _ = input;
        if self.in_loop {
            self.err(
                Diagnostic::error("transform-applied-twice", format!("`{name}` is applied inside a loop"))
                    .with_primary(span, "applied once per iteration")
                    .with_note("a nested transform keeps one state, so it is applied at most once per step"),
            );
        } else if let Some(first) = self.applied.get(&name).copied() {
            self.err(
                Diagnostic::error("transform-applied-twice", format!("`{name}` is applied twice"))
                    .with_primary(span, "applied again here")
                    .with_secondary(first, "first applied here")
                    .with_note("a nested transform keeps one state, so it is applied at most once per step")
                    .with_help("apply it once and reuse the result with `let`"),
            );
        } else {
            self.applied.insert(name, span);
        }
        Typed::new(Ty::Float, Level::Element)
    }

    fn def_call(&mut self, id: DefId, args: &[ast::Arg], args_span: Span, span: Span) -> Typed {
        let slots = self.bind_args(id, args, args_span);
        let def = &self.globals.defs[id];
        match def.kind {
            DefKind::Transform | DefKind::Schedule | DefKind::Builtin => {
                let runtime = slots.iter().find_map(|slot| match slot {
                    Slot::Given(t, s) if t.level > Level::Const => Some((t.clone(), *s)),
                    Slot::Variadic(items) => items.iter().find(|(t, _)| t.level > Level::Const).cloned(),
                    _ => None,
                });
                if let Some((t, s)) = runtime {
                    let what = def.kind.describe();
                    self.err(
                        Diagnostic::error("level-mismatch", format!("the arguments of a {what} are fixed at compile time"))
                            .with_primary(s, format!("this is {}", t.level.describe()))
                            .with_help(format!("build the {what} from hyperparameters and constants only")),
                    );
                }
                let ty = match (def.kind, def.name.as_str()) {
                    (DefKind::Schedule, _) => Ty::Schedule,
                    (DefKind::Builtin, "inject_hyperparams") => Ty::Fn(None),
                    _ => Ty::Transform,
                };
                Typed::konst(ty)
            }
            DefKind::Def => self.def_instance(id, &slots, span),
        }
    }
}

/// The value of an int literal, possibly negated.
fn literal_int(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(n) => Some(*n),
        ExprKind::Unary { op: UnaryOp::Neg, operand } => literal_int(operand).map(|n| -n),
        _ => None,
    }
}

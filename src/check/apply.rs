//! Compile-time calls and operators: binding a call's values to a definition's parameters,
//! checking each value against its declared type and range, then building the transform,
//! schedule or value the call stands for. Also `inject_hyperparams` and Python's operators.

use std::sync::Arc;

use super::bind::{self, CallArgs, Slot};
use super::builtins;
use super::consts;
use super::eval::{Evaluator, describe_value, values_equal};
use super::program::{DefAst, DefId, DefKind, Func, Hyper, Mask, ParamSig, Schedule, Tx, Value, format_number};
use super::suggest;
use super::types::Ty;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, BinaryOp, ExprKind};

/// A call's arguments, evaluated.
pub(super) struct Args {
    positional: Vec<(Value, Span)>,
    keywords: Vec<(ast::Ident, Value, Span)>,
    /// A `**` argument failed to expand: its keywords are unknown, so none is reported missing.
    opaque: bool,
    span: Span,
}

impl Evaluator<'_, '_> {
    pub(super) fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg], args_span: Span, span: Span) -> Value {
        let evaluated = self.eval_args(args, args_span);
        if let ExprKind::Name(name) = &callee.kind
            && builtins::is_builtin(name)
            && self.globals.by_name.get(name).is_none()
        {
            return self.builtin(name, evaluated, span);
        }
        let f = self.expr(callee);
        match f {
            Value::Func(func) => self.apply_func(&func, evaluated, span),
            Value::Error => Value::Error,
            Value::Schedule(_) => {
                self.err(
                    Diagnostic::error("not-constant", "a schedule is evaluated at every step, not at compile time")
                        .with_primary(span, "called at compile time")
                        .with_help("pass the schedule to a transform, e.g. `adam(learning_rate=schedule)`"),
                );
                Value::Error
            }
            other => {
                self.err(
                    Diagnostic::error("not-callable", format!("{} cannot be called", describe_value(&other)))
                        .with_primary(callee.span, format!("this is {}", describe_value(&other))),
                );
                Value::Error
            }
        }
    }

    fn eval_args(&mut self, args: &[ast::Arg], span: Span) -> Args {
        let mut out = Args { positional: Vec::new(), keywords: Vec::new(), opaque: false, span };
        for a in args {
            match a {
                ast::Arg::Positional(e) => {
                    let v = self.expr(e);
                    out.positional.push((v, e.span));
                }
                ast::Arg::Keyword { name, value } => {
                    let v = self.expr(value);
                    out.keywords.push((name.clone(), v, name.span.to(value.span)));
                }
                ast::Arg::Splat(e) => match self.expr(e) {
                    Value::Map(entries) => {
                        for (k, v) in entries {
                            match k {
                                Value::Str(name) => out.keywords.push((ast::Ident { name, span: e.span }, v, e.span)),
                                other => self.err(
                                    Diagnostic::error("type-mismatch", format!("`**` needs string keys, found {other}"))
                                        .with_primary(e.span, "keys must be parameter names"),
                                ),
                            }
                        }
                    }
                    Value::Error => out.opaque = true,
                    other => {
                        out.opaque = true;
                        self.err(
                            Diagnostic::error("type-mismatch", format!("`**` expands a map, found {}", describe_value(&other)))
                                .with_primary(e.span, "expected a map"),
                        );
                    }
                },
            }
        }
        out
    }

    fn builtin(&mut self, name: &str, args: Args, span: Span) -> Value {
        if let Some((k, _, _)) = args.keywords.first() {
            self.err(
                Diagnostic::error("unknown-keyword", format!("the built-in `{name}` takes no keyword arguments"))
                    .with_primary(k.span, "keyword argument"),
            );
            return Value::Error;
        }
        let values: Vec<Value> = args.positional.iter().map(|(v, _)| v.clone()).collect();
        if values.contains(&Value::Error) {
            return Value::Error;
        }
        if let Some(v) = values.iter().find(|v| matches!(v, Value::Injected { .. })) {
            return self.not_constant(&v.clone(), span);
        }
        match builtins::eval(name, &values) {
            Some(Ok(v)) => v,
            Some(Err(msg)) => {
                self.err(Diagnostic::error("bad-value", msg).with_primary(span, "in this call"));
                Value::Error
            }
            None => {
                let reduction =
                    matches!(name, "sum" | "norm" | "mean" | "numel" | "all" | "any" | "dot") || name.starts_with("leaf_");
                let what = if reduction {
                    "a reduction over the parameters, available only in a transform's `update`"
                } else {
                    "not applicable to these values"
                };
                self.err(
                    Diagnostic::error("not-constant", format!("`{name}` cannot be evaluated here"))
                        .with_primary(span, what),
                );
                Value::Error
            }
        }
    }

    fn apply_func(&mut self, func: &Func, args: Args, span: Span) -> Value {
        match func {
            Func::Def(id) => self.apply_def(*id, args, span),
            Func::Injected { factory, static_args } => self.apply_injected(factory, static_args, args, span),
        }
    }

    /// Binds values to parameters; each slot's value after checks (defaults filled in).
    /// Binds a call's arguments to the parameters of `id`. Under `inject_hyperparams`
    /// (`injected`), a numeric hyperparameter also takes a schedule, as Optax allows.
    fn bind_values(&mut self, id: DefId, args: Args, injected: bool) -> Vec<Value> {
        let def = &self.globals.defs[id];
        let call =
            CallArgs { positional: args.positional, keywords: args.keywords, opaque_splat: args.opaque, span: args.span };
        let mut errors = Vec::new();
        let slots = bind::bind(def, call, &mut errors);
        for e in errors {
            self.err(e);
        }
        let params: Vec<ParamSig> = self.globals.defs[id].params.clone();
        let def_name = self.globals.defs[id].name.clone();
        slots
            .into_iter()
            .zip(&params)
            .map(|(slot, p)| match slot {
                Slot::Given(v @ Value::Schedule(_), _) if injected && is_number_type(&p.ty.ty) => v,
                Slot::Given(v, s) => self.check_value(&def_name, p, v, s),
                Slot::Variadic(items) => {
                    Value::List(items.into_iter().map(|(v, s)| self.check_value(&def_name, p, v, s)).collect())
                }
                Slot::Default if p.variadic => Value::List(Vec::new()),
                Slot::Default => match &p.default {
                    Some(d) => {
                        let v = self.expr(d);
                        self.coerce(p, v)
                    }
                    None => Value::Error,
                },
            })
            .collect()
    }

    /// Checks one argument against its parameter: type, widening, options and range.
    fn check_value(&mut self, def: &str, p: &ParamSig, v: Value, span: Span) -> Value {
        if v == Value::Error {
            return v;
        }
        let found = v.ty();
        if !p.ty.ty.accepts(&found) || matches!((&p.ty.ty, &v), (Ty::Transform, Value::Func(_))) {
            let what = format!("`{}` of `{def}`", p.name);
            let mut d = Diagnostic::error(
                "type-mismatch",
                format!("{what} expects {}, found {}", p.ty.ty, describe_value(&v)),
            )
            .with_primary(span, format!("expected {}", p.ty.ty))
            .with_secondary(p.span, format!("`{}` is declared here", p.name));
            match (&p.ty.ty, &v) {
                (Ty::Int, Value::Float(x)) if x.fract() == 0.0 => {
                    d = d.with_help(format!("write it as an int: `{}={}`", p.name, *x as i64));
                }
                (Ty::Transform, Value::Func(f)) => {
                    if let Func::Def(id) = **f {
                        d = d.with_help(format!("call it: `{}(...)`", self.globals.defs[id].name));
                    }
                }
                (Ty::Float | Ty::Int | Ty::Schedule, Value::Str(s)) if s.parse::<f64>().is_ok() => {
                    d = d.with_help(format!("remove the quotes: `{}={s}`", p.name));
                }
                _ => {}
            }
            self.err(d);
            return Value::Error;
        }
        if let (Some(options), Value::Str(s)) = (enum_options(&p.ty.ty), &v)
            && !options.contains(s)
        {
            let list: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            let mut d = Diagnostic::error("unknown-option", format!("`{}` of `{def}` cannot be \"{s}\"", p.name))
                .with_primary(span, format!("expected one of {}", list.join(", ")))
                .with_secondary(p.span, format!("`{}` is declared here", p.name));
            if let Some(fix) = suggest::closest(s, options.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean \"{fix}\"?"));
            }
            self.err(d);
            return Value::Error;
        }
        if let Some(range) = &p.range
            && let Some(x) = v.as_f64()
            && !range.contains(x)
        {
            let shown = if matches!(v, Value::Int(_)) { format!("{}", x as i64) } else { format_number(x) };
            self.err(
                Diagnostic::error("out-of-range", format!("`{}` of `{def}` must be in {range}, found {shown}", p.name))
                    .with_primary(span, format!("{shown} is out of range"))
                    .with_secondary(range.span, format!("`{}` is declared `in {range}` here", p.name))
                    .with_note(format!("expected {} in {range}, found {shown}", p.ty.ty)),
            );
            return Value::Error;
        }
        if let (Ty::Mask | Ty::Optional(_), Value::Str(g)) = (&p.ty.ty, &v)
            && p.ty.ty.accepts(&Ty::Mask)
            && let Err(msg) = crate::glob::validate(g)
        {
            self.err(Diagnostic::error("bad-glob", format!("invalid glob `{g}`: {msg}")).with_primary(span, msg));
            return Value::Error;
        }
        self.coerce(p, v)
    }

    /// Widening that changes the value's form: a number passed as a schedule.
    fn coerce(&self, p: &ParamSig, v: Value) -> Value {
        let wants_schedule = matches!(&p.ty.ty, Ty::Schedule)
            || matches!(&p.ty.ty, Ty::Optional(t) if **t == Ty::Schedule);
        match v {
            Value::Int(_) | Value::Float(_) | Value::Injected { .. } if wants_schedule => {
                Value::Schedule(Arc::new(Schedule::Constant(v)))
            }
            v => v,
        }
    }

    fn apply_def(&mut self, id: DefId, args: Args, span: Span) -> Value {
        if !self.enter_call(span) {
            return Value::Error;
        }
        let given: Vec<String> = args.keywords.iter().map(|(k, _, _)| k.name.clone()).collect();
        let n_positional = args.positional.len();
        let values = self.bind_values(id, args, false);
        let shown: Vec<(String, Value)> = self.globals.defs[id]
            .params
            .iter()
            .zip(&values)
            .enumerate()
            .filter(|(i, (p, _))| *i < n_positional || given.contains(&p.name))
            .map(|(_, (p, v))| (p.name.clone(), v.clone()))
            .collect();
        let result = self.instantiate(id, values, span);
        self.calls.pop();
        match result {
            // Remember which alias built the transform, for summaries and state names.
            Value::Transform(inner) if self.globals.defs[id].kind == DefKind::Def => {
                Value::Transform(Arc::new(Tx::Alias { def: id, args: shown, inner }))
            }
            other => other,
        }
    }

    fn instantiate(&mut self, id: DefId, values: Vec<Value>, span: Span) -> Value {
        let def = &self.globals.defs[id];
        match def.kind {
            DefKind::Builtin => self.combinator(id, values, span),
            DefKind::Transform => {
                self.compile_time_asserts(id, &values);
                Value::Transform(Arc::new(Tx::Instance { def: id, args: values, span }))
            }
            DefKind::Schedule => {
                self.compile_time_asserts(id, &values);
                Value::Schedule(Arc::new(Schedule::Instance { def: id, args: values, span }))
            }
            DefKind::Def => {
                let Some(DefAst::Def(ast)) = def.ast.clone() else { return Value::Error };
                let Some(body) = &ast.body else { return Value::Error };
                let saved = std::mem::replace(&mut self.scopes, vec![Default::default()]);
                for (p, v) in self.globals.defs[id].params.clone().iter().zip(values) {
                    self.bind(&p.name, v);
                }
                let result = self.block(body).unwrap_or(Value::Error);
                self.scopes = saved;
                result
            }
        }
    }

    /// Runs the `assert`s at the top of a transform's `update` (or a schedule's body) whose
    /// conditions are compile-time, with the hyperparameters bound.
    fn compile_time_asserts(&mut self, id: DefId, values: &[Value]) {
        let def = &self.globals.defs[id];
        let stmts: Vec<ast::Stmt> = match &def.ast {
            Some(DefAst::Transform(t)) => t.update.as_ref().map(|u| u.body.stmts.clone()).unwrap_or_default(),
            Some(DefAst::Def(d)) => d.body.as_ref().map(|b| b.stmts.clone()).unwrap_or_default(),
            None => Vec::new(),
        };
        if !stmts.iter().any(|s| matches!(s, ast::Stmt::Assert { .. })) {
            return;
        }
        let saved = std::mem::replace(&mut self.scopes, vec![Default::default()]);
        for (p, v) in def.params.clone().iter().zip(values) {
            self.bind(&p.name, v.clone());
        }
        for stmt in &stmts {
            if let ast::Stmt::Assert { cond, message, span } = stmt {
                // Skip asserts that read runtime values (the checker allows only compile-time ones).
                let before = self.errors.len();
                self.assert(cond, message.as_deref(), *span);
                if self.errors[before..].iter().any(|d| d.code != "failed-assert") {
                    self.errors.truncate(before);
                }
            }
        }
        self.scopes = saved;
    }

    /// `chain`, `named_chain`, `masked`, `flatten`, `inject_hyperparams`.
    fn combinator(&mut self, id: DefId, values: Vec<Value>, span: Span) -> Value {
        if values.contains(&Value::Error) {
            return Value::Error;
        }
        let name = self.globals.defs[id].name.clone();
        let tx = |v: &Value| match v {
            Value::Transform(t) => Some(t.clone()),
            _ => None,
        };
        let result = match (name.as_str(), values.as_slice()) {
            ("chain", [Value::List(items)]) => Tx::Chain(items.iter().filter_map(tx).collect()),
            ("named_chain", [Value::List(items)]) => {
                let mut parts = Vec::new();
                for item in items {
                    if let Value::Tuple(pair) = item
                        && let [Value::Str(n), Value::Transform(t)] = pair.as_slice()
                    {
                        parts.push((n.clone(), t.clone()));
                    }
                }
                Tx::NamedChain(parts)
            }
            ("masked", [Value::Transform(inner), mask]) => Tx::Masked { inner: inner.clone(), mask: to_mask(mask) },
            ("flatten", [Value::Transform(inner)]) => Tx::Flatten(inner.clone()),
            ("inject_hyperparams", [Value::Func(factory), Value::List(statics)]) => {
                let static_args: Vec<String> =
                    statics.iter().filter_map(|s| if let Value::Str(s) = s { Some(s.clone()) } else { None }).collect();
                if let Func::Def(fid) = **factory {
                    let fdef = &self.globals.defs[fid];
                    for s in &static_args {
                        if fdef.param(s).is_none() {
                            self.err(
                                Diagnostic::error("unknown-keyword", format!("`{}` has no parameter `{s}`", fdef.name))
                                    .with_primary(span, "in `static_args`"),
                            );
                        }
                    }
                }
                return Value::Func(Arc::new(Func::Injected { factory: factory.clone(), static_args }));
            }
            _ => return Value::Error,
        };
        Value::Transform(Arc::new(result))
    }

    /// `inject_hyperparams(f)(args)`: numeric hyperparameters become per-step float32 values.
    fn apply_injected(&mut self, factory: &Func, static_args: &[String], args: Args, span: Span) -> Value {
        let Func::Def(id) = *factory else {
            self.err(
                Diagnostic::error("type-mismatch", "`inject_hyperparams` wraps a named transform or alias")
                    .with_primary(span, "not a definition"),
            );
            return Value::Error;
        };
        if !self.enter_call(span) {
            return Value::Error;
        }
        let values = self.bind_values(id, args, true);
        let owner = self.next_inject;
        self.next_inject += 1;
        let params = self.globals.defs[id].params.clone();
        let mut hypers = Vec::new();
        let mut inner_values = Vec::new();
        for (p, v) in params.iter().zip(values) {
            let injected = |ty: Ty| Value::Injected { owner, name: p.name.clone(), ty };
            let is_static = static_args.contains(&p.name);
            match v {
                Value::Schedule(s) if !is_static => {
                    let number = match &*s {
                        Schedule::Constant(n) => Some(n.clone()),
                        Schedule::Instance { .. } => None,
                    };
                    match number {
                        Some(n) => hypers.push((p.name.clone(), Hyper::Number(n))),
                        None => hypers.push((p.name.clone(), Hyper::Schedule(s))),
                    }
                    // The inner definition sees what it declared: a schedule, or a number.
                    let seen = injected(Ty::Float);
                    inner_values.push(if is_number_type(&p.ty.ty) { seen } else { Value::Schedule(Arc::new(Schedule::Constant(seen))) });
                }
                Value::Int(_) | Value::Float(_) if !is_static => {
                    let ty = v.ty();
                    hypers.push((p.name.clone(), Hyper::Number(v)));
                    inner_values.push(injected(ty));
                }
                other => inner_values.push(other),
            }
        }
        let inner = self.instantiate(id, inner_values, span);
        self.calls.pop();
        match inner {
            Value::Transform(inner) => Value::Transform(Arc::new(Tx::Inject { id: owner, hypers, inner })),
            Value::Error => Value::Error,
            other => {
                let d = self.expected_transform(&other, span, "`inject_hyperparams`");
                self.err(d);
                Value::Error
            }
        }
    }

    // ---- operators -----------------------------------------------------------------------

    pub(super) fn binary(&mut self, op: BinaryOp, l: Value, r: Value, span: Span) -> Value {
        if l == Value::Error || r == Value::Error {
            return Value::Error;
        }
        match op {
            BinaryOp::Eq => return Value::Bool(values_equal(&l, &r) || both_injected_same(&l, &r)),
            BinaryOp::Ne => return Value::Bool(!values_equal(&l, &r) && !both_injected_same(&l, &r)),
            _ => {}
        }
        if let Some(v) = [&l, &r].into_iter().find(|v| matches!(v, Value::Injected { .. })) {
            return self.not_constant(&v.clone(), span);
        }
        match consts::binary(op, &l, &r) {
            Ok(v) => v,
            Err(e) => {
                self.err(Diagnostic::error(e.code, e.message).with_primary(span, e.label));
                Value::Error
            }
        }
    }

    pub(super) fn index(&mut self, base: Value, index: Value, span: Span) -> Value {
        match (&base, &index) {
            (Value::Error, _) | (_, Value::Error) => Value::Error,
            (Value::List(items) | Value::Tuple(items), Value::Int(i)) => {
                let n = items.len() as i64;
                let k = if *i < 0 { i + n } else { *i };
                match usize::try_from(k).ok().and_then(|k| items.get(k)) {
                    Some(v) => v.clone(),
                    None => {
                        self.err(
                            Diagnostic::error("bad-index", format!("index {i} is out of range for {n} items"))
                                .with_primary(span, "no such item"),
                        );
                        Value::Error
                    }
                }
            }
            (Value::Map(entries), key) => match entries.iter().find(|(k, _)| values_equal(k, key)) {
                Some((_, v)) => v.clone(),
                None => {
                    let keys = entries.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>().join(", ");
                    self.err(
                        Diagnostic::error("bad-index", format!("the key {key} is not in this map"))
                            .with_primary(span, "missing key")
                            .with_note(format!("the keys are {keys}")),
                    );
                    Value::Error
                }
            },
            (Value::Str(s), Value::Int(i)) => {
                let chars: Vec<char> = s.chars().collect();
                let n = chars.len() as i64;
                let k = if *i < 0 { i + n } else { *i };
                usize::try_from(k).ok().and_then(|k| chars.get(k)).map_or(Value::Error, |c| Value::Str(c.to_string()))
            }
            _ => {
                self.err(
                    Diagnostic::error("bad-index", format!("cannot index {} with {}", describe_value(&base), index.ty()))
                        .with_primary(span, "bad index"),
                );
                Value::Error
            }
        }
    }

    pub(super) fn slice(&mut self, base: Value, start: Option<Value>, end: Option<Value>, span: Span) -> Value {
        let bound = |v: Option<Value>, n: usize, default: usize| -> Option<usize> {
            match v {
                None => Some(default),
                Some(Value::Int(i)) => {
                    let n = n as i64;
                    Some((if i < 0 { (i + n).max(0) } else { i.min(n) }) as usize)
                }
                _ => None,
            }
        };
        match base {
            Value::List(items) => {
                let n = items.len();
                match (bound(start, n, 0), bound(end, n, n)) {
                    (Some(a), Some(b)) => Value::List(items.get(a..b.max(a)).map(<[Value]>::to_vec).unwrap_or_default()),
                    _ => {
                        self.err(Diagnostic::error("bad-index", "slice bounds are ints").with_primary(span, "bad slice"));
                        Value::Error
                    }
                }
            }
            Value::Error => Value::Error,
            other => {
                self.err(
                    Diagnostic::error("bad-index", format!("cannot slice {}", describe_value(&other)))
                        .with_primary(span, "expected a list"),
                );
                Value::Error
            }
        }
    }
}

/// `float`, `int`, or one of them made optional.
fn is_number_type(ty: &Ty) -> bool {
    match ty {
        Ty::Float | Ty::Int => true,
        Ty::Optional(inner) => is_number_type(inner),
        _ => false,
    }
}

fn both_injected_same(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Injected { owner: x, name: n, .. }, Value::Injected { owner: y, name: m, .. }) if x == y && n == m)
}

/// The strings an enum type (possibly optional) allows.
fn enum_options(ty: &Ty) -> Option<&[String]> {
    match ty {
        Ty::Enum(options) => Some(options),
        Ty::Optional(inner) => enum_options(inner),
        _ => None,
    }
}

/// A `mask=` value as a [`Mask`].
pub(super) fn to_mask(v: &Value) -> Mask {
    match v {
        Value::Str(g) => Mask::Glob(g.clone()),
        Value::Bool(false) => Mask::Nothing,
        _ => Mask::All,
    }
}

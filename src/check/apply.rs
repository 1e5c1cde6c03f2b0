//! Compile-time calls and operators: binding a call's values to a definition's parameters,
//! checking each value against its declared type and range, then building the transform,
//! schedule or value the call stands for. Also `inject_hyperparams` and Python's operators.

use std::sync::Arc;

use super::bind::{self, CallArg, CallArgs};
use super::builtins;
use super::consts;
use super::eval::Evaluator;
use super::program::{DefAst, DefId, DefKind, Func, Hyper, Mask, Schedule, Tx, Value};
use super::types::Ty;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::{self, BinaryOp, ExprKind};

impl Evaluator<'_, '_> {
    pub(super) fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg], args_span: Span, span: Span) -> Value {
        let evaluated = self.eval_args(args, args_span);
        // In a body, as for the checker and instantiation, a built-in function comes first
        // (`clip(x, lo, hi)`); in a pipeline, a definition of the same name (`clip(max_delta)`).
        if let ExprKind::Name(name) = &callee.kind
            && builtins::is_builtin(name)
            && (self.ahead || self.globals.by_name.get(name).is_none())
        {
            return self.builtin(name, evaluated, span);
        }
        let f = self.expr(callee);
        match f {
            Value::Func(func) => self.apply_func(&func, evaluated, span),
            Value::Error => Value::Error,
            // Ahead of time, a transform parameter applied to the updates, or a schedule called
            // with a step count, gives a runtime value; a constant schedule gives its number, as
            // instantiation folds it (so `lr ^ 2` of a huge int overflows here, located).
            Value::Schedule(s) if self.ahead => match &*s {
                Schedule::Constant(v @ (Value::Int(_) | Value::Float(_))) => v.clone(),
                _ => Value::Runtime,
            },
            Value::Transform(_) | Value::Runtime if self.ahead => Value::Runtime,
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
                    Diagnostic::error("not-callable", format!("{} cannot be called", other.describe()))
                        .with_primary(callee.span, format!("this is {}", other.describe())),
                );
                Value::Error
            }
        }
    }

    fn eval_args(&mut self, args: &[ast::Arg], span: Span) -> CallArgs<Value> {
        let mut out = CallArgs { args: Vec::new(), opaque_splat: false, span };
        for a in args {
            match a {
                ast::Arg::Positional(e) => {
                    let v = self.expr(e);
                    out.args.push(CallArg::Positional(v, e.span));
                }
                ast::Arg::Keyword { name, value } => {
                    let v = self.expr(value);
                    out.args.push(CallArg::Keyword(name.clone(), v, name.span.to(value.span)));
                }
                ast::Arg::Splat(e) => match self.expr(e) {
                    Value::Map(entries) => {
                        for (k, v) in entries {
                            match k {
                                Value::Str(name) => out.args.push(CallArg::Keyword(ast::Ident { name, span: e.span }, v, e.span)),
                                other => self.err(
                                    Diagnostic::error("type-mismatch", format!("`**` needs string keys, found {other}"))
                                        .with_primary(e.span, "keys must be parameter names"),
                                ),
                            }
                        }
                    }
                    Value::Error => out.opaque_splat = true,
                    other => {
                        out.opaque_splat = true;
                        self.err(
                            Diagnostic::error("type-mismatch", format!("`**` expands a map, found {}", other.describe()))
                                .with_primary(e.span, "expected a map"),
                        );
                    }
                },
            }
        }
        out
    }

    fn builtin(&mut self, name: &str, args: CallArgs<Value>, span: Span) -> Value {
        let mut values = Vec::new();
        for arg in args.args {
            match arg {
                CallArg::Positional(v, _) => values.push(v),
                // Over axes of a tensor: known only at run time.
                CallArg::Keyword(k, _, _) if k.name == "axis" && builtins::AXIS_REDUCTIONS.contains(&name) => return Value::Runtime,
                CallArg::Keyword(k, _, _) => {
                    self.err(
                        Diagnostic::error("unknown-keyword", format!("the built-in `{name}` takes no keyword arguments"))
                            .with_primary(k.span, "keyword argument"),
                    );
                    return Value::Error;
                }
            }
        }
        if values.contains(&Value::Error) {
            return Value::Error;
        }
        if values.contains(&Value::Runtime) {
            // The checker saw to it that `range` gets compile-time ints: in a body run ahead, one
            // is unknown only where `inject_hyperparams` made an int hyperparameter a runtime
            // value (`lbfgs`'s `memory_size`, which sizes its state).
            if name == "range"
                && let Some(hyper) = self.ahead_injected.first().cloned()
            {
                return self.not_constant_named(&hyper, span);
            }
            return Value::Runtime;
        }
        if let Some(v) = values.iter().find(|v| matches!(v, Value::Injected { .. })) {
            return self.not_constant(&v.clone(), span);
        }
        match builtins::eval(name, &values) {
            Some(Ok(v @ Value::List(_))) => self.sized(v, span),
            Some(Ok(v)) => v,
            Some(Err(msg)) => {
                self.err(Diagnostic::error("bad-value", msg).with_primary(span, "in this call"));
                Value::Error
            }
            None if self.ahead => Value::Runtime,
            None => {
                let reduction =
                    matches!(name, "sum" | "norm" | "mean" | "numel" | "all" | "any" | "dot") || name.starts_with("leaf_");
                let what = if reduction {
                    "a reduction over the parameters, available only in a transform's `update`"
                } else if name == "selects" {
                    "it asks about a leaf, so it has a value only in a transform's body"
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

    fn apply_func(&mut self, func: &Func, args: CallArgs<Value>, span: Span) -> Value {
        match func {
            Func::Def(id) => self.apply_def(*id, args, span),
            Func::Injected { factory, static_args } => self.apply_injected(factory, static_args, args, span),
        }
    }

    /// Binds a call's values to the parameters of `id` ([`bind::Call`]); defaults are evaluated
    /// here. Under `inject_hyperparams` (`injected`), a numeric hyperparameter also takes a
    /// schedule, as Optax allows.
    fn bind_values(&mut self, id: DefId, args: CallArgs<Value>, injected: bool) -> Vec<Value> {
        let globals = self.globals;
        let call = bind::Call { defs: globals.defs, injected };
        let mut errors = Vec::new();
        let values = call.bind(&globals.defs[id], args, |p| p.default.as_ref().map_or(Value::Error, |d| self.expr(d)), &mut errors);
        for e in errors {
            self.err(e);
        }
        values
    }

    fn apply_def(&mut self, id: DefId, args: CallArgs<Value>, span: Span) -> Value {
        if !self.enter_call(span) {
            return Value::Error;
        }
        let given: Vec<String> =
            args.args.iter().filter_map(|a| if let CallArg::Keyword(k, _, _) = a { Some(k.name.clone()) } else { None }).collect();
        let n_positional = args.args.iter().filter(|a| matches!(a, CallArg::Positional(..))).count();
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
                self.built(Tx::Alias { def: id, args: shown, inner }, 0, span)
            }
            other => other,
        }
    }

    fn instantiate(&mut self, id: DefId, values: Vec<Value>, span: Span) -> Value {
        let def = &self.globals.defs[id];
        match def.kind {
            DefKind::Builtin => self.combinator(id, values, span),
            DefKind::Transform => {
                let before = self.spent();
                let lists = self.run_ahead(id, &values);
                let own = self.spent() - before;
                let call = self.user_span(span);
                self.built(Tx::Instance { def: id, args: values, span, call, lists }, own, span)
            }
            DefKind::Schedule => {
                self.run_ahead(id, &values);
                Value::Schedule(Arc::new(Schedule::Instance { def: id, args: values, span }))
            }
            // Its own diagnostics say what is wrong with it.
            DefKind::Def if def.has_errors => Value::Error,
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

    /// `chain`, `named_chain`, `masked`, `flatten`, `inject_hyperparams`.
    fn combinator(&mut self, id: DefId, values: Vec<Value>, span: Span) -> Value {
        let has_error = |v: &Value| matches!(v, Value::List(items) if items.contains(&Value::Error));
        if values.contains(&Value::Error) || values.iter().any(has_error) {
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
            ("masked", [Value::Transform(inner), mask]) => {
                Tx::Masked { inner: inner.clone(), mask: Mask::from_value(mask).unwrap_or(Mask::All), span: self.user_span(span) }
            }
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
        self.built(result, 0, span)
    }

    /// `inject_hyperparams(f)(args)`: numeric hyperparameters become per-step float32 values.
    fn apply_injected(&mut self, factory: &Func, static_args: &[String], args: CallArgs<Value>, span: Span) -> Value {
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
                    inner_values.push(if bind::is_number_type(&p.ty.ty) { seen } else { Value::Schedule(Arc::new(Schedule::Constant(seen))) });
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
            Value::Transform(inner) => self.built(Tx::Inject { id: owner, hypers, inner }, 0, span),
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
        if l == Value::Runtime || r == Value::Runtime {
            return Value::Runtime;
        }
        if let Some(mask) = Mask::binary(op, &l, &r) {
            return Value::Mask(mask);
        }
        // `ndim == "2"` would quietly select no leaf: a leaf's ndim and size compare with numbers.
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) && [&l, &r].iter().any(|v| matches!(v, Value::LeafInt(_))) {
            self.err(
                Diagnostic::error("type-mismatch", format!("cannot apply `{}` to {} and {}", op.symbol(), l.ty(), r.ty()))
                    .with_primary(span, "a leaf's `ndim` and `size` compare with numbers"),
            );
            return Value::Error;
        }
        match op {
            BinaryOp::Eq => return Value::Bool(l.equals(&r) || both_injected_same(&l, &r)),
            BinaryOp::Ne => return Value::Bool(!l.equals(&r) && !both_injected_same(&l, &r)),
            _ => {}
        }
        if let Some(v) = [&l, &r].into_iter().find(|v| matches!(v, Value::Injected { .. })) {
            return self.not_constant(&v.clone(), span);
        }
        match consts::binary(op, &l, &r) {
            Ok(v @ (Value::List(_) | Value::Str(_))) => self.sized(v, span),
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
            (Value::Runtime, _) | (_, Value::Runtime) => Value::Runtime,
            (Value::List(items) | Value::Tuple(items), Value::Int(i)) => {
                let n = items.len() as i64;
                let k = if *i < 0 { i + n } else { *i };
                match usize::try_from(k).ok().and_then(|k| items.get(k)) {
                    Some(v) => v.clone(),
                    None => {
                        self.err(super::eval::out_of_range(*i, n, span));
                        Value::Error
                    }
                }
            }
            (Value::Map(entries), key) => match entries.iter().find(|(k, _)| k.equals(key)) {
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
                    Diagnostic::error("bad-index", format!("cannot index {} with {}", base.describe(), index.ty()))
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
            v @ (Value::Error | Value::Runtime) => v,
            other => {
                self.err(
                    Diagnostic::error("bad-index", format!("cannot slice {}", other.describe()))
                        .with_primary(span, "expected a list"),
                );
                Value::Error
            }
        }
    }
}

fn both_injected_same(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Injected { owner: x, name: n, .. }, Value::Injected { owner: y, name: m, .. }) if x == y && n == m)
}



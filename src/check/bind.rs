//! A call's arguments → the parameters of a definition: the one place where a call is bound,
//! for the checker (types), the evaluator (compile-time values) and instantiation (values that
//! may be known only at run time) alike. Binding by position and keyword, defaults and
//! variadics; then every known value is checked against its parameter (type, options, range,
//! glob, the arity of a function) and widened (a number passed as a schedule). Each way a call
//! can get this wrong has its diagnostic here, and so has an `assert` of the definition that
//! the call's values fail (the evaluator runs them, [`super::ahead`]).

use std::sync::Arc;

use super::program::{Definition, Func, ParamSig, Schedule, Tx, Value, format_number};
use super::suggest;
use super::types::Ty;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::Ident;

/// What a parameter received.
#[derive(Clone, Debug)]
pub enum Slot<A> {
    /// An argument, with the span of the argument (for keywords: `name=value`).
    Given(A, Span),
    /// The arguments gathered by a `*name` parameter.
    Variadic(Vec<(A, Span)>),
    /// Nothing: the default applies (or the parameter is missing, already reported).
    Default,
}

/// One argument of a call, already evaluated or typed into `A`.
#[derive(Clone, Debug)]
pub enum CallArg<A> {
    Positional(A, Span),
    /// `name=value`, with the span of the whole argument.
    Keyword(Ident, A, Span),
}

/// A call's arguments, in the order they are written.
pub struct CallArgs<A> {
    pub args: Vec<CallArg<A>>,
    /// True when a `**map` argument could not be expanded (so missing ones are not reported).
    pub opaque_splat: bool,
    /// The span of `(...)`.
    pub span: Span,
}

/// Binds `args` to the parameters of `def`, reporting every mistake (`defs`, every definition,
/// to suggest another one that has a keyword `def` lacks).
pub fn bind<A: Clone>(defs: &[Definition], def: &Definition, args: CallArgs<A>, errors: &mut Vec<Diagnostic>) -> Vec<Slot<A>> {
    let mut slots: Vec<Slot<A>> = vec![Slot::Default; def.params.len()];
    let mut given_at: Vec<Option<Span>> = vec![None; def.params.len()];
    let variadic = def.params.iter().position(|p| p.variadic);
    let positional_capacity = variadic.unwrap_or(def.params.len());
    let mut n_positional = 0;
    let mut first_keyword: Option<Span> = None;
    // Parameters an unknown keyword was probably meant for: not reported missing as well.
    let mut meant: Vec<String> = Vec::new();

    for arg in args.args {
        match arg {
            CallArg::Positional(value, span) => {
                if let Some(keyword) = first_keyword {
                    errors.push(positional_after_keyword(def, &given_at, span, keyword));
                    continue;
                }
                let i = n_positional;
                n_positional += 1;
                if i < positional_capacity {
                    slots[i] = Slot::Given(value, span);
                    given_at[i] = Some(span);
                } else if let Some(v) = variadic {
                    match &mut slots[v] {
                        Slot::Variadic(items) => items.push((value, span)),
                        slot => *slot = Slot::Variadic(vec![(value, span)]),
                    }
                    given_at[v] = Some(span);
                } else {
                    let n = def.params.len();
                    errors.push(
                        Diagnostic::error(
                            "too-many-arguments",
                            format!("`{}` takes {n} argument{}, but more were given", def.name, plural(n)),
                        )
                        .with_primary(span, "unexpected argument")
                        .with_secondary(def.name_span, format!("`{}` is defined here", def.name))
                        .with_help("remove it, or pass it by keyword if a parameter was meant"),
                    );
                }
            }
            CallArg::Keyword(name, value, span) => {
                first_keyword.get_or_insert(span);
                let Some(i) = def.params.iter().position(|p| p.name == name.name && !p.variadic) else {
                    let (d, fix) = unknown_keyword(defs, def, &name);
                    meant.extend(fix);
                    errors.push(d);
                    continue;
                };
                if let Some(first) = given_at[i] {
                    errors.push(
                        Diagnostic::error("duplicate-argument", format!("`{}` is given more than once", name.name))
                            .with_primary(span, "given again here")
                            .with_secondary(first, "first given here"),
                    );
                    continue;
                }
                slots[i] = Slot::Given(value, span);
                given_at[i] = Some(span);
            }
        }
    }

    if !args.opaque_splat {
        for (i, p) in def.params.iter().enumerate() {
            if given_at[i].is_none() && p.default.is_none() && !p.variadic && !meant.contains(&p.name) {
                let ty = &p.ty;
                errors.push(
                    Diagnostic::error("missing-argument", format!("`{}` needs a value for `{}`", def.name, p.name))
                        .with_primary(args.span, format!("`{}` is missing", p.name))
                        .with_secondary(p.span, format!("`{}: {ty}` has no default", p.name))
                        .with_help(format!("add `{}=...`", p.name)),
                );
            }
        }
    }
    slots
}

/// Python refuses `f(a=1, 2)`; so does optc, naming the parameter the value was probably meant
/// for (the first one not given yet).
fn positional_after_keyword(def: &Definition, given_at: &[Option<Span>], span: Span, keyword: Span) -> Diagnostic {
    let next = def.params.iter().zip(given_at).find(|(p, given)| given.is_none() && !p.variadic).map(|(p, _)| &p.name);
    let help = match next {
        Some(name) => format!("name it (`{name}=...`), or move it before the keyword arguments"),
        None => "move it before the keyword arguments".to_string(),
    };
    Diagnostic::error("positional-after-keyword", "positional argument after keyword argument")
        .with_primary(span, "positional argument")
        .with_secondary(keyword, "after this keyword argument")
        .with_note("as in Python, arguments given by position come first")
        .with_help(help)
}

/// The diagnostic for an unknown keyword, and the parameter it was probably meant for.
fn unknown_keyword(defs: &[Definition], def: &Definition, name: &Ident) -> (Diagnostic, Option<String>) {
    let names = def.params.iter().filter(|p| !p.variadic).map(|p| p.name.as_str());
    let mut d = Diagnostic::error("unknown-keyword", format!("`{}` has no parameter `{}`", def.name, name.name))
        .with_primary(name.span, "unknown keyword");
    let alias = suggest::known_alias(&name.name).filter(|a| def.param(a).is_some());
    let fix = alias.map(String::from).or_else(|| suggest::closest(&name.name, names.clone()));
    if let Some(fix) = &fix {
        d = d.with_help(format!("did you mean `{fix}`?"));
        if alias.is_some() {
            d = d.with_note(format!("Optax calls it `{fix}`; optc uses Optax's names"));
        }
    } else if let Some(other) = sibling_with(defs, def, &name.name) {
        // `adam(weight_decay=...)`: `adamw` has it.
        d = d.with_help(format!("did you mean `{}`? it takes `{}`", other.name, name.name));
    } else if name.name == "weight_decay" && def.kind != super::program::DefKind::Builtin {
        d = d.with_help(format!(
            "chain the decay before it: `chain(add_decayed_weights(weight_decay=...), {}(...))`",
            def.name
        ));
    } else {
        let list: Vec<String> = names.map(|n| format!("`{n}`")).collect();
        if list.is_empty() {
            d = d.with_note(format!("`{}` takes no arguments", def.name));
        } else {
            d = d.with_note(format!("the parameters of `{}` are {}", def.name, list.join(", ")));
        }
    }
    (d.with_secondary(def.name_span, format!("`{}` is defined here", def.name)), fix)
}

/// A definition named like `def` plus a letter (`adam` → `adamw`, `nadam` → `nadamw`) that
/// has a parameter `keyword`.
fn sibling_with<'a>(defs: &'a [Definition], def: &Definition, keyword: &str) -> Option<&'a Definition> {
    defs.iter()
        .filter(|d| d.name != def.name && d.kind == def.kind && d.param(keyword).is_some())
        .filter(|d| d.name.starts_with(&def.name) && d.name.len() == def.name.len() + 1)
        .min_by_key(|d| d.name.len())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

// ---- values --------------------------------------------------------------------------------

/// A value a walker binds: the evaluator's compile-time [`Value`]s, or instantiation's values,
/// some of which are known only at run time. Only known values are checked.
pub trait Bound: Clone {
    /// The compile-time value, if this one is known.
    fn known(&self) -> Option<&Value>;
    fn from_value(v: Value) -> Self;
    /// The arguments gathered by a `*name` parameter.
    fn list(items: Vec<Self>) -> Self;
}

impl Bound for Value {
    fn known(&self) -> Option<&Value> {
        Some(self)
    }

    fn from_value(v: Value) -> Value {
        v
    }

    fn list(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}

/// How a call binds its values.
pub struct Call<'a> {
    /// Every definition, to name a function value in a message.
    pub defs: &'a [Definition],
    /// Under `inject_hyperparams`, where a numeric hyperparameter also takes a schedule, as
    /// Optax allows.
    pub injected: bool,
}

impl Call<'_> {
    /// Binds `args` to the parameters of `def` and checks each known value; `default` gives a
    /// parameter's default value. One value per parameter, in order: [`Value::Error`] where a
    /// value was missing or wrong (already reported).
    pub fn bind<A: Bound>(
        &self,
        def: &Definition,
        args: CallArgs<A>,
        mut default: impl FnMut(&ParamSig) -> A,
        errors: &mut Vec<Diagnostic>,
    ) -> Vec<A> {
        let slots = bind(self.defs, def, args, errors);
        slots
            .into_iter()
            .zip(&def.params)
            .map(|(slot, p)| match slot {
                Slot::Given(v, s) => self.check(def, p, v, s, errors),
                Slot::Variadic(items) => A::list(items.into_iter().map(|(v, s)| self.check(def, p, v, s, errors)).collect()),
                Slot::Default if p.variadic => A::list(Vec::new()),
                Slot::Default if p.default.is_some() => widen(p, default(p)),
                Slot::Default => A::from_value(Value::Error),
            })
            .collect()
    }

    /// Checks one argument against its parameter, if it is known; the value, widened.
    fn check<A: Bound>(&self, def: &Definition, p: &ParamSig, v: A, span: Span, errors: &mut Vec<Diagnostic>) -> A {
        let Some(known) = v.known() else { return v };
        if self.injected && matches!(known, Value::Schedule(_)) && is_number_type(&p.ty.ty) {
            return v;
        }
        match check_value(self.defs, def, p, known, span) {
            None => widen(p, v),
            Some(d) => {
                errors.push(d);
                A::from_value(Value::Error)
            }
        }
    }
}

/// What is wrong with a known value for its parameter, if anything: its type, option, range,
/// glob, or the arity of a function the parameter will call.
fn check_value(defs: &[Definition], def: &Definition, p: &ParamSig, v: &Value, span: Span) -> Option<Diagnostic> {
    if matches!(v, Value::Error | Value::Runtime) {
        return None;
    }
    let found = v.ty();
    if !p.ty.ty.accepts(&found) || matches!((&p.ty.ty, v), (Ty::Transform, Value::Func(_))) {
        let what = format!("`{}` of `{}`", p.name, def.name);
        let mut d = Diagnostic::error("type-mismatch", format!("{what} expects {}, found {}", p.ty.ty, v.describe()))
            .with_primary(span, format!("expected {}", p.ty.ty))
            .with_secondary(p.span, format!("`{}` is declared here", p.name));
        match (&p.ty.ty, v) {
            (Ty::Int | Ty::IntSchedule, Value::Float(x)) if x.fract() == 0.0 => {
                d = d.with_help(format!("write it as an int: `{}={}`", p.name, *x as i64));
            }
            (Ty::Int | Ty::IntSchedule, Value::Float(x)) if x.is_finite() => {
                d = d.with_help(format!("give a whole number, such as `{}={}`", p.name, x.round() as i64))
                    .with_note("optc never truncates a float silently");
            }
            (Ty::Transform | Ty::Schedule | Ty::IntSchedule | Ty::Optional(_), Value::Func(f)) => {
                if let Func::Def(id) = **f {
                    let required: Vec<String> = defs[id]
                        .params
                        .iter()
                        .filter(|q| q.default.is_none() && !q.variadic)
                        .map(|q| format!("{}=...", q.name))
                        .collect();
                    d = d.with_help(format!("call it: `{}({})`", defs[id].name, required.join(", ")));
                }
            }
            (_, Value::LeafInt(prop)) => {
                d = d.with_help(format!("compare it to make a mask: `{}={} > 1`", p.name, prop.name()));
            }
            (Ty::Fn(_), Value::Transform(tx)) => {
                if let Tx::Alias { def: id, .. } | Tx::Instance { def: id, .. } = &**tx {
                    let name = &defs[*id].name;
                    d = d.with_help(format!("pass `{name}` itself, not a call of it: `{}({name})(...)`", def.name));
                }
            }
            (Ty::Float | Ty::Int | Ty::Schedule | Ty::IntSchedule, Value::Str(s)) if s.parse::<f64>().is_ok() => {
                d = d.with_help(format!("remove the quotes: `{}={s}`", p.name));
            }
            _ => {}
        }
        return Some(d);
    }
    if let (Some(sig), Value::Func(f)) = (fn_signature(&p.ty.ty), v)
        && let Func::Def(id) = **f
    {
        return check_arity(&defs[id], sig.params.len(), def, p, span);
    }
    if let (Some(options), Value::Str(s)) = (enum_options(&p.ty.ty), v)
        && !options.contains(s)
    {
        let mut list: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
        if matches!(p.ty.ty, Ty::Optional(_)) {
            list.push("None".into());
        }
        let mut d = Diagnostic::error("unknown-option", format!("`{}` of `{}` cannot be \"{s}\"", p.name, def.name))
            .with_primary(span, format!("expected one of {}", list.join(", ")))
            .with_secondary(p.span, format!("`{}` is declared here", p.name));
        if let Some(fix) = suggest::closest(s, options.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean \"{fix}\"?"));
        }
        return Some(d);
    }
    if let Some(range) = &p.range
        && let Some(x) = v.as_f64()
        && !range.contains(x)
    {
        let shown = if matches!(v, Value::Int(_)) { format!("{}", x as i64) } else { format_number(x) };
        return Some(Diagnostic::error("out-of-range", format!("`{}` of `{}` must be in {range}, found {shown}", p.name, def.name))
            .with_primary(span, format!("{shown} is out of range"))
            .with_secondary(range.span, format!("`{}` is declared `in {range}` here", p.name))
            .with_note(format!("expected {} in {range}, found {shown}", match &p.ty.ty {
                Ty::Optional(inner) => inner,
                ty => ty,
            })));
    }
    if let (Ty::Mask | Ty::Optional(_), Value::Str(g)) = (&p.ty.ty, v)
        && p.ty.ty.accepts(&Ty::Mask)
        && let Err(msg) = crate::glob::validate(g)
    {
        return Some(Diagnostic::error("bad-glob", format!("invalid glob `{g}`: {msg}")).with_primary(span, msg));
    }
    None
}

/// Whether the function `f` can be called with the `n` arguments the parameter `p` of `def`
/// will pass it (Optax's `functools.partial` has no counterpart: a `def` binds the others).
fn check_arity(f: &Definition, n: usize, def: &Definition, p: &ParamSig, span: Span) -> Option<Diagnostic> {
    let required = f.params.iter().filter(|q| q.default.is_none() && !q.variadic).count();
    let takes = if f.params.iter().any(|q| q.variadic) { usize::MAX } else { f.params.len() };
    if (required..=takes).contains(&n) {
        return None;
    }
    let count = match takes {
        _ if takes == required => format!("{required}"),
        usize::MAX => format!("at least {required}"),
        _ => format!("{required} to {takes}"),
    };
    let mut d = Diagnostic::error(
        "type-mismatch",
        format!("`{}` calls its `{}` with {n} argument{}, but `{}` takes {count}", def.name, p.name, plural(n), f.name),
    )
    .with_primary(span, format!("`{}` does not fit here", f.name))
    .with_secondary(p.span, format!("`{}` is declared here", p.name))
    .with_secondary(f.name_span, format!("`{}` is defined here", f.name));
    if required > n {
        let rest: Vec<&str> = f.params[n..required].iter().map(|q| q.name.as_str()).collect();
        let given: Vec<&str> = f.params[..n].iter().map(|q| q.name.as_str()).collect();
        let typed: Vec<String> = f.params[..n].iter().map(|q| format!("{}: {}", q.name, q.ty)).collect();
        let ret = f.ret.as_ref().map_or(String::new(), |r| format!(" -> {r}"));
        let values: Vec<String> = rest.iter().map(|r| format!("{r}=...")).collect();
        d = d.with_help(format!(
            "bind {} with a `def` of {n} parameter{} and pass that: `def my_{}({}){ret} = {}({}, {})`",
            rest.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "),
            plural(n),
            f.name,
            typed.join(", "),
            f.name,
            given.join(", "),
            values.join(", "),
        ));
    }
    Some(d)
}

/// The signature a function-typed parameter (possibly optional) declares.
fn fn_signature(ty: &Ty) -> Option<&super::types::FnTy> {
    match ty {
        Ty::Fn(Some(sig)) => Some(sig),
        Ty::Optional(inner) => fn_signature(inner),
        _ => None,
    }
}

/// The diagnostic of an `assert` of a definition that does not hold for the values of a call.
pub fn failed_assert(message: Option<&str>, span: Span) -> Diagnostic {
    let message = message.unwrap_or("a requirement of this definition does not hold");
    Diagnostic::error("failed-assert", message.to_string()).with_primary(span, "required here")
}

/// Widening that changes a value's form: a number passed as a schedule is a constant schedule.
pub fn widen<A: Bound>(p: &ParamSig, v: A) -> A {
    let is_schedule = |t: &Ty| matches!(t, Ty::Schedule | Ty::IntSchedule);
    let wants_schedule = is_schedule(&p.ty.ty) || matches!(&p.ty.ty, Ty::Optional(t) if is_schedule(t));
    match v.known() {
        Some(n @ (Value::Int(_) | Value::Float(_) | Value::Injected { .. })) if wants_schedule => {
            A::from_value(Value::Schedule(Arc::new(Schedule::Constant(n.clone()))))
        }
        _ => v,
    }
}

/// `float`, `int`, or one of them made optional.
pub fn is_number_type(ty: &Ty) -> bool {
    match ty {
        Ty::Float | Ty::Int => true,
        Ty::Optional(inner) => is_number_type(inner),
        _ => false,
    }
}

/// The strings an enum type (possibly optional) allows.
fn enum_options(ty: &Ty) -> Option<&[String]> {
    match ty {
        Ty::Enum(options) => Some(options),
        Ty::Optional(inner) => enum_options(inner),
        _ => None,
    }
}

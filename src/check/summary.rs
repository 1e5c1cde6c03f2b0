//! What a checked pipeline needs and keeps, and its resolved form as a tree, for `optc check`.

use std::fmt::Write;

use super::names;
use super::program::{DefKind, Hyper, Mask, Program, Schedule, StateEntry, Tx, Value, format_number};
use super::types::{Level, Ty};

/// Whether the pipeline needs a `value` (the loss) at every step.
pub fn needs_value(program: &Program, tx: &Tx) -> bool {
    match tx {
        Tx::Chain(parts) => parts.iter().any(|t| needs_value(program, t)),
        Tx::NamedChain(parts) => parts.iter().any(|(_, t)| needs_value(program, t)),
        Tx::Instance { def, args, .. } => {
            program.def(*def).reads_value
                || args.iter().any(|a| matches!(a, Value::Transform(t) if needs_value(program, t)))
        }
        Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => {
            needs_value(program, inner)
        }
        Tx::Partition(arms) => arms.iter().any(|a| needs_value(program, &a.tx)),
    }
}

/// Whether the pipeline reads the parameters (weight decay, distances from the start, ...).
pub fn reads_params(program: &Program, tx: &Tx) -> bool {
    match tx {
        Tx::Chain(parts) => parts.iter().any(|t| reads_params(program, t)),
        Tx::NamedChain(parts) => parts.iter().any(|(_, t)| reads_params(program, t)),
        Tx::Instance { def, args, .. } => {
            program.def(*def).reads_param
                || args.iter().any(|a| matches!(a, Value::Transform(t) if reads_params(program, t)))
        }
        Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => {
            reads_params(program, inner)
        }
        Tx::Partition(arms) => arms.iter().any(|a| reads_params(program, &a.tx)),
    }
}

/// Every state variable of the pipeline, named as [`names`] names it.
pub fn states(program: &Program, tx: &Tx) -> Vec<StateEntry> {
    let mut out = Vec::new();
    walk(program, tx, "", &mut |path, program, tx| match tx {
        Tx::Instance { def, .. } => {
            let d = program.def(*def);
            for s in &d.states {
                out.push(StateEntry { path: names::member(path, &d.name, &s.name), level: s.ty.level, ty: s.ty.ty.clone() });
            }
        }
        Tx::Inject { .. } => {
            out.push(StateEntry { path: names::join(&names::injected(path), "count"), level: Level::Uniform, ty: Ty::Int });
        }
        _ => {}
    });
    out
}

/// The values a user can read by name after each step besides the state, named as [`names`]
/// names them: injected hyperparameters, and the value of each schedule given to a transform
/// (a number given for a schedule is not one: it never changes).
pub fn values(program: &Program, tx: &Tx) -> Vec<String> {
    let mut out = Vec::new();
    walk(program, tx, "", &mut |path, program, tx| match tx {
        Tx::Instance { def, args, .. } => {
            let d = program.def(*def);
            for (p, a) in d.params.iter().zip(args) {
                if matches!(a, Value::Schedule(s) if matches!(**s, Schedule::Instance { .. })) {
                    out.push(names::member(path, &d.name, &p.name));
                }
            }
        }
        Tx::Inject { hypers, .. } => {
            out.extend(hypers.iter().map(|(name, _)| names::join(&names::injected(path), name)));
        }
        _ => {}
    });
    out
}

/// The transforms of the pipeline that define evaluation weights (`eval_params`), by the
/// names [`names`] gives them (the transform's own name where its path is empty).
pub fn eval_params(program: &Program, tx: &Tx) -> Vec<String> {
    let mut out = Vec::new();
    walk(program, tx, "", &mut |path, program, tx| {
        if let Tx::Instance { def, .. } = tx
            && let Some(super::program::DefAst::Transform(t)) = &program.def(*def).ast
            && t.eval_params.is_some()
        {
            out.push(if path.is_empty() { program.def(*def).name.clone() } else { path.to_string() });
        }
    });
    out
}

/// Calls `f` on every transform of the tree (outer ones first) with the path [`names`] gives it.
fn walk(program: &Program, tx: &Tx, path: &str, f: &mut impl FnMut(&str, &Program, &Tx)) {
    f(path, program, tx);
    match tx {
        Tx::Chain(parts) => {
            for (t, name) in parts.iter().zip(names::chain_parts(program, path, parts.iter().map(|p| &**p))) {
                walk(program, t, &name, f);
            }
        }
        Tx::NamedChain(parts) => {
            for (n, t) in parts {
                walk(program, t, &names::join(path, n), f);
            }
        }
        Tx::Instance { def, args, .. } => {
            for (p, a) in program.def(*def).params.iter().zip(args) {
                if let Value::Transform(inner) = a {
                    walk(program, inner, &names::join(path, &p.name), f);
                }
            }
        }
        Tx::Alias { inner, .. } | Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } => {
            walk(program, inner, path, f)
        }
        Tx::Partition(arms) => {
            for (arm, name) in arms.iter().zip(names::partition_arms(path, arms)) {
                walk(program, &arm.tx, &name, f);
            }
        }
    }
}

/// Floats of per-element state each parameter keeps: a chain's parts add up, a partition's
/// arms and a mask's sides each keep their own, so a parameter keeps the state of the arm that
/// takes it (the largest arm's count, for the whole model).
pub fn floats_per_parameter(program: &Program, tx: &Tx) -> usize {
    match tx {
        Tx::Chain(parts) => parts.iter().map(|t| floats_per_parameter(program, t)).sum(),
        Tx::NamedChain(parts) => parts.iter().map(|(_, t)| floats_per_parameter(program, t)).sum(),
        Tx::Instance { def, args, .. } => {
            let d = program.def(*def);
            let own = d.states.iter().filter(|s| s.ty.level == Level::Element).count();
            let inner: usize = args.iter().map(|a| if let Value::Transform(t) = a { floats_per_parameter(program, t) } else { 0 }).sum();
            own + inner
        }
        Tx::Alias { inner, .. } | Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } => floats_per_parameter(program, inner),
        Tx::Partition(arms) => arms.iter().map(|a| floats_per_parameter(program, &a.tx)).max().unwrap_or(0),
    }
}

/// The pipeline as an indented tree, every transform with all its arguments.
pub fn describe(program: &Program, tx: &Tx) -> String {
    let mut out = String::new();
    write_tree(program, tx, "", "", &mut out);
    out
}

fn write_tree(program: &Program, tx: &Tx, first: &str, rest: &str, out: &mut String) {
    let children: Vec<(String, &Tx)> = match tx {
        Tx::Chain(parts) => parts.iter().map(|t| (String::new(), &**t)).collect(),
        Tx::NamedChain(parts) => parts.iter().map(|(n, t)| (format!("{n}: "), &**t)).collect(),
        Tx::Instance { def, args, .. } => program
            .def(*def)
            .params
            .iter()
            .zip(args)
            .filter_map(|(p, a)| match a {
                Value::Transform(t) => Some((format!("{}=", p.name), &**t)),
                _ => None,
            })
            .collect(),
        Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => {
            vec![(String::new(), &**inner)]
        }
        Tx::Partition(arms) => arms
            .iter()
            .map(|a| {
                let label = match &a.mask {
                    Some(Mask::Any(parts)) => parts.iter().map(Mask::to_string).collect::<Vec<_>>().join(" | "),
                    Some(mask) => mask.to_string(),
                    None => "_".into(),
                };
                (format!("{label} => "), &*a.tx)
            })
            .collect(),
    };
    let _ = writeln!(out, "{first}{}", headline(program, tx));
    let n = children.len();
    for (i, (label, child)) in children.into_iter().enumerate() {
        let last = i + 1 == n;
        let (branch, indent) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        write_tree(program, child, &format!("{rest}{branch}{label}"), &format!("{rest}{indent}"), out);
    }
}

fn headline(program: &Program, tx: &Tx) -> String {
    match tx {
        Tx::Chain(_) => "chain".into(),
        Tx::NamedChain(_) => "named_chain".into(),
        Tx::Partition(_) => "partition".into(),
        Tx::Flatten(_) => "flatten".into(),
        Tx::Masked { mask, .. } => format!("masked(mask={mask})"),
        Tx::Inject { hypers, .. } => {
            let parts: Vec<String> = hypers
                .iter()
                .map(|(n, h)| match h {
                    Hyper::Number(v) => format!("{n}={}", show(program, v)),
                    Hyper::Schedule(s) => format!("{n}={}", show_schedule(program, s)),
                })
                .collect();
            format!("inject_hyperparams({})", parts.join(", "))
        }
        Tx::Alias { def, args, .. } => {
            // Transform arguments show up in the tree below, inside what the alias stands for.
            let parts: Vec<String> = args
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Transform(_)))
                .map(|(n, v)| format!("{n}={}", show(program, v)))
                .collect();
            format!("{}({})  (alias)", program.def(*def).name, parts.join(", "))
        }
        Tx::Instance { def, args, .. } => {
            let d = program.def(*def);
            let parts: Vec<String> = d
                .params
                .iter()
                .zip(args)
                .filter(|(_, a)| !matches!(a, Value::Transform(_)))
                .map(|(p, a)| format!("{}={}", p.name, show(program, a)))
                .collect();
            format!("{}({})", d.name, parts.join(", "))
        }
    }
}

fn show(program: &Program, v: &Value) -> String {
    match v {
        Value::Schedule(s) => show_schedule(program, s),
        Value::Transform(t) => headline(program, t),
        Value::Func(f) => match &**f {
            super::program::Func::Def(id) => program.def(*id).name.clone(),
            super::program::Func::Injected { factory, .. } => {
                format!("inject_hyperparams({})", show(program, &Value::Func(factory.clone())))
            }
        },
        Value::List(items) => format!("[{}]", items.iter().map(|i| show(program, i)).collect::<Vec<_>>().join(", ")),
        Value::Tuple(items) => format!("({})", items.iter().map(|i| show(program, i)).collect::<Vec<_>>().join(", ")),
        Value::Float(x) => format_number(*x),
        other => other.to_string(),
    }
}

fn show_schedule(program: &Program, s: &Schedule) -> String {
    match s {
        Schedule::Constant(v) => show(program, v),
        Schedule::Instance { def, args, .. } => {
            let d = program.def(*def);
            let parts: Vec<String> =
                d.params.iter().zip(args).map(|(p, a)| format!("{}={}", p.name, show(program, a))).collect();
            format!("{}({})", d.name, parts.join(", "))
        }
    }
}

/// The state of a pipeline, grouped by level: `per element: mu, nu` and so on.
pub fn describe_states(entries: &[StateEntry]) -> Vec<(Level, Vec<String>)> {
    let mut out = Vec::new();
    for level in [Level::Element, Level::Leaf, Level::Uniform] {
        let names: Vec<String> = entries.iter().filter(|e| e.level == level).map(|e| e.path.clone()).collect();
        if !names.is_empty() {
            out.push((level, names));
        }
    }
    out
}

/// How many definitions of each kind there are, for a definitions-only file.
pub fn count_definitions(program: &Program, user_only: bool) -> Vec<(DefKind, usize)> {
    [DefKind::Transform, DefKind::Def, DefKind::Schedule, DefKind::Builtin]
        .into_iter()
        .map(|k| (k, program.defs.iter().filter(|d| d.kind == k && (!user_only || !d.is_stdlib)).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

//! What a checked pipeline needs and keeps, and its resolved form as a tree, for `optc check`.

use std::fmt::Write;

use super::names;
use super::program::{DefKind, Definition, Hyper, Mask, Program, Schedule, StateEntry, Storage, StorageDecl, Tx, Value, format_number};
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
        Tx::Instance { def, args, lists, .. } => {
            let d = program.def(*def);
            for (i, s) in d.states.iter().enumerate() {
                let storage = if s.ty.level == Level::Element { storage_of(d, args, &s.storage) } else { Storage::F32 };
                let path = names::member(path, &d.name, &s.name);
                let entries = lists.get(i).copied().flatten();
                out.push(StateEntry { path, level: s.ty.level, ty: s.ty.ty.clone(), storage, entries });
            }
        }
        Tx::Inject { .. } => {
            let path = names::join(&names::injected(path), "count");
            out.push(StateEntry { path, level: Level::Uniform, ty: Ty::Int, storage: Storage::F32, entries: None });
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

/// Bytes of per-element state each parameter keeps (4 per float32 state, 2 per bfloat16; each
/// entry of a `list[tensor]` counts): a chain's parts add up, a partition's arms and a mask's
/// sides each keep their own, so a parameter keeps the state of the arm that takes it (the
/// largest arm's, for the whole model).
pub fn bytes_per_parameter(program: &Program, tx: &Tx) -> usize {
    match tx {
        Tx::Chain(parts) => parts.iter().map(|t| bytes_per_parameter(program, t)).sum(),
        Tx::NamedChain(parts) => parts.iter().map(|(_, t)| bytes_per_parameter(program, t)).sum(),
        Tx::Instance { def, args, lists, .. } => {
            let d = program.def(*def);
            let own: usize = (d.states.iter().enumerate())
                .filter(|(_, s)| s.ty.level == Level::Element)
                .map(|(i, s)| storage_of(d, args, &s.storage).bytes() * lists.get(i).copied().flatten().unwrap_or(1))
                .sum();
            let inner: usize = args.iter().map(|a| if let Value::Transform(t) = a { bytes_per_parameter(program, t) } else { 0 }).sum();
            own + inner
        }
        Tx::Alias { inner, .. } | Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } => bytes_per_parameter(program, inner),
        Tx::Partition(arms) => arms.iter().map(|a| bytes_per_parameter(program, &a.tx)).max().unwrap_or(0),
    }
}

/// The storage type a state of the instance of `d` with arguments `args` declares.
fn storage_of(d: &Definition, args: &[Value], decl: &StorageDecl) -> Storage {
    decl.resolve(|name| d.params.iter().position(|p| p.name == name).and_then(|k| args.get(k)))
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
        let names: Vec<String> = entries
            .iter()
            .filter(|e| e.level == level)
            .map(|e| {
                // A list's entries are named `s[0]`, `s[1]`, ...: `s[0:n]` says which there are.
                let name = match e.entries {
                    Some(n) => format!("{}[0:{n}]", e.path),
                    None => e.path.clone(),
                };
                match e.storage {
                    Storage::F32 => name,
                    other => format!("{name} ({})", other.name()),
                }
            })
            .collect();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The pipeline of `text`, checked clean, with its program.
    fn checked(text: &str) -> (Program, Arc<Tx>) {
        let (_, checked) = crate::check_str("test.opt", text);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let tx = checked.program.pipeline.clone().expect("a pipeline");
        (checked.program, tx)
    }

    #[test]
    fn a_list_state_is_at_the_level_of_its_items_and_counts_every_entry() {
        let (program, tx) = checked(
            "transform t(n: int = 3) {
                 state h: list[tensor] = [0.0 for i in range(n)]
                 state l: list[leaf] = [0.0, 0.0]
                 state u: list[float] = [0.0]
                 state m: tensor = 0
                 update(g) { h[0] = g; l[1] = leaf_sum(g); u[0] = sum(g); g }
             }
             t(n=5)",
        );
        let entries = states(&program, &tx);
        let find = |name: &str| entries.iter().find(|e| e.path == name).unwrap_or_else(|| panic!("no `{name}`"));
        assert_eq!((find("h").level, find("h").entries), (Level::Element, Some(5)));
        assert_eq!((find("l").level, find("l").entries), (Level::Leaf, Some(2)));
        assert_eq!((find("u").level, find("u").entries), (Level::Uniform, Some(1)));
        assert_eq!((find("m").level, find("m").entries), (Level::Element, None));
        assert_eq!(bytes_per_parameter(&program, &tx), 4 * 6);
        let described = describe_states(&entries);
        assert_eq!(described[0], (Level::Element, vec!["h[0:5]".to_string(), "m".to_string()]));
    }

    #[test]
    fn a_list_of_tensors_takes_a_storage_type_for_every_entry() {
        let (program, tx) = checked(
            "transform t(dtype: \"float32\" | \"bfloat16\"? = None) {
                 state h: list[tensor[dtype]] = [0.0, 0.0, 0.0]
                 update(g) { h[2] = g; g }
             }
             t(dtype=\"bfloat16\")",
        );
        assert_eq!(bytes_per_parameter(&program, &tx), 2 * 3);
        let entries = states(&program, &tx);
        assert_eq!(describe_states(&entries), vec![(Level::Element, vec!["h[0:3] (bfloat16)".to_string()])]);
    }
}

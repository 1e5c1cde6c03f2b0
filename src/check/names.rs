//! The names users read for the parts of a pipeline: its state (`adam.scale_by_adam.mu`), the
//! values of its schedules (`scale_by_learning_rate.learning_rate`) and its injected
//! hyperparameters (`inject_hyperparams.learning_rate`). This is their one home: `optc check`'s
//! summary ([`super::summary`]) and instantiation (`ir::instantiate`, whose slot and value names
//! the logs, state files, `Optimizer::uniforms` and the Python package show) both name through
//! here, so a name reads the same wherever a user meets it.
//!
//! A name is the path to where the thing lives, from the pipeline down, joined with dots:
//! - a part of a `chain` is named after its transform or alias (`adam`, `reduce_on_plateau`;
//!   `masked(adam)`, `flatten(adam)`), with `#i` (its position) when the chain has two parts of
//!   that name; a part of a `named_chain` by its name;
//! - a transform given to a parameter of a transform by the parameter (`fast_optimizer`);
//! - an arm of a `partition` by its globs in brackets after the name of where the partition
//!   sits, `partition` at the top (`partition[*.bias|*norm*]`, `partition[_]`);
//! - `inject_hyperparams` keeps its step count and values under `inject_hyperparams`;
//! - a state, or the value of a schedule parameter, by its name in the transform (see
//!   [`member`] for the few names that are qualified at the top).
//!
//! Nothing else adds to a path: not a transform's own name (where it sits names it, so a lone
//! `scale_by_adam()` keeps `mu`, `nu` and `count`), not an alias, a mask or `flatten`. So a
//! definition's internals (the `_add_decayed_weights` that `add_decayed_weights` stands for)
//! never show.

use super::program::{PartitionArm, Program, Tx};

/// `prefix.name`, or `name` at the top of the pipeline.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// The names of the parts of a chain at `prefix` (whole paths), in order.
pub fn chain_parts<'a>(program: &Program, prefix: &str, parts: impl IntoIterator<Item = &'a Tx>) -> Vec<String> {
    let base: Vec<String> = parts.into_iter().map(|t| part_name(program, t)).collect();
    let repeated = repeated(&base);
    base.iter().zip(repeated).enumerate().map(|(i, (n, r))| join(prefix, &if r { format!("{n}#{i}") } else { n.clone() })).collect()
}

/// For each of `names`, whether it occurs more than once. Counted once, so that a chain of
/// 100,000 parts is named in linear time (a count per part was quadratic).
fn repeated(names: &[String]) -> Vec<bool> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    names.iter().map(|n| counts[n.as_str()] > 1).collect()
}

/// The name a part of a chain is known by: its transform's or alias's name.
fn part_name(program: &Program, tx: &Tx) -> String {
    match tx {
        Tx::Instance { def, .. } | Tx::Alias { def, .. } => program.def(*def).name.clone(),
        Tx::Masked { inner, .. } => format!("masked({})", part_name(program, inner)),
        Tx::Flatten(inner) => format!("flatten({})", part_name(program, inner)),
        Tx::Inject { inner, .. } => part_name(program, inner),
        Tx::Chain(_) => "chain".into(),
        Tx::NamedChain(_) => "named_chain".into(),
        Tx::Partition(_) => "partition".into(),
    }
}

/// The paths of the arms of a partition at `prefix`: `partition[*.bias]`, `partition[_]` (a
/// label two arms share gets the arm's position, `partition[_#2]`).
pub fn partition_arms(prefix: &str, arms: &[PartitionArm]) -> Vec<String> {
    let own = if prefix.is_empty() { "partition" } else { prefix };
    let labels: Vec<String> = arms.iter().map(PartitionArm::label).collect();
    let repeated = repeated(&labels);
    labels
        .iter()
        .zip(repeated)
        .enumerate()
        .map(|(i, (l, r))| if r { format!("{own}[{l}#{i}]") } else { format!("{own}[{l}]") })
        .collect()
}

/// The name of `name`, a state or schedule parameter of the transform `owner` at `prefix`:
/// `prefix.name`. At the top of the pipeline a name that `optc run` and the runtime give a
/// value of their own (its log's `step` and `loss` columns, the learning rate `lr`) is
/// qualified by the transform's name (`conditionally_transform.step`), so that no two values
/// share a name.
pub fn member(prefix: &str, owner: &str, name: &str) -> String {
    if prefix.is_empty() && RESERVED.contains(&name) { format!("{owner}.{name}") } else { join(prefix, name) }
}

/// The names of values `optc run` logs and the runtime reads besides the pipeline's.
pub const RESERVED: [&str; 6] = ["step", "wall_time", "loss", "val_loss", "val_accuracy", "lr"];

/// Where `inject_hyperparams` at `prefix` keeps its step count and its values.
pub fn injected(prefix: &str) -> String {
    join(prefix, "inject_hyperparams")
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_only_names_that_repeat() {
        let names = ["sgd", "adam", "sgd"].map(String::from);
        assert_eq!(super::repeated(&names), [true, false, true]);
    }
}

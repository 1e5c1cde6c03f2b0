//! State only where it is used: a slot keeps the leaves of a group only if the step changes it
//! there or something reads it there. A transform whose body keeps one state for matrices and
//! another for vectors (Adafactor's `v_row`/`v_col` against its `v`) holds each for its own
//! leaves, as Optax's does (where the other is a one-element placeholder).

use std::collections::BTreeSet;

use super::plan::resolve;
use super::{Graph, Level, Node, NodeId, SlotId, StepIr};

/// Drops from each per-element and per-leaf slot the groups where it is neither changed nor
/// read.
pub fn drop_unused(ir: &mut StepIr) {
    let slot_ids = 0..ir.slots.len() as SlotId;
    // The evaluation weights read state as a whole: what they read stays.
    let in_eval: BTreeSet<SlotId> = match &ir.eval {
        Some(eval) => eval.graph.nodes.iter().filter_map(|n| if let Node::State(s) = n.node { Some(s) } else { None }).collect(),
        None => BTreeSet::new(),
    };
    let mut keep: Vec<Vec<usize>> = vec![Vec::new(); ir.slots.len()];
    for g in 0..ir.groups.leaves.len() {
        // A slot left as it was in `g` (its next value there is its own read).
        let unchanged = |s: SlotId| {
            let slot = &ir.slots[s as usize];
            resolve(&ir.graph, slot.next, g).is_some_and(|n| ir.graph.get(n).node == Node::State(s))
        };
        let mut roots = vec![ir.updates];
        roots.extend(slot_ids.clone().filter(|&s| !unchanged(s)).map(|s| ir.slots[s as usize].next));
        roots.extend(ir.named.iter().chain(&ir.locals).map(|n| n.node));
        let read = reads_in(&ir.graph, &roots, g);
        for s in slot_ids.clone() {
            let slot = &ir.slots[s as usize];
            if slot.groups.contains(g) && (!unchanged(s) || read.contains(&s) || in_eval.contains(&s)) {
                keep[s as usize].push(g);
            }
        }
    }
    for (slot, groups) in ir.slots.iter_mut().zip(keep) {
        if slot.level != Level::Uniform {
            slot.groups = groups.into_iter().collect();
        }
    }
}

/// The slots whose state `roots` read in group `g`.
fn reads_in(graph: &Graph, roots: &[NodeId], g: usize) -> BTreeSet<SlotId> {
    let mut seen: BTreeSet<NodeId> = BTreeSet::new();
    let mut read = BTreeSet::new();
    let mut stack: Vec<NodeId> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        match &graph.get(id).node {
            Node::State(s) => {
                read.insert(*s);
            }
            Node::Op(_, args) | Node::Matrix { args, .. } => stack.extend(args),
            Node::LeafReduce { arg, .. } | Node::AxisReduce { arg, .. } => stack.push(*arg),
            Node::Reduce { arg, groups, .. } if groups.contains(g) => stack.push(*arg),
            Node::Merge(_) => stack.extend(resolve(graph, id, g)),
            _ => {}
        }
    }
    read
}

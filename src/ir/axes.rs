//! Which axes of its leaf a per-element value is constant along. `sum(x, axis=0)` keeps one
//! value per line of axis 0 (numpy's `keepdims=True`); a state slot that is only ever given
//! such values (Adafactor's row and column statistics, SM3's accumulators) is stored reduced
//! over those axes, so it costs what it holds. One home for the rule, used by instantiation
//! (to lay slots out) and by the plan (to compute such values apart, over their own shapes).

use super::{Graph, Level, Node, StepIr};

/// Bit `i` set: constant along axis `i`. Values that do not vary within a leaf have every bit.
pub type Collapsed = u32;

/// Every axis.
pub const ALL: Collapsed = u32::MAX;

/// The axes each node of `graph` is constant along in leaf group `g`, given each slot's there.
pub fn of_graph(graph: &Graph, slots: &[Collapsed], g: usize) -> Vec<Collapsed> {
    let mut out = vec![ALL; graph.nodes.len()];
    for (i, info) in graph.nodes.iter().enumerate() {
        if info.level != Level::Element {
            continue;
        }
        out[i] = match &info.node {
            Node::Grad | Node::Param => 0,
            Node::State(s) => slots.get(*s as usize).copied().unwrap_or(0),
            Node::Op(_, args) => args.iter().fold(ALL, |m, a| m & out[*a as usize]),
            Node::AxisReduce { arg, axes, .. } => out[*arg as usize] | axes,
            // Of its own shape: stored whole.
            Node::Matrix { .. } => 0,
            Node::Merge(parts) => parts.iter().find(|(gs, _)| gs.contains(g)).map_or(ALL, |(_, a)| out[*a as usize]),
            _ => 0,
        };
    }
    out
}

/// Sets each per-element slot's `collapsed`, group by group: the axes along which both its
/// initial value and every value the step gives it are constant there (a fixed point: a slot's
/// next value may read it). Leaves of one group differ in shape only where no body reads it,
/// and then no value is reduced over an axis of theirs.
pub fn assign(ir: &mut StepIr) {
    let n = ir.slots.len();
    let groups = ir.groups.leaves.len();
    let mut all: Vec<Vec<Collapsed>> = vec![Vec::new(); n];
    for g in 0..groups {
        let init = of_graph(&ir.init, &vec![0; n], g);
        let mut slots: Vec<Collapsed> =
            ir.slots.iter().map(|s| if s.level == Level::Element && s.groups.contains(g) { init[s.init as usize] } else { 0 }).collect();
        loop {
            let step = of_graph(&ir.graph, &slots, g);
            let next: Vec<Collapsed> = ir.slots.iter().zip(&slots).map(|(s, m)| m & step[s.next as usize]).collect();
            if next == slots {
                break;
            }
            slots = next;
        }
        for (s, m) in slots.into_iter().enumerate() {
            // A slot whose every value is the same over the whole leaf is still one per
            // element: per-leaf state is declared as such.
            all[s].push(if m != ALL { m } else { 0 });
        }
    }
    for (slot, c) in ir.slots.iter_mut().zip(all) {
        slot.collapsed = if c.iter().all(|m| *m == 0) { Vec::new() } else { c };
    }
}

/// The shape a value constant along `collapsed` is stored in, for a leaf of shape `shape`.
pub fn stored_shape(shape: &[usize], collapsed: Collapsed) -> Vec<usize> {
    shape.iter().enumerate().map(|(k, &n)| if collapsed & (1 << k) != 0 { 1 } else { n }).collect()
}

/// Elements of that shape.
pub fn stored_len(shape: &[usize], collapsed: Collapsed) -> usize {
    stored_shape(shape, collapsed).iter().product()
}

//! Which axes of its leaf a per-element value is constant along. `sum(x, axis=0)` keeps one
//! value per line of axis 0 (numpy's `keepdims=True`); a state slot that is only ever given
//! such values (Adafactor's row and column statistics, SM3's accumulators) is stored reduced
//! over those axes, so it costs what it holds. One home for the rule, used by instantiation
//! (to lay slots out) and by the plan (to run such values over whole leaves).

use super::{Graph, Level, Node, StepIr};

/// Bit `i` set: constant along axis `i`. Values that do not vary within a leaf have every bit.
pub type Collapsed = u32;

/// Every axis.
pub const ALL: Collapsed = u32::MAX;

/// The axes each node of `graph` is constant along, given each slot's.
pub fn of_graph(graph: &Graph, slots: &[Collapsed]) -> Vec<Collapsed> {
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
            Node::Merge(parts) => parts.iter().fold(ALL, |m, (_, a)| m & out[*a as usize]),
            _ => 0,
        };
    }
    out
}

/// Sets each per-element slot's `collapsed`: the axes along which both its initial value and
/// every value the step gives it are constant (a fixed point: a slot's next value may read it).
pub fn assign(ir: &mut StepIr) {
    let n = ir.slots.len();
    let init = of_graph(&ir.init, &vec![0; n]);
    let mut slots: Vec<Collapsed> =
        ir.slots.iter().map(|s| if s.level == Level::Element { init[s.init as usize] } else { 0 }).collect();
    loop {
        let step = of_graph(&ir.graph, &slots);
        let next: Vec<Collapsed> = ir.slots.iter().zip(&slots).map(|(s, m)| m & step[s.next as usize]).collect();
        if next == slots {
            break;
        }
        slots = next;
    }
    for (slot, m) in ir.slots.iter_mut().zip(slots) {
        // A slot whose every value is the same over the whole leaf is still one per element:
        // per-leaf state is declared as such.
        slot.collapsed = if slot.level == Level::Element && m != ALL { m } else { 0 };
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

/// Whether a slot is stored reduced for a leaf of `ndim` dimensions.
pub fn is_reduced(ndim: usize, collapsed: Collapsed) -> bool {
    (0..ndim).any(|k| collapsed & (1 << k) != 0)
}

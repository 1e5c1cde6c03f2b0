//! A transform over leaves of several shapes: its body is instantiated once per shape (a
//! *part* of its domain) when it reads them, and what the parts give is joined into one value
//! per state, refused where it cannot be (a uniform state that differs by shape) or where a
//! part gives values its leaves cannot hold (a matrix product of the wrong sides).

use std::collections::HashMap;

use super::value::IVal;
use super::{Ctx, Inst, Which};
use crate::check::program::{LeafProp, Value};
use crate::diagnostic::Diagnostic;
use crate::ir::op::Kind;
use crate::ir::{GroupSet, Level, Node, NodeId, SlotId, shapes};

impl Inst<'_> {
    /// The shape of the leaves of `ctx`'s domain, which a part's leaves share (one leaf of
    /// every element when flattened; none for an empty domain).
    pub fn part_shape(&self, ctx: &Ctx) -> Vec<usize> {
        let mut leaves = ctx.domain.iter().flat_map(|g| &self.groups.leaves[g]);
        if ctx.flat {
            return vec![leaves.map(|&l| self.layout.leaves[l].len()).sum()];
        }
        leaves.next().map(|&l| self.layout.leaves[l].shape.clone()).unwrap_or_default()
    }

    /// Refuses updates or state that a part of transform `name` gives in a shape its leaves
    /// do not have (a matrix product of the wrong sides).
    pub(super) fn check_shapes(&mut self, part: &Ctx, out: NodeId, before: &HashMap<SlotId, NodeId>, name: &str) {
        let leaf = self.part_shape(part);
        let mut given = vec![("its updates".to_string(), out)];
        for (slot, node) in &self.state {
            if before.get(slot) != Some(node) {
                given.push((format!("state `{}`", self.slots[*slot as usize].slot.name), *node));
            }
        }
        for (what, node) in given {
            let shape = shapes::of(&self.step, node, &leaf);
            if shape.as_deref().and_then(|s| shapes::broadcast(s, &leaf)) != Some(leaf.clone()) {
                let shown = shape.as_deref().map_or("shapes that do not broadcast together".into(), shapes::show);
                // (`error` points at the transform.)
                self.error(
                    Diagnostic::error("bad-shape", format!("`{name}` gives {what} of {shown} for a leaf of shape {}", shapes::show(&leaf)))
                        .with_help("updates and state have the shape of their leaf (or broadcast to it): transpose back, or check the sides of each `matmul`"),
                );
            }
        }
    }

    /// The parts of `ctx`'s domain whose leaves agree on the properties `reads` (one part, the
    /// whole domain, when nothing is read or every leaf agrees).
    pub(super) fn shape_parts(&self, reads: &[LeafProp], ctx: &Ctx) -> Vec<Ctx> {
        let mut parts: Vec<(Vec<Value>, GroupSet)> = Vec::new();
        if !reads.is_empty() && !ctx.flat {
            for g in ctx.domain.iter() {
                let Some(&leaf) = self.groups.leaves[g].first() else { continue };
                // (Groups differ in what the masks `selects` reads decide, or in something else.)
                let key: Vec<Value> = reads
                    .iter()
                    .map(|p| if *p == LeafProp::Selected { Value::Int(g as i64) } else { p.value(&self.layout.leaves[leaf].shape) })
                    .collect();
                match parts.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, gs)) => gs.insert(g),
                    None => parts.push((key, std::iter::once(g).collect())),
                }
            }
        }
        if parts.len() <= 1 {
            return vec![ctx.clone()];
        }
        parts.into_iter().map(|(_, domain)| Ctx { domain, ..ctx.clone() }).collect()
    }

    /// Sets the state after a transform whose parts ran from the same state and assigned
    /// `assigned` (by part): each slot any part changed is joined over the parts (a part that
    /// left it keeps it as it was).
    pub(super) fn join_assigned(&mut self, parts: &[Ctx], mut assigned: Vec<HashMap<SlotId, NodeId>>) {
        if assigned.len() == 1 {
            self.state = assigned.pop().unwrap_or_default();
            return;
        }
        let mut changed: Vec<SlotId> = assigned.iter().flat_map(|a| a.keys().copied()).collect();
        changed.sort_unstable();
        changed.dedup();
        for slot in changed {
            let pieces: Vec<(GroupSet, IVal)> = parts
                .iter()
                .zip(&assigned)
                .map(|(part, a)| (part.domain.clone(), IVal::Node(a.get(&slot).copied().unwrap_or_else(|| self.state_value(slot)))))
                .collect();
            let (name, level) = (self.slots[slot as usize].slot.name.clone(), self.slots[slot as usize].slot.level);
            if let IVal::Node(n) = self.piecewise(Which::Step, pieces, &name, level) {
                self.state.insert(slot, n);
            }
        }
    }

    /// One value of a state at `level` from its values on the parts of a domain: the value
    /// itself when they agree, else a merge (per leaf at least). A uniform state cannot differ
    /// by leaf: that is refused.
    pub(super) fn piecewise(&mut self, which: Which, parts: Vec<(GroupSet, IVal)>, what: &str, level: Level) -> IVal {
        let Some((_, first)) = parts.first().cloned() else { return IVal::Const(Value::None) };
        if parts.iter().all(|(_, v)| v.identical(&first)) {
            return first;
        }
        if let IVal::List(_) | IVal::Const(Value::List(_)) = first {
            let items = |v: &IVal| v.clone().items().unwrap_or_else(|| vec![v.clone()]);
            let n = items(&first).len();
            if parts.iter().all(|(_, v)| items(v).len() == n) {
                let merged = (0..n)
                    .map(|k| {
                        let pieces = parts.iter().map(|(g, v)| (g.clone(), items(v)[k].clone())).collect();
                        self.piecewise(which, pieces, what, level)
                    })
                    .collect();
                return IVal::List(merged);
            }
        }
        let mut nodes = Vec::new();
        for (g, v) in parts {
            match self.node_for(v, which) {
                Some(n) => nodes.push((g, self.f32_node(IVal::Node(n), which))),
                None => {
                    self.error(Diagnostic::error("shape-dependent-state", format!("`{what}` is a different kind of value for leaves of different shapes")));
                    return first;
                }
            }
        }
        if level == Level::Uniform {
            self.error(
                Diagnostic::error(
                    "shape-dependent-state",
                    format!("`{what}` is one value for all leaves, but is given a different value for leaves of different shapes"),
                )
                .with_help("keep it per leaf (`state s: leaf`) or per element (`state s: tensor`), or compute it without `ndim`, `size` or `shape`"),
            );
            return first;
        }
        let level = nodes.iter().map(|(_, n)| self.graph(which).level(*n)).chain([Level::Leaf]).max().unwrap_or(Level::Element);
        IVal::Node(self.graph(which).add(Node::Merge(nodes), level, Kind::F32))
    }
}

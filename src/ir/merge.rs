//! State that a pipeline keeps twice, kept once: slots that start equal and are updated by the
//! same function of equal state are one slot. In the standard library these are mostly step
//! counters (`chain(clip_by_global_norm(..), adamw(..))` keeps three); in user transforms they
//! can be whole per-element buffers, and then a pass moves one stream fewer.
//!
//! Equality is found by partition refinement, as in DFA minimisation: suppose every two slots
//! with the same level, kind, storage, groups and initial value are equal; substitute one for the others
//! in a hash-consed copy of the graph; split the slots whose next values still differ; repeat
//! until nothing splits. What is left equal stays equal at every step.

use std::collections::HashMap;

use super::{Graph, Node, NodeId, SlotId, StepIr};

/// Merges the equal slots of `ir`: one of each class is kept, and the others' names become its
/// aliases. The graph is rebuilt only when something merges.
pub fn merge_equal_slots(ir: &mut StepIr) {
    let n = ir.slots.len();
    // rep[s]: the slot that stands for `s` (the first of its class).
    let mut rep: Vec<SlotId> = (0..n as SlotId).collect();
    for s in 0..n {
        let a = &ir.slots[s];
        if let Some(r) = (0..s).find(|&r| {
            let b = &ir.slots[r];
            rep[r] as usize == r && (b.level, b.kind, b.storage, &b.groups, b.init) == (a.level, a.kind, a.storage, &a.groups, a.init)
        }) {
            rep[s] = r as SlotId;
        }
    }
    loop {
        if rep.iter().enumerate().all(|(s, r)| *r as usize == s) {
            return;
        }
        let mut copy = Copy::new(&ir.graph, |s| rep[s as usize]);
        let next: Vec<NodeId> = ir.slots.iter().map(|slot| copy.node(slot.next)).collect();
        // Split each class by the next value its members have under the substitution.
        let mut split = rep.clone();
        for s in 0..n {
            let r = rep[s] as usize;
            if r != s && next[s] != next[r] {
                // The first earlier member of the class with the same next value, or itself.
                split[s] = (r..s).find(|&t| rep[t] as usize == r && split[t] as usize == t && next[t] == next[s]).unwrap_or(s) as SlotId;
            }
        }
        if split == rep {
            break;
        }
        rep = split;
    }
    // Kept slots, renumbered in order; the others alias their class's kept slot.
    let kept: Vec<usize> = (0..n).filter(|&s| rep[s] as usize == s).collect();
    let index: HashMap<SlotId, SlotId> = kept.iter().enumerate().map(|(new, &old)| (old as SlotId, new as SlotId)).collect();
    let renumber = |s: SlotId| index.get(&rep[s as usize]).copied().unwrap_or(s);
    let mut copy = Copy::new(&ir.graph, renumber);
    let mut roots = vec![ir.updates];
    roots.extend(kept.iter().map(|&s| ir.slots[s].next));
    roots.extend(ir.named.iter().chain(&ir.locals).map(|n| n.node));
    copy.reachable_in_order(&roots);
    ir.updates = copy.node(ir.updates);
    for named in ir.named.iter_mut().chain(&mut ir.locals) {
        named.node = copy.node(named.node);
    }
    let mut slots = Vec::with_capacity(kept.len());
    for &s in &kept {
        let mut slot = ir.slots[s].clone();
        slot.next = copy.node(slot.next);
        slot.aliases.extend((0..n).filter(|&t| t != s && rep[t] as usize == s).map(|t| ir.slots[t].name.clone()));
        slots.push(slot);
    }
    ir.slots = slots;
    ir.graph = copy.into_graph();
    if let Some(eval) = &mut ir.eval {
        let mut copy = Copy::new(&eval.graph, renumber);
        copy.reachable_in_order(&[eval.weights]);
        eval.weights = copy.node(eval.weights);
        eval.graph = copy.into_graph();
    }
}

/// A copy of a graph with its state slots substituted, built through hash-consing so that
/// nodes equal after the substitution become one node.
struct Copy<'g, F> {
    from: &'g Graph,
    to: Graph,
    slot: F,
    done: HashMap<NodeId, NodeId>,
}

impl<'g, F: Fn(SlotId) -> SlotId> Copy<'g, F> {
    fn new(from: &'g Graph, slot: F) -> Self {
        Copy { from, to: Graph::default(), slot, done: HashMap::new() }
    }

    /// Copies the nodes `roots` depend on in their original order, so the copy numbers them as
    /// the original did (less what became unreachable or equal).
    fn reachable_in_order(&mut self, roots: &[NodeId]) {
        let mut seen = vec![false; self.from.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id as usize], true) {
                continue;
            }
            stack.extend(self.from.get(id).node.args());
        }
        for (id, _) in seen.iter().enumerate().filter(|(_, s)| **s) {
            self.node(id as NodeId);
        }
    }

    /// The copy of `id` (its operands first).
    fn node(&mut self, id: NodeId) -> NodeId {
        if let Some(&done) = self.done.get(&id) {
            return done;
        }
        let from = self.from;
        let info = from.get(id);
        let node = match &info.node {
            Node::State(s) => Node::State((self.slot)(*s)),
            other => other.map_args(|x| self.node(x)),
        };
        let outer = self.to.set_origin(self.from.origin(id));
        let copied = self.to.add(node, info.level, info.kind);
        self.to.set_origin(outer);
        self.done.insert(id, copied);
        copied
    }

    fn into_graph(self) -> Graph {
        self.to
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::instantiate::instantiate;
    use crate::ir::plan::{self, Plan};
    use crate::ir::{Layout, StepIr};

    fn step_ir(text: &str) -> StepIr {
        let (_, checked) = crate::check_str("merge.opt", text);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let layout = Layout::parse("w:4x3,b:3").expect("a layout");
        instantiate(&checked.program, &layout).expect("instantiates")
    }

    fn step_plan(ir: &StepIr) -> Plan {
        plan::plan(&ir.graph, ir.groups.len(), plan::step_outputs(ir, plan::Target::Params))
    }

    /// A transform with two tensor states and two counters, updated as given.
    fn two_of_each(a: &str, b: &str, k: &str, j: &str) -> String {
        format!(
            "transform t() {{\n    state a: tensor = 0\n    state b: tensor = {}\n    state k: int = 0\n    state j: int = 0\n    \
             update(g) {{\n        k = {k}\n        j = {j}\n        a = {a}\n        b = {b}\n        a + b + float(k) + float(j)\n    }}\n}}\nt()\n",
            if b.contains("init1") { "1" } else { "0" },
            b = b.replace("init1", ""),
        )
    }

    #[test]
    fn equal_state_is_kept_once_and_answers_to_both_names() {
        let ir = step_ir(&two_of_each("0.9 * a + g", "0.9 * b + g", "k + 1", "j + 1"));
        let names: Vec<(&str, &[String])> = ir.slots.iter().map(|s| (s.name.as_str(), s.aliases.as_slice())).collect();
        assert_eq!(names, [("a", &["b".to_string()][..]), ("k", &["j".to_string()][..])]);
        // One tensor stream of state instead of two: grad, param, a, each read, param and a written.
        assert_eq!(step_plan(&ir).bytes_per_element(&ir.group_elements()), f64::from(4 * (3 + 2)));
    }

    #[test]
    fn state_that_differs_in_its_update_or_its_start_stays_apart() {
        for (a, b, k, j) in [
            ("0.9 * a + g", "0.8 * b + g", "k + 1", "j + 2"),
            // Equal updates, different starting values.
            ("0.9 * a + g", "init10.9 * b + g", "k + 1", "if j > 3 { 0 } else { j + 1 }"),
            // Each reads the other: still unequal, as `a` starts 0 and `b` starts 1.
            ("b + g", "init1a + g", "j + 1", "k + 2"),
        ] {
            let ir = step_ir(&two_of_each(a, b, k, j));
            assert_eq!(ir.slots.len(), 4, "{a} / {b} / {k} / {j}: {:?}", ir.slots);
            assert!(ir.slots.iter().all(|s| s.aliases.is_empty()));
        }
    }

    #[test]
    fn state_equal_through_each_other_is_merged() {
        // `a` and `b` trade places every step but start equal, so they are always equal.
        let text = "transform t() {\n    state a: tensor = 0\n    state b: tensor = 0\n    update(g) {\n        let old = a\n        \
                    a = 0.5 * b + g\n        b = 0.5 * old + g\n        a + b\n    }\n}\nt()\n";
        let ir = step_ir(text);
        assert_eq!(ir.slots.len(), 1, "{:?}", ir.slots);
    }
}

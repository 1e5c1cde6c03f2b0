//! The pass plan: where and when each node of a graph is computed. A reduction over values of
//! this step is a barrier; everything between barriers fuses into one pass over memory. Values
//! needed again after a barrier are recomputed from inputs that are still unchanged (state is
//! written only in the last pass), and the plan records that choice and its reason.

use std::collections::{BTreeSet, HashMap};

use super::groups::GroupSet;
use super::axes::{self, Collapsed};
use super::{Graph, Level, Node, NodeId, SlotId, StepIr, Storage};

/// Elements per block: the unit of threading and of reduction partials.
pub const BLOCK: usize = 4096;
/// Accumulators inside a block: element `i` of a block goes to accumulator `i % LANES`, and the
/// accumulators are combined pairwise, so the interpreter and the JIT add in the same order.
/// Sixteen are four `f32x4` chains: with fewer, a sum of squares waits on the latency of its
/// adds and runs slower than memory brings the elements.
pub const LANES: usize = 16;

/// What a graph must produce.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Per-element values to write: the updates (applied to the params) and element slots.
    pub element: Vec<(Target, NodeId, GroupSet)>,
    /// Per-leaf values to write after the passes.
    pub leaf: Vec<(SlotId, NodeId, GroupSet)>,
    /// Uniform values to write (or read) after the passes.
    pub uniform: Vec<(Option<SlotId>, NodeId)>,
    /// How each slot stores its values, by slot id (float32 where missing).
    pub storage: Vec<Storage>,
    /// The axes each slot is stored reduced over, by slot id, then group (none where missing).
    pub collapsed: Vec<Vec<Collapsed>>,
    /// The number of axes of each group's leaves (0 where missing or where they differ).
    pub ranks: Vec<usize>,
}

impl Outputs {
    /// How slot `s` stores its values.
    pub fn storage(&self, s: SlotId) -> Storage {
        self.storage.get(s as usize).copied().unwrap_or_default()
    }

    /// The axes slot `s` is stored reduced over in group `g`.
    pub fn collapsed_in(&self, s: SlotId, g: usize) -> Collapsed {
        self.collapsed.get(s as usize).and_then(|c| c.get(g)).copied().unwrap_or(0)
    }
}

/// Where a per-element output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Added to the parameters (`param + update`, in float32).
    Params,
    /// The updates, written to buffers of their own; the parameters are only read (for a
    /// caller that applies updates itself, as Optax's `update` does).
    Updates,
    Slot(SlotId),
}

/// The element program of one leaf group in one pass.
#[derive(Clone, Debug, Default)]
pub struct GroupProgram {
    pub group: usize,
    /// Per-element nodes, operands first.
    pub nodes: Vec<NodeId>,
    /// Reductions whose per-block partials this program computes: (reduction node, its arg).
    pub reductions: Vec<(NodeId, NodeId)>,
    /// In the last pass: what to write, from which node.
    pub writes: Vec<(Target, NodeId)>,
    /// Element streams this program reads and writes: only its group's state, so a parameter
    /// group costs the bytes of its own transform.
    pub stream_reads: Vec<String>,
    pub stream_writes: Vec<String>,
    /// Bytes those streams move per element.
    pub bytes: usize,
    /// A row program: its group keeps values reduced over axes of its leaves, so it runs over
    /// each leaf row by row (rows of the last axis, in blocks of at most `BLOCK`), reading
    /// the reduced values it needs at each element's row and column.
    pub rows: bool,
    /// Values stored reduced over axes (a row program's), computed before the pass, that it
    /// reads element by element: (node, the axes it is constant along).
    pub reduced: Vec<(NodeId, Collapsed)>,
    /// Reductions over axes of the leaf whose values this program accumulates (a row
    /// program's): (reduction node, its argument, the axes of its result).
    pub axis_reductions: Vec<(NodeId, NodeId, Collapsed)>,
    /// The number of axes of the group's leaves (a row program's).
    pub rank: usize,
}

impl GroupProgram {
    /// Whether a value of a row program, constant along `axes`, is constant along each row
    /// (one value per row) rather than varying along it.
    pub fn per_row(&self, axes: Collapsed) -> bool {
        self.rank == 0 || axes & (1 << (self.rank - 1).min(31)) != 0
    }
}

/// One pass over the parameter memory.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    /// Uniform nodes computed before the pass, operands first.
    pub uniform_before: Vec<NodeId>,
    /// Per-leaf nodes computed before the pass (for the groups given), operands first.
    pub leaf_before: Vec<(NodeId, GroupSet)>,
    /// Values stored reduced over axes of the leaves (of row programs' groups) computed before
    /// the pass, leaf by leaf over their reduced shapes, by every backend alike: (node, group).
    pub reduced_before: Vec<(NodeId, usize)>,
    pub programs: Vec<GroupProgram>,
    /// The programs of groups that multiply matrices: run over whole leaves, by every backend
    /// alike (`interp::tensor`).
    pub tensor_programs: Vec<GroupProgram>,
    /// Element streams read and written by any of its programs (for `emit --plan`).
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    /// Why this pass exists.
    pub reason: String,
}

/// A graph's plan: passes, then the uniform and per-leaf work after the last one.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub passes: Vec<Pass>,
    /// Values stored reduced over axes computed after the passes (what only state needs):
    /// (node, group), as `Pass::reduced_before`.
    pub reduced_after: Vec<(NodeId, usize)>,
    /// Slots stored reduced over axes, written after the passes from their reduced values:
    /// (slot, node, group).
    pub reduced_writes: Vec<(SlotId, NodeId, usize)>,
    pub uniform_after: Vec<NodeId>,
    pub leaf_after: Vec<(NodeId, GroupSet)>,
    pub outputs: Outputs,
    /// Element values recomputed in a later pass, with the reason.
    pub recomputed: Vec<(NodeId, String)>,
}

impl Plan {
    /// Bytes moved per parameter element by all passes (4 per float read or written, 2 per
    /// bfloat16), on
    /// average over a layout whose groups hold `group_elements` elements each: an element
    /// moves the streams of its own group's programs.
    pub fn bytes_per_element(&self, group_elements: &[usize]) -> f64 {
        let total: usize = group_elements.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let bytes: usize = self
            .passes
            .iter()
            .flat_map(|pass| pass.programs.iter().chain(&pass.tensor_programs))
            .map(|p| p.bytes * group_elements.get(p.group).copied().unwrap_or(0))
            .sum();
        bytes as f64 / total as f64
    }
}

/// The outputs of a step: updates (to `updates`: [`Target::Params`] or [`Target::Updates`]),
/// every slot's next value.
pub fn step_outputs(ir: &StepIr, updates: Target) -> Outputs {
    let mut out = slot_outputs(ir);
    out.element.push((updates, ir.updates, ir.groups.all()));
    for (i, s) in ir.slots.iter().enumerate() {
        let id = i as SlotId;
        match s.level {
            Level::Element => out.element.push((Target::Slot(id), s.next, s.groups.clone())),
            Level::Leaf => out.leaf.push((id, s.next, s.groups.clone())),
            Level::Uniform => out.uniform.push((Some(id), s.next)),
        }
    }
    for n in &ir.named {
        out.uniform.push((None, n.node));
    }
    out
}

/// The outputs of initialisation: every slot's initial value.
pub fn init_outputs(ir: &StepIr) -> Outputs {
    let mut out = slot_outputs(ir);
    for (i, s) in ir.slots.iter().enumerate() {
        let id = i as SlotId;
        match s.level {
            Level::Element => out.element.push((Target::Slot(id), s.init, s.groups.clone())),
            Level::Leaf => out.leaf.push((id, s.init, s.groups.clone())),
            Level::Uniform => out.uniform.push((Some(id), s.init)),
        }
    }
    out
}

/// Outputs with no values yet, how each slot of `ir` is stored, and the rank of each group.
fn slot_outputs(ir: &StepIr) -> Outputs {
    let rank = |leaves: &Vec<usize>| {
        let mut ranks = leaves.iter().map(|&l| ir.layout.leaves[l].shape.len());
        let first = ranks.next().unwrap_or(0);
        if ranks.all(|r| r == first) { first } else { 0 }
    };
    Outputs {
        storage: ir.slots.iter().map(|s| s.storage).collect(),
        collapsed: ir.slots.iter().map(|s| s.collapsed.clone()).collect(),
        ranks: ir.groups.leaves.iter().map(rank).collect(),
        ..Outputs::default()
    }
}

/// The node a piecewise value stands for in group `g`, looking through merges.
pub fn resolve(graph: &Graph, mut id: NodeId, g: usize) -> Option<NodeId> {
    loop {
        match &graph.get(id).node {
            Node::Merge(parts) => id = parts.iter().find(|(gs, _)| gs.contains(g))?.1,
            _ => return Some(id),
        }
    }
}

/// Plans `graph` for `outputs` over `n_groups` leaf groups.
pub fn plan(graph: &Graph, n_groups: usize, outputs: Outputs) -> Plan {
    // Demand: which nodes are needed, for which groups.
    let mut uniform: BTreeSet<NodeId> = BTreeSet::new();
    let mut per_group: HashMap<NodeId, BTreeSet<usize>> = HashMap::new();
    let mut roots: Vec<(NodeId, Option<usize>)> = Vec::new();
    let per_group_outputs = outputs.element.iter().map(|(_, n, g)| (n, g)).chain(outputs.leaf.iter().map(|(_, n, g)| (n, g)));
    for (n, groups) in per_group_outputs {
        for g in groups.iter() {
            roots.push((*n, Some(g)));
        }
    }
    for (_, n) in &outputs.uniform {
        roots.push((*n, None));
    }
    // Reductions with the groups they need their argument in.
    let mut reductions: Vec<(NodeId, NodeId, usize)> = Vec::new();
    let mut stack = roots;
    let mut seen: BTreeSet<(NodeId, Option<usize>)> = BTreeSet::new();
    // Groups that reduce over axes or read state kept reduced: their programs run row by row,
    // or over whole leaves if they multiply matrices.
    let mut on_axes: BTreeSet<usize> = BTreeSet::new();
    // Groups that multiply matrices: their programs run over whole leaves (`interp::tensor`);
    // the other groups on axes run row by row.
    let mut with_matrix: BTreeSet<usize> = BTreeSet::new();
    while let Some((id, g)) = stack.pop() {
        let info = graph.get(id);
        let g = if info.level == Level::Uniform { None } else { g };
        if !seen.insert((id, g)) {
            continue;
        }
        match g {
            None => {
                uniform.insert(id);
            }
            Some(g) => {
                per_group.entry(id).or_default().insert(g);
            }
        }
        match &info.node {
            Node::Op(_, args) => stack.extend(args.iter().map(|a| (*a, g))),
            Node::Merge(parts) => {
                if let Some(g) = g
                    && let Some((_, part)) = parts.iter().find(|(gs, _)| gs.contains(g))
                {
                    stack.push((*part, Some(g)));
                }
            }
            Node::Reduce { arg, groups, .. } => {
                for h in groups.iter() {
                    reductions.push((id, *arg, h));
                    stack.push((*arg, Some(h)));
                }
            }
            Node::LeafReduce { arg, .. } => {
                if let Some(g) = g {
                    reductions.push((id, *arg, g));
                    stack.push((*arg, Some(g)));
                }
            }
            Node::AxisReduce { arg, .. } => {
                if let Some(g) = g {
                    stack.push((*arg, Some(g)));
                    on_axes.insert(g);
                }
            }
            Node::Matrix { args, .. } => {
                if let Some(g) = g {
                    stack.extend(args.iter().map(|a| (*a, Some(g))));
                    on_axes.insert(g);
                    with_matrix.insert(g);
                }
            }
            Node::State(s) => {
                if let Some(g) = g
                    && outputs.collapsed_in(*s, g) != 0
                {
                    on_axes.insert(g);
                }
            }
            _ => {}
        }
    }
    reductions.sort_unstable();
    reductions.dedup();
    for (target, _, groups) in &outputs.element {
        if let Target::Slot(s) = target {
            on_axes.extend(groups.iter().filter(|g| outputs.collapsed_in(*s, *g) != 0));
        }
    }

    // Row groups, and the axes each of their values is constant along.
    let row_groups: BTreeSet<usize> = on_axes.difference(&with_matrix).copied().collect();
    let masks: HashMap<usize, Vec<Collapsed>> = row_groups
        .iter()
        .map(|&g| {
            let slots: Vec<Collapsed> = (0..outputs.collapsed.len()).map(|s| outputs.collapsed_in(s as SlotId, g)).collect();
            (g, axes::of_graph(graph, &slots, g))
        })
        .collect();
    let mask = |n: NodeId, g: usize| masks.get(&g).map_or(0, |m| m[n as usize]);
    // A row group's value stored reduced over some axes (computed apart, over its own shape),
    // and one of the leaf's full shape (computed by the row program).
    let reduced_in = |n: NodeId, g: usize| row_groups.contains(&g) && graph.level(n) == Level::Element && mask(n, g) != 0;
    let full_in = |n: NodeId, g: usize| graph.level(n) == Level::Element && mask(n, g) == 0;
    // Reductions over axes of full values, by row group: accumulated by a pass, a barrier.
    let mut axis_reductions: Vec<(NodeId, NodeId, usize)> = Vec::new();
    for (&n, gs) in &per_group {
        if let Node::AxisReduce { arg, .. } = &graph.get(n).node {
            for &g in gs.iter().filter(|g| row_groups.contains(g)) {
                if let Some(a) = resolve(graph, *arg, g).filter(|a| full_in(*a, g)) {
                    axis_reductions.push((n, a, g));
                }
            }
        }
    }
    axis_reductions.sort_unstable();
    let barriers: BTreeSet<NodeId> = axis_reductions.iter().map(|(n, _, _)| *n).collect();
    let phase = phases(graph, &barriers);

    // Passes: element work of phase k runs in pass k; outputs are written in the last pass.
    let element_phase = |id: NodeId| phase[id as usize];
    // Slots stored reduced are written after the passes: they need passes only for the
    // reductions over axes they are computed from (SM3's accumulators are accumulated by the
    // pass that applies the update).
    let reduced_slot = |t: &Target, g: usize| matches!(t, Target::Slot(s) if row_groups.contains(&g) && outputs.collapsed_in(*s, g) != 0);
    let last_output_phase = outputs
        .element
        .iter()
        .flat_map(|(t, n, gs)| gs.iter().filter(move |g| !reduced_slot(t, *g)).filter_map(move |g| resolve(graph, *n, g)))
        .map(element_phase)
        .max();
    let last_reduction_phase = reductions
        .iter()
        .filter(|(_, arg, _)| graph.level(*arg) == Level::Element)
        .chain(&axis_reductions)
        .map(|(_, arg, _)| element_phase(*arg))
        .max();
    let n_passes = match (last_output_phase, last_reduction_phase) {
        (None, None) => 0,
        (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)) + 1,
    };
    let last = n_passes.saturating_sub(1);
    let mut passes: Vec<Pass> = (0..n_passes).map(|_| Pass::default()).collect();
    let mut recomputed = Vec::new();
    let mut computed: HashMap<NodeId, usize> = HashMap::new();
    let mut reduced_writes = Vec::new();
    for (k, pass) in passes.iter_mut().enumerate() {
        for g in 0..n_groups {
            let mut roots = Vec::new();
            let mut program = GroupProgram { group: g, ..GroupProgram::default() };
            for &(red, arg, h) in &reductions {
                if h == g && graph.level(arg) == Level::Element && element_phase(arg) == k
                    && let Some(a) = resolve(graph, arg, g) {
                        program.reductions.push((red, a));
                        roots.push(a);
                    }
            }
            let rows = row_groups.contains(&g);
            for &(red, arg, h) in &axis_reductions {
                if h == g && element_phase(arg) == k {
                    program.axis_reductions.push((red, arg, mask(red, g)));
                    roots.push(arg);
                }
            }
            if k == last {
                for (target, n, gs) in &outputs.element {
                    if gs.contains(g)
                        && let Some(a) = resolve(graph, *n, g)
                    {
                        // A slot a group leaves as it was (`if ndim == 2 { r = ... }` on other
                        // leaves) needs no write.
                        if matches!((target, &graph.get(a).node), (Target::Slot(s), Node::State(t)) if s == t) {
                            continue;
                        }
                        // A slot stored reduced is written from its reduced value, after the passes.
                        if let Target::Slot(s) = target
                            && reduced_slot(target, g)
                        {
                            reduced_writes.push((*s, a, g));
                            continue;
                        }
                        program.writes.push((*target, a));
                        roots.push(a);
                    }
                }
            }
            if roots.is_empty() {
                continue;
            }
            let (nodes, reduced) = element_closure(graph, &roots, g, |n| reduced_in(n, g));
            program.nodes = nodes;
            program.rows = rows;
            program.rank = outputs.ranks.get(g).copied().unwrap_or(0);
            program.reduced = reduced.into_iter().map(|n| (n, mask(n, g))).collect();
            for &n in &program.nodes {
                match computed.get(&n) {
                    Some(&first) if first < k && is_computed(graph, n) && !recomputed.iter().any(|(m, _)| *m == n) => {
                        recomputed.push((
                            n,
                            format!("computed in pass {first} and again in pass {k}: its inputs are unchanged until the last pass writes state, so recomputing costs no extra memory traffic, while keeping it would write and read it once more"),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        computed.insert(n, k);
                    }
                }
            }
            if with_matrix.contains(&g) { pass.tensor_programs.push(program) } else { pass.programs.push(program) }
        }
    }
    // Reduced values, before the first pass that can compute them (after the passes that
    // accumulate the reductions they read): those the programs read, those written to state,
    // and what they are computed from.
    let mut stack: Vec<(NodeId, usize)> = passes
        .iter()
        .flat_map(|p| p.programs.iter().flat_map(|p| p.reduced.iter().map(|(n, _)| (*n, p.group))))
        .chain(reduced_writes.iter().map(|(_, n, g)| (*n, *g)))
        .collect();
    let mut reduced: BTreeSet<(NodeId, usize)> = BTreeSet::new();
    while let Some((n, g)) = stack.pop() {
        if !reduced_in(n, g) || barriers.contains(&n) || !reduced.insert((n, g)) {
            continue;
        }
        let args: Vec<NodeId> = match &graph.get(n).node {
            Node::Op(_, args) => args.clone(),
            Node::AxisReduce { arg, .. } => vec![*arg],
            Node::Merge(_) => resolve(graph, n, g).into_iter().collect(),
            _ => Vec::new(),
        };
        stack.extend(args.into_iter().filter_map(|a| resolve(graph, a, g)).map(|a| (a, g)));
    }
    let mut reduced_after = Vec::new();
    for (n, g) in reduced {
        match passes.get_mut(phase[n as usize]) {
            Some(pass) => pass.reduced_before.push((n, g)),
            None => reduced_after.push((n, g)),
        }
    }
    // Uniform and per-leaf work goes before the first pass that needs it.
    let before = |n: NodeId| phase[n as usize].min(n_passes);
    let mut uniform_after = Vec::new();
    for &n in &uniform {
        if matches!(graph.get(n).node, Node::Const(_)) {
            continue;
        }
        let k = before(n);
        if k < n_passes { passes[k].uniform_before.push(n) } else { uniform_after.push(n) }
    }
    let mut leaf_after = Vec::new();
    let mut leaf_nodes: Vec<(&NodeId, &BTreeSet<usize>)> =
        per_group.iter().filter(|(n, _)| graph.level(**n) == Level::Leaf).collect();
    leaf_nodes.sort();
    for (n, gs) in leaf_nodes {
        let set: GroupSet = gs.iter().copied().collect();
        let k = before(*n);
        if k < n_passes { passes[k].leaf_before.push((*n, set)) } else { leaf_after.push((*n, set)) }
    }
    for (k, pass) in passes.iter_mut().enumerate() {
        describe_streams(graph, pass, k == last, &outputs.storage);
        pass.reason = if k == last {
            "applies the updates and writes the new state".to_string()
        } else {
            let what: Vec<String> = pass
                .programs
                .iter()
                .chain(&pass.tensor_programs)
                .flat_map(|p| p.reductions.iter().map(|(r, _)| *r).chain(p.axis_reductions.iter().map(|(r, _, _)| *r)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|r| format!("%{r}"))
                .collect();
            format!("computes the reductions {} that later values of this step depend on (a barrier)", what.join(", "))
        };
    }
    Plan { passes, reduced_after, reduced_writes, uniform_after, leaf_after, outputs, recomputed }
}

/// Whether a node is arithmetic (not a plain input).
fn is_computed(graph: &Graph, n: NodeId) -> bool {
    matches!(graph.get(n).node, Node::Op(..))
}

/// The phase of every node: how many barriers it sits behind. Reductions of per-element
/// values are barriers, and so are the reductions over axes in `barriers` (of a row group's
/// full values).
fn phases(graph: &Graph, barriers: &BTreeSet<NodeId>) -> Vec<usize> {
    let mut phase = vec![0usize; graph.nodes.len()];
    for (i, info) in graph.nodes.iter().enumerate() {
        phase[i] = match &info.node {
            Node::Op(_, args) => args.iter().map(|a| phase[*a as usize]).max().unwrap_or(0),
            Node::Merge(parts) => parts.iter().map(|(_, a)| phase[*a as usize]).max().unwrap_or(0),
            Node::AxisReduce { arg, .. } if barriers.contains(&(i as NodeId)) => phase[*arg as usize] + 1,
            // Of a reduced value (computed between passes), or in a whole-leaf program: no pass
            // of its own.
            Node::AxisReduce { arg, .. } => phase[*arg as usize],
            Node::Matrix { args, .. } => args.iter().map(|a| phase[*a as usize]).max().unwrap_or(0),
            Node::Reduce { arg, .. } | Node::LeafReduce { arg, .. } => {
                let a = phase[*arg as usize];
                if graph.level(*arg) == Level::Element { a + 1 } else { a }
            }
            _ => 0,
        };
    }
    phase
}

/// The per-element nodes `roots` need in group `g`, operands first, short of those `stop`
/// says are computed elsewhere, which come second.
fn element_closure(graph: &Graph, roots: &[NodeId], g: usize, stop: impl Fn(NodeId) -> bool) -> (Vec<NodeId>, Vec<NodeId>) {
    let mut order = Vec::new();
    let mut stopped = Vec::new();
    let mut done: BTreeSet<NodeId> = BTreeSet::new();
    let mut stack: Vec<(NodeId, bool)> = roots.iter().rev().map(|r| (*r, false)).collect();
    while let Some((id, expanded)) = stack.pop() {
        if done.contains(&id) {
            continue;
        }
        if stop(id) {
            done.insert(id);
            stopped.push(id);
            continue;
        }
        if expanded {
            done.insert(id);
            order.push(id);
            continue;
        }
        stack.push((id, true));
        let args: &[NodeId] = match &graph.get(id).node {
            Node::Op(_, args) | Node::Matrix { args, .. } => args,
            Node::AxisReduce { arg, .. } => std::slice::from_ref(arg),
            _ => &[],
        };
        {
            for a in args.iter().rev() {
                if let Some(a) = resolve(graph, *a, g)
                    && graph.level(a) == Level::Element
                    && !done.contains(&a)
                {
                    stack.push((a, false));
                }
            }
        }
    }
    order.retain(|n| graph.level(*n) == Level::Element);
    (order, stopped)
}

/// Fills in the element streams each program of a pass reads and writes, and the pass's.
fn describe_streams(graph: &Graph, pass: &mut Pass, last: bool, storage: &[Storage]) {
    let slot = |s: SlotId| match storage.get(s as usize).copied().unwrap_or_default() {
        Storage::F32 => format!("state#{s}"),
        other => format!("state#{s}:{}", other.name()),
    };
    let mut reads: BTreeSet<String> = BTreeSet::new();
    let mut writes: BTreeSet<String> = BTreeSet::new();
    for p in pass.programs.iter_mut().chain(&mut pass.tensor_programs) {
        let mut own_reads: BTreeSet<String> = BTreeSet::new();
        let mut own_writes: BTreeSet<String> = BTreeSet::new();
        for &n in &p.nodes {
            match &graph.get(n).node {
                Node::Grad => {
                    own_reads.insert("grad".into());
                }
                Node::Param => {
                    own_reads.insert("param".into());
                }
                Node::State(s) => {
                    own_reads.insert(slot(*s));
                }
                _ => {}
            }
        }
        if last {
            for (t, _) in &p.writes {
                match t {
                    Target::Params => {
                        own_reads.insert("param".into());
                        own_writes.insert("param".into());
                    }
                    Target::Updates => {
                        own_writes.insert("update".into());
                    }
                    Target::Slot(s) => {
                        own_writes.insert(slot(*s));
                    }
                }
            }
        }
        let bytes = |name: &String| if name.ends_with(Storage::Bf16.name()) { Storage::Bf16.bytes() } else { Storage::F32.bytes() };
        p.bytes = own_reads.iter().chain(&own_writes).map(bytes).sum();
        reads.extend(own_reads.iter().cloned());
        writes.extend(own_writes.iter().cloned());
        p.stream_reads = own_reads.into_iter().collect();
        p.stream_writes = own_writes.into_iter().collect();
    }
    pass.reads = reads.into_iter().collect();
    pass.writes = writes.into_iter().collect();
}

//! A group program resolved for code generation: where each operand of an element
//! computation comes from (a node computed earlier, a constant, an input of the task's row), the
//! streams it loads and stores, and a row program's reduced values and accumulations.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{ProgramInfo, Stream};
use crate::ir::plan::{GroupProgram, Target, resolve};
use crate::ir::{Graph, Level, Node, NodeId, Reduce, Storage};

/// Where an operand of an element computation comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Operand {
    /// An element value computed earlier in the program.
    Node(NodeId),
    /// A constant of the graph (or 0, where the interpreter broadcasts nothing).
    Const(f32),
    /// A uniform or per-leaf value: entry of the task's input row.
    Input(usize),
}

/// How an element node is computed.
#[derive(Clone, Debug)]
pub(super) enum Elem {
    Load(Stream),
    Op(crate::ir::Op, Vec<Operand>),
    /// A value the interpreter broadcasts.
    Broadcast(Operand),
}

/// A group program, resolved for code generation.
pub(super) struct Program {
    pub info: ProgramInfo,
    pub nodes: Vec<(NodeId, Elem)>,
    pub reductions: Vec<(Reduce, Operand)>,
    pub writes: Vec<(Target, Operand)>,
    /// Reductions over axes accumulated element by element into a reduced stream.
    pub accumulates: Vec<(Reduce, Stream, Operand)>,
    /// The storage type of each state stream that is not float32.
    pub storage: HashMap<Stream, Storage>,
}

impl Program {
    /// The streams the program stores to: its write targets and accumulated reduced streams.
    pub fn written(&self) -> impl Iterator<Item = Stream> + '_ {
        self.writes.iter().map(|(t, _)| Stream::of(*t)).chain(self.accumulates.iter().map(|a| a.1))
    }

    /// How stream `s` stores its elements.
    pub fn storage(&self, s: Stream) -> Storage {
        self.storage.get(&s).copied().unwrap_or_default()
    }
}

/// Resolves a group program's operands: element nodes it computes, constants, inputs.
pub(super) fn analyse(graph: &Graph, program: &GroupProgram, slot_storage: &[Storage]) -> Program {
    let g = program.group;
    let mut computed: HashSet<NodeId> = HashSet::new();
    let mut inputs: Vec<NodeId> = Vec::new();
    let mut streams: BTreeSet<Stream> = BTreeSet::new();
    let mut operand = |computed: &HashSet<NodeId>, a: NodeId| -> Operand {
        let a = resolve(graph, a, g).unwrap_or(a);
        if computed.contains(&a) {
            return Operand::Node(a);
        }
        if let Some(c) = graph.as_const(a) {
            return Operand::Const(c.f());
        }
        // A row program's reduced value with one value per row is an input, as a leaf's is.
        let per_row = program.reduced.iter().any(|(n, axes)| *n == a && program.per_row(*axes));
        match graph.level(a) {
            // The interpreter broadcasts 0 for an element value it has not computed.
            Level::Element if !per_row => Operand::Const(0.0),
            Level::Element | Level::Uniform | Level::Leaf => {
                let k = inputs.iter().position(|n| *n == a).unwrap_or_else(|| {
                    inputs.push(a);
                    inputs.len() - 1
                });
                Operand::Input(k)
            }
        }
    };
    let mut nodes = Vec::new();
    // A row program's reduced values: those that vary along a row are streams, the others one
    // input per task (the task's row's value).
    let mut reduced = Vec::new();
    for &(n, axes) in &program.reduced {
        if program.per_row(axes) {
            operand(&computed, n);
        } else {
            let stream = Stream::Reduced(reduced.len() as u32);
            reduced.push((n, axes, None));
            streams.insert(stream);
            computed.insert(n);
            nodes.push((n, Elem::Load(stream)));
        }
    }
    for &n in &program.nodes {
        let elem = match &graph.get(n).node {
            Node::Grad => Elem::Load(Stream::Grads),
            Node::Param => Elem::Load(Stream::Params),
            Node::State(s) => Elem::Load(Stream::Slot(*s)),
            Node::Op(op, args) => Elem::Op(*op, args.iter().map(|a| operand(&computed, *a)).collect()),
            _ => Elem::Broadcast(operand(&computed, n)),
        };
        if let Elem::Load(s) = elem {
            streams.insert(s);
        }
        computed.insert(n);
        nodes.push((n, elem));
    }
    let mut reductions = Vec::new();
    let mut reduction_ids = Vec::new();
    for &(red, arg) in &program.reductions {
        let kind = match &graph.get(red).node {
            Node::Reduce { kind, .. } | Node::LeafReduce { kind, .. } => *kind,
            _ => continue,
        };
        reductions.push((kind, operand(&computed, arg)));
        reduction_ids.push((red, kind));
    }
    // Reductions over axes: over the last one, one partial per task (a block of one row);
    // over others only, accumulated element by element into a reduced stream.
    let mut accumulates = Vec::new();
    for &(red, arg, axes) in &program.axis_reductions {
        let Node::AxisReduce { kind, .. } = &graph.get(red).node else { continue };
        if program.per_row(axes) {
            reductions.push((*kind, operand(&computed, arg)));
            reduction_ids.push((red, *kind));
        } else {
            let stream = Stream::Reduced(reduced.len() as u32);
            reduced.push((red, axes, Some(*kind)));
            streams.insert(stream);
            accumulates.push((*kind, stream, operand(&computed, arg)));
        }
    }
    let mut writes = Vec::new();
    for &(target, node) in &program.writes {
        streams.insert(Stream::of(target));
        writes.push((target, operand(&computed, node)));
    }
    let writes_params = writes.iter().any(|(t, _)| *t == Target::Params);
    let storage = streams
        .iter()
        .filter_map(|&st| match st {
            Stream::Slot(k) => Some((st, slot_storage.get(k as usize).copied().unwrap_or_default())),
            _ => None,
        })
        .filter(|(_, storage)| *storage != Storage::F32)
        .collect();
    let axis_reductions = program.axis_reductions.iter().map(|(red, _, axes)| (*red, *axes)).collect();
    let streams = streams.into_iter().collect();
    let info = ProgramInfo { group: g, inputs, reductions: reduction_ids, streams, writes_params, rows: program.rows, reduced, axis_reductions };
    Program { info, nodes, reductions, writes, accumulates, storage }
}

//! The reference interpreter of a [`Plan`]: uniform work on scalars, per-leaf work leaf by
//! leaf, and each pass block by block over float32 slices, in the block order the compiled code
//! uses, with reductions combined from per-block partials in leaf and block order.
//!
//! Architecture invariant: this is the semantic reference; every faster backend must agree
//! with it.

// NodeIds are small dense integers: a hash map of them needs no DoS-resistant hasher.
use rustc_hash::FxHashMap;

use crate::arena::Arena;

pub mod rows;
pub mod tensor;

use crate::ir::op::{self, Kind, Op, Scalar};
use crate::ir::plan::{BLOCK, GroupProgram, LANES, Pass, Plan, Target, resolve};
use crate::ir::buffers::{Leaves, SlotLayout};
use crate::ir::{Graph, Groups, Layout, Level, Node, NodeId, Reduce};

/// Optimizer state: one entry per slot of the step IR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// Uniform slots (other levels hold a placeholder).
    pub uniform: Vec<Scalar>,
    /// Per-leaf slots: one value per leaf of the layout (empty for other levels).
    pub leaf: Vec<Vec<f32>>,
    /// Per-element slots: one value per element of the layout (empty for other levels), each at
    /// its own page offset.
    pub element: Arena,
}

/// What one run of a plan reads and writes.
pub struct Env<'a> {
    pub graph: &'a Graph,
    pub layout: &'a Layout,
    pub groups: &'a Groups,
    /// Where each leaf starts in the flat buffers (the order of blocks and reductions).
    pub offsets: &'a [usize],
    /// Where per-element state keeps each leaf.
    pub slots: &'a SlotLayout,
    /// Parameters, gradients, and the updates when the plan writes them apart.
    pub leaves: Leaves<'a>,
    pub value: f32,
    /// State read by `State` nodes.
    pub state: &'a State,
}

/// The results of a run: uniform and per-leaf values of the outputs, and element slot values.
#[derive(Debug, Default)]
pub struct Results {
    pub uniform: FxHashMap<NodeId, Scalar>,
    pub leaf: FxHashMap<NodeId, Vec<Scalar>>,
    /// New values of per-element slots written in the last pass (every element, as stored:
    /// rounded to the slot's storage type).
    pub element: FxHashMap<u32, Vec<f32>>,
    /// New values of parts of per-element slots, as stored: (slot, first element, values),
    /// written by whole-leaf programs (`tensor`), after `element`.
    pub ranges: Vec<(u32, usize, Vec<f32>)>,
}

/// Start offset of each leaf in the flat buffers.
pub fn offsets(layout: &Layout) -> Vec<usize> {
    let mut out = Vec::with_capacity(layout.leaves.len());
    let mut at = 0;
    for l in &layout.leaves {
        out.push(at);
        at += l.len();
    }
    out
}

/// Runs `plan` on `env`.
pub fn run(plan: &Plan, env: &mut Env) -> Results {
    run_with(plan, env, &mut Interpreted)
}

/// Uniform and per-leaf values computed so far in a run.
#[derive(Debug, Default)]
pub struct Values {
    pub uniform: FxHashMap<NodeId, Scalar>,
    pub leaf: FxHashMap<NodeId, Vec<Scalar>>,
    /// Values of row programs' groups stored reduced over axes, by (node, leaf).
    pub reduced: FxHashMap<(NodeId, usize), tensor::Value>,
}

/// What a pass's element programs give back.
#[derive(Debug, Default)]
pub struct PassOutput {
    /// Per reduction: one partial per block, as (leaf, value), in the order the programs of the
    /// pass run: program by program, leaf by leaf within a group, block by block within a leaf.
    pub partials: FxHashMap<NodeId, Vec<(usize, Scalar)>>,
    /// New values of per-element slots (backends that write state in place leave it empty).
    pub element: FxHashMap<u32, Vec<f32>>,
    /// New values of parts of per-element slots ([`Results::ranges`]).
    pub ranges: Vec<(u32, usize, Vec<f32>)>,
    /// Reductions over axes accumulated by row programs, by (node, leaf).
    pub axes: FxHashMap<(NodeId, usize), tensor::Value>,
}

/// How a backend runs the element programs of a pass. The uniform and per-leaf work around the
/// passes, and the combination of reduction partials, stay here, so every backend shares them.
pub trait Passes {
    /// Runs the programs of `pass` (the `index`-th of its plan) over `env`'s buffers.
    fn run_pass(&mut self, index: usize, pass: &Pass, env: &mut Env, values: &Values, out: &mut PassOutput);

    /// The element state as it was before the step, when the backend holds it (it updates it
    /// in place) rather than `Env::state`.
    fn element_state(&self) -> Option<&Arena> {
        None
    }
}

/// The reference backend: element programs run here, on [`Scalar`]s.
pub struct Interpreted;

impl Passes for Interpreted {
    fn run_pass(&mut self, _index: usize, pass: &Pass, env: &mut Env, values: &Values, out: &mut PassOutput) {
        let state = env.state;
        for program in &pass.programs {
            run_program(env, values, &state.element, program, out);
        }
    }
}

/// Runs `plan` on `env`, with the element programs of each pass run by `passes`.
pub fn run_with(plan: &Plan, env: &mut Env, passes: &mut dyn Passes) -> Results {
    let mut values = Values::default();
    let mut element_writes: FxHashMap<u32, Vec<f32>> = FxHashMap::default();
    let mut ranges = Vec::new();
    let n_leaves = env.layout.leaves.len();
    for (index, pass) in plan.passes.iter().enumerate() {
        for &n in &pass.uniform_before {
            let v = eval_uniform(env, &values.uniform, &values.leaf, n);
            values.uniform.insert(n, v);
        }
        for (n, groups) in &pass.leaf_before {
            eval_leaf(env, &values.uniform, &mut values.leaf, *n, groups.iter().collect(), n_leaves);
        }
        let state = env.state;
        compute_reduced(env, &mut values, passes.element_state().unwrap_or(&state.element), &pass.reduced_before);
        let mut out = PassOutput { element: std::mem::take(&mut element_writes), ranges: std::mem::take(&mut ranges), ..PassOutput::default() };
        passes.run_pass(index, pass, env, &values, &mut out);
        for program in &pass.tensor_programs {
            tensor::run_program(env, &values, passes.element_state().unwrap_or(&state.element), program, &mut out);
        }
        element_writes = out.element;
        ranges = out.ranges;
        values.reduced.extend(out.axes);
        // Combine partials in leaf order, then block order (they were pushed in that order
        // within a leaf; sort by leaf keeps it stable across groups).
        for (red, mut parts) in out.partials {
            parts.sort_by_key(|(l, _)| *l);
            match &env.graph.get(red).node {
                Node::Reduce { kind, .. } => {
                    let v = parts.iter().fold(identity(*kind), |acc, (_, p)| combine(*kind, acc, *p));
                    values.uniform.insert(red, v);
                }
                Node::LeafReduce { kind, .. } => {
                    let mut per_leaf = vec![identity(*kind); n_leaves];
                    for (l, p) in parts {
                        per_leaf[l] = combine(*kind, per_leaf[l], p);
                    }
                    values.leaf.insert(red, per_leaf);
                }
                _ => {}
            }
        }
    }
    let state = env.state;
    compute_reduced(env, &mut values, passes.element_state().unwrap_or(&state.element), &plan.reduced_after);
    for &(s, n, g) in &plan.reduced_writes {
        for &l in &env.groups.leaves[g] {
            ranges.extend(tensor::stored(env, s, l, &tensor::reduced_value(env, &values, n, g, l)));
        }
    }
    let Values { mut uniform, mut leaf, .. } = values;
    for &n in &plan.uniform_after {
        let v = eval_uniform(env, &uniform, &leaf, n);
        uniform.insert(n, v);
    }
    for (n, groups) in &plan.leaf_after {
        eval_leaf(env, &uniform, &mut leaf, *n, groups.iter().collect(), n_leaves);
    }
    // Outputs that are constants were never scheduled.
    for (_, n) in &plan.outputs.uniform {
        if !uniform.contains_key(n) {
            let v = eval_uniform(env, &uniform, &leaf, *n);
            uniform.insert(*n, v);
        }
    }
    for (_, n, groups) in &plan.outputs.leaf {
        if !leaf.contains_key(n) {
            eval_leaf(env, &uniform, &mut leaf, *n, groups.iter().collect(), n_leaves);
        }
    }
    Results { uniform, leaf, element: element_writes, ranges }
}

/// Computes the reduced values `nodes` (node, group) for every leaf of their groups.
fn compute_reduced(env: &Env, values: &mut Values, state: &Arena, nodes: &[(NodeId, usize)]) {
    for &(n, g) in nodes {
        for &l in &env.groups.leaves[g] {
            let v = tensor::reduced(env, values, state, n, g, l);
            values.reduced.insert((n, l), v);
        }
    }
}

/// The value a reduction starts from.
pub fn identity(kind: Reduce) -> Scalar {
    match kind {
        Reduce::Sum => Scalar::F32(0.0),
        Reduce::Max => Scalar::F32(f32::NEG_INFINITY),
        Reduce::Min => Scalar::F32(f32::INFINITY),
        Reduce::All => Scalar::Bool(true),
        Reduce::Any => Scalar::Bool(false),
    }
}

/// One step of a reduction: `a` (so far) combined with `b` (the next value).
pub fn combine(kind: Reduce, a: Scalar, b: Scalar) -> Scalar {
    match kind {
        Reduce::Sum => Scalar::F32(a.f() + b.f()),
        Reduce::Max => Scalar::F32(op::max_f32(a.f(), b.f())),
        Reduce::Min => Scalar::F32(op::min_f32(a.f(), b.f())),
        Reduce::All => Scalar::Bool(a.b() && b.b()),
        Reduce::Any => Scalar::Bool(a.b() || b.b()),
    }
}

/// Reduces one block in the canonical order: `LANES` accumulators, element `i` into `i % LANES`,
/// combined pairwise.
pub fn reduce_block(kind: Reduce, xs: &[Scalar]) -> Scalar {
    let mut acc = [identity(kind); LANES];
    for (i, x) in xs.iter().enumerate() {
        acc[i % LANES] = combine(kind, acc[i % LANES], *x);
    }
    finish_block(kind, acc)
}

/// A block's partial as a kernel hands it back, a float (a boolean as 1 or 0), as a scalar of
/// the reduction's kind.
pub fn finished(kind: Reduce, x: f32) -> Scalar {
    match kind {
        Reduce::Sum | Reduce::Max | Reduce::Min => Scalar::F32(x),
        Reduce::All | Reduce::Any => Scalar::Bool(x != 0.0),
    }
}

/// Hands `l` the function [`combine`] applies for `kind`, on floats (a boolean as 1 or 0, any
/// float but 0 being true), so that a loop over floats inlines it.
pub fn combine_floats<L: op::FloatLoop>(kind: Reduce, l: L) -> L::Out {
    match kind {
        Reduce::Sum => l.run(|a, b| a + b),
        Reduce::Max => l.run(op::max_f32),
        Reduce::Min => l.run(op::min_f32),
        Reduce::All => l.run(|a, b| f32::from(u8::from(a != 0.0 && b != 0.0))),
        Reduce::Any => l.run(|a, b| f32::from(u8::from(a != 0.0 || b != 0.0))),
    }
}

/// Combines the `LANES` accumulators of a block pairwise, as [`reduce_block`] does.
pub fn finish_block(kind: Reduce, mut acc: [Scalar; LANES]) -> Scalar {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = combine(kind, acc[2 * i], acc[2 * i + 1]);
        }
    }
    acc[0]
}

fn eval_uniform(env: &Env, uniform: &FxHashMap<NodeId, Scalar>, leaf: &FxHashMap<NodeId, Vec<Scalar>>, n: NodeId) -> Scalar {
    let info = env.graph.get(n);
    let get = |a: &NodeId| uniform.get(a).copied().unwrap_or_else(|| constant(env.graph, *a));
    match &info.node {
        Node::Const(c) => c.scalar(),
        Node::Value => Scalar::F32(env.value),
        Node::State(s) => env.state.uniform.get(*s as usize).copied().unwrap_or(Scalar::F32(0.0)),
        Node::Op(op, args) => {
            let values: Vec<Scalar> = args.iter().map(get).collect();
            op::eval(*op, &values)
        }
        Node::Reduce { kind, arg, groups } => {
            // Per-leaf values reduced over the leaves in layout order (element arguments were
            // reduced by a pass and are already in `uniform`).
            if let Some(v) = uniform.get(&n) {
                return *v;
            }
            let per_leaf = leaf.get(arg);
            let mut leaves: Vec<usize> = groups.iter().flat_map(|g| env.groups.leaves[g].iter().copied()).collect();
            leaves.sort_unstable();
            leaves.iter().fold(identity(*kind), |acc, &l| {
                let v = per_leaf.and_then(|p| p.get(l)).copied().unwrap_or(Scalar::F32(0.0));
                combine(*kind, acc, v)
            })
        }
        _ => constant(env.graph, n),
    }
}

fn constant(graph: &Graph, n: NodeId) -> Scalar {
    graph.as_const(n).unwrap_or(Scalar::F32(0.0))
}

fn eval_leaf(
    env: &Env,
    uniform: &FxHashMap<NodeId, Scalar>,
    leaf: &mut FxHashMap<NodeId, Vec<Scalar>>,
    n: NodeId,
    groups: Vec<usize>,
    n_leaves: usize,
) {
    let info = env.graph.get(n);
    let mut values = leaf.remove(&n).unwrap_or_else(|| vec![Scalar::F32(0.0); n_leaves]);
    for g in groups {
        for &l in &env.groups.leaves[g] {
            let operand = |a: NodeId| -> Scalar {
                let a = resolve(env.graph, a, g).unwrap_or(a);
                match env.graph.level(a) {
                    Level::Uniform => uniform.get(&a).copied().unwrap_or_else(|| constant(env.graph, a)),
                    _ => leaf.get(&a).and_then(|v| v.get(l)).copied().unwrap_or(Scalar::F32(0.0)),
                }
            };
            values[l] = match &info.node {
                Node::LeafNumel => Scalar::I32(env.layout.leaves[l].len() as i32),
                Node::State(s) => Scalar::F32(env.state.leaf.get(*s as usize).and_then(|v| v.get(l)).copied().unwrap_or(0.0)),
                Node::Op(op, args) => {
                    let vals: Vec<Scalar> = args.iter().map(|a| operand(*a)).collect();
                    op::eval(*op, &vals)
                }
                Node::Merge(_) => match resolve(env.graph, n, g) {
                    Some(r) if r != n => operand(r),
                    _ => Scalar::F32(0.0),
                },
                _ => values[l],
            };
        }
    }
    leaf.insert(n, values);
}

/// Runs one group's element program over its leaves, block by block (a row program row by
/// row), reading element state from `state`.
pub fn run_program(env: &mut Env, values: &Values, state: &Arena, program: &GroupProgram, out: &mut PassOutput) {
    let g = program.group;
    let mut regs: FxHashMap<NodeId, Vec<Scalar>> = FxHashMap::default();
    for &l in &env.groups.leaves[g] {
        let shape = env.layout.leaves[l].shape.clone();
        let len = env.layout.leaves[l].len();
        let blocks = if program.rows {
            rows::segments(&shape)
        } else {
            (0..len).step_by(BLOCK).map(|start| rows::Segment { start, len: BLOCK.min(len - start), row: 0, col: start }).collect()
        };
        start_axis_reductions(env, program, l, out);
        // Reductions over other axes than the last: the copies after the first of their
        // accumulators (`rows::copies`), the first being the one `out` holds.
        let mut copies: FxHashMap<NodeId, Vec<Vec<f32>>> = FxHashMap::default();
        for &(red, _, axes) in &program.axis_reductions {
            if let Some(acc) = out.axes.get(&(red, l)).filter(|_| !program.per_row(axes)) {
                copies.insert(red, vec![acc.data.clone(); rows::copies(&shape, acc.data.len()) - 1]);
            }
        }
        for block in blocks {
            let (start, n) = (block.start, block.len);
            let end = start + n;
            regs.clear();
            let at = Here { g, l, block, shape: &shape };
            for &node in &program.nodes {
                let values = eval_block(env, values, state, &regs, node, &at);
                regs.insert(node, values);
            }
            let fetch = |node: NodeId| -> Vec<Scalar> {
                match regs.get(&node) {
                    Some(v) => v.clone(),
                    None => {
                        let o = operand(env, values, &regs, node, &at);
                        (0..n).map(|i| o.get(i)).collect()
                    }
                }
            };
            for &(red, arg) in &program.reductions {
                let kind = match &env.graph.get(red).node {
                    Node::Reduce { kind, .. } | Node::LeafReduce { kind, .. } => *kind,
                    _ => continue,
                };
                let xs = fetch(arg);
                out.partials.entry(red).or_default().push((l, reduce_block(kind, &xs)));
            }
            for &(red, arg, axes) in &program.axis_reductions {
                let Node::AxisReduce { kind, .. } = &env.graph.get(red).node else { continue };
                let xs = fetch(arg);
                let Some(acc) = out.axes.get_mut(&(red, l)) else { continue };
                let (base, _) = rows::row_start(&acc.shape, &shape, block.row);
                if program.per_row(axes) {
                    acc.data[base] = combine(*kind, Scalar::F32(acc.data[base]), reduce_block(*kind, &xs)).f();
                    continue;
                }
                let copy = match (rows::copy_of(&shape, copies.get(&red).map_or(0, Vec::len) + 1, block.row), copies.get_mut(&red)) {
                    (c, Some(extra)) if c > 0 => &mut extra[c - 1],
                    _ => &mut acc.data,
                };
                for (i, x) in xs.iter().enumerate() {
                    let a = &mut copy[base + block.col + i];
                    *a = combine(*kind, Scalar::F32(*a), *x).f();
                }
            }
            let outputs: Vec<(Target, Vec<Scalar>)> = program.writes.iter().map(|&(target, node)| (target, fetch(node))).collect();
            for (target, xs) in outputs {
                let Leaves { params, updates, .. } = &mut env.leaves;
                match target {
                    Target::Params => {
                        // Read-only parameters come with a plan that writes `Updates`.
                        if let Some(p) = params.get_mut(l) {
                            p[start..end].iter_mut().zip(&xs).for_each(|(p, x)| *p += x.f());
                        }
                    }
                    Target::Updates => updates[l][start..end].iter_mut().zip(&xs).for_each(|(u, x)| *u = x.f()),
                    Target::Slot(s) => {
                        // A program writes only slots that hold its group's leaves.
                        let Some(at) = env.slots.start(s as usize, l) else { continue };
                        // Stored values are what the slot's storage type keeps of them.
                        let storage = env.slots.storage(s as usize);
                        let stored = xs.iter().map(|x| storage.round(x.f()));
                        if program.rows {
                            // Row programs run beside compiled ones, which write state in place.
                            out.ranges.push((s, at + start, stored.collect()));
                            continue;
                        }
                        let buf = out.element.entry(s).or_insert_with(|| {
                            let mut v = state.get(s as usize).map(|w| env.slots.values(s as usize, w)).unwrap_or_default();
                            v.resize(env.slots.lens()[s as usize], 0.0);
                            v
                        });
                        for (i, x) in stored.enumerate() {
                            buf[at + start + i] = x;
                        }
                    }
                }
            }
        }
        for (red, extra) in copies {
            let (Node::AxisReduce { kind, .. }, Some(acc)) = (&env.graph.get(red).node, out.axes.get_mut(&(red, l))) else { continue };
            fold_copies(*kind, &mut acc.data, extra.iter().map(Vec::as_slice));
        }
    }
}

/// Combines the copies of an accumulator (`rows::copies`) into the first, in order.
pub fn fold_copies<'a>(kind: Reduce, first: &mut [f32], rest: impl Iterator<Item = &'a [f32]>) {
    // Float kinds without the scalar type, so that the loops vectorize.
    struct Copies<'f, I>(&'f mut [f32], I);
    impl<'a, I: Iterator<Item = &'a [f32]>> op::FloatLoop for Copies<'_, I> {
        type Out = ();
        fn run<F: Fn(f32, f32) -> f32>(self, f: F) {
            for copy in self.1 {
                self.0.iter_mut().zip(copy).for_each(|(a, &b)| *a = f(*a, b));
            }
        }
    }
    combine_floats(kind, Copies(first, rest));
}

/// Starts the reductions over axes of `program` for leaf `l` from their identity, whether or
/// not the leaf has elements to reduce.
pub fn start_axis_reductions(env: &Env, program: &GroupProgram, l: usize, out: &mut PassOutput) {
    for &(red, _, axes) in &program.axis_reductions {
        if let Node::AxisReduce { kind, .. } = &env.graph.get(red).node {
            let shape = crate::ir::axes::stored_shape(&env.layout.leaves[l].shape, axes);
            out.axes.insert((red, l), tensor::filled(shape, identity(*kind).f()));
        }
    }
}

/// Where a block of a program runs: its group, leaf (of shape `shape`) and block.
struct Here<'s> {
    g: usize,
    l: usize,
    block: rows::Segment,
    shape: &'s [usize],
}

/// The value of a uniform or per-leaf node for leaf `l` (of group `g`).
pub fn broadcast(env: &Env, uniform: &FxHashMap<NodeId, Scalar>, leaf: &FxHashMap<NodeId, Vec<Scalar>>, node: NodeId, g: usize, l: usize) -> Scalar {
    let node = resolve(env.graph, node, g).unwrap_or(node);
    match env.graph.level(node) {
        Level::Uniform => uniform.get(&node).copied().unwrap_or_else(|| constant(env.graph, node)),
        Level::Leaf => match &env.graph.get(node).node {
            Node::LeafNumel => Scalar::I32(env.layout.leaves[l].len() as i32),
            _ => leaf.get(&node).and_then(|v| v.get(l)).copied().unwrap_or(Scalar::F32(0.0)),
        },
        Level::Element => Scalar::F32(0.0),
    }
}

/// The values of `node` over the block `at`.
fn eval_block(env: &Env, values: &Values, state: &Arena, regs: &FxHashMap<NodeId, Vec<Scalar>>, node: NodeId, at: &Here) -> Vec<Scalar> {
    let (l, start, n) = (at.l, at.block.start, at.block.len);
    match &env.graph.get(node).node {
        Node::Grad => env.leaves.grads[l][start..start + n].iter().map(|x| Scalar::F32(*x)).collect(),
        Node::Param => env.leaves.params.get(l).unwrap_or_default()[start..start + n].iter().map(|x| Scalar::F32(*x)).collect(),
        Node::State(s) => {
            let buf = state.get(*s as usize);
            let first = env.slots.start(*s as usize, l).map(|a| a + start);
            let storage = env.slots.storage(*s as usize);
            (0..n).map(|i| Scalar::F32(first.and_then(|a| storage.get(buf?, a + i)).unwrap_or(0.0))).collect()
        }
        Node::Op(op, args) => {
            let operands: Vec<Operand> = args.iter().map(|a| operand(env, values, regs, *a, at)).collect();
            let mut out = Vec::with_capacity(n);
            let mut vals = Vec::with_capacity(operands.len());
            for i in 0..n {
                vals.clear();
                vals.extend(operands.iter().map(|o| o.get(i)));
                out.push(op::eval(*op, &vals));
            }
            // Element values are float32 or bool; ints broadcast from uniforms become floats.
            if env.graph.kind(node) == Kind::I32 {
                out.iter_mut().for_each(|x| *x = op::eval(Op::ToF32, &[*x]));
            }
            out
        }
        _ => vec![broadcast(env, &values.uniform, &values.leaf, node, at.g, l); n],
    }
}

/// Where element `i` of a block finds an operand.
enum Operand<'a> {
    /// A value computed over the block.
    Block(&'a Vec<Scalar>),
    /// A value stored reduced over axes: element `i` is at `start + step * i`.
    Reduced { data: &'a [f32], start: usize, step: usize },
    Scalar(Scalar),
}

impl Operand<'_> {
    fn get(&self, i: usize) -> Scalar {
        match self {
            Operand::Block(v) => v[i],
            Operand::Reduced { data, start, step } => Scalar::F32(data[start + step * i]),
            Operand::Scalar(s) => *s,
        }
    }
}

/// Operand `a` of a node computed over the block `at`.
fn operand<'a>(env: &Env, values: &'a Values, regs: &'a FxHashMap<NodeId, Vec<Scalar>>, a: NodeId, at: &Here) -> Operand<'a> {
    let a = resolve(env.graph, a, at.g).unwrap_or(a);
    if let Some(v) = regs.get(&a) {
        return Operand::Block(v);
    }
    if let Some(v) = values.reduced.get(&(a, at.l)) {
        let (row, step) = rows::row_start(&v.shape, at.shape, at.block.row);
        return Operand::Reduced { data: &v.data, start: row + step * at.block.col, step };
    }
    Operand::Scalar(broadcast(env, &values.uniform, &values.leaf, a, at.g, at.l))
}

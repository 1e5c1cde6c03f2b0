//! The reference interpreter of a [`Plan`]: uniform work on scalars, per-leaf work leaf by
//! leaf, and each pass block by block over float32 slices, in the block order the compiled code
//! uses, with reductions combined from per-block partials in leaf and block order.
//!
//! Architecture invariant: this is the semantic reference; every faster backend must agree
//! with it.

// NodeIds are small dense integers: a hash map of them needs no DoS-resistant hasher.
use rustc_hash::FxHashMap;

use crate::arena::Arena;

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
        for program in &pass.programs {
            run_program(env, &values.uniform, &values.leaf, program, &mut out.partials, &mut out.element);
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
        let mut out = PassOutput { partials: FxHashMap::default(), element: std::mem::take(&mut element_writes), ranges: std::mem::take(&mut ranges) };
        passes.run_pass(index, pass, env, &values, &mut out);
        let state = env.state;
        for program in &pass.tensor_programs {
            tensor::run_program(env, &values, passes.element_state().unwrap_or(&state.element), program, &mut out);
        }
        element_writes = out.element;
        ranges = out.ranges;
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
    let Values { mut uniform, mut leaf } = values;
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

/// Runs one group's element program over its leaves, block by block.
fn run_program(
    env: &mut Env,
    uniform: &FxHashMap<NodeId, Scalar>,
    leaf: &FxHashMap<NodeId, Vec<Scalar>>,
    program: &GroupProgram,
    partials: &mut FxHashMap<NodeId, Vec<(usize, Scalar)>>,
    writes: &mut FxHashMap<u32, Vec<f32>>,
) {
    let g = program.group;
    let mut regs: FxHashMap<NodeId, Vec<Scalar>> = FxHashMap::default();
    for &l in &env.groups.leaves[g] {
        let len = env.layout.leaves[l].len();
        let mut start = 0;
        while start < len {
            let end = (start + BLOCK).min(len);
            let n = end - start;
            regs.clear();
            for &node in &program.nodes {
                let values = eval_block(env, uniform, leaf, &regs, node, g, l, start, n);
                regs.insert(node, values);
            }
            let fetch = |node: NodeId| -> Vec<Scalar> {
                match regs.get(&node) {
                    Some(v) => v.clone(),
                    None => {
                        let s = broadcast(env, uniform, leaf, node, g, l);
                        vec![s; n]
                    }
                }
            };
            for &(red, arg) in &program.reductions {
                let kind = match &env.graph.get(red).node {
                    Node::Reduce { kind, .. } | Node::LeafReduce { kind, .. } => *kind,
                    _ => continue,
                };
                let xs = fetch(arg);
                partials.entry(red).or_default().push((l, reduce_block(kind, &xs)));
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
                        let buf = writes.entry(s).or_insert_with(|| {
                            let mut v = env.state.element.get(s as usize).map(|w| env.slots.values(s as usize, w)).unwrap_or_default();
                            v.resize(env.slots.lens()[s as usize], 0.0);
                            v
                        });
                        // Stored values are what the slot's storage type keeps of them.
                        let storage = env.slots.storage(s as usize);
                        for (i, x) in xs.iter().enumerate() {
                            buf[at + start + i] = storage.round(x.f());
                        }
                    }
                }
            }
            start = end;
        }
    }
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

#[allow(clippy::too_many_arguments)]
fn eval_block(
    env: &Env,
    uniform: &FxHashMap<NodeId, Scalar>,
    leaf: &FxHashMap<NodeId, Vec<Scalar>>,
    regs: &FxHashMap<NodeId, Vec<Scalar>>,
    node: NodeId,
    g: usize,
    l: usize,
    at: usize,
    n: usize,
) -> Vec<Scalar> {
    match &env.graph.get(node).node {
        Node::Grad => env.leaves.grads[l][at..at + n].iter().map(|x| Scalar::F32(*x)).collect(),
        Node::Param => env.leaves.params.get(l).unwrap_or_default()[at..at + n].iter().map(|x| Scalar::F32(*x)).collect(),
        Node::State(s) => {
            let buf = env.state.element.get(*s as usize);
            let at = env.slots.start(*s as usize, l).map(|a| a + at);
            let storage = env.slots.storage(*s as usize);
            (0..n).map(|i| Scalar::F32(at.and_then(|a| storage.get(buf?, a + i)).unwrap_or(0.0))).collect()
        }
        Node::Op(op, args) => {
            let operands: Vec<Operand> = args
                .iter()
                .map(|a| {
                    let a = resolve(env.graph, *a, g).unwrap_or(*a);
                    match regs.get(&a) {
                        Some(v) => Operand::Block(v),
                        None => Operand::Scalar(broadcast(env, uniform, leaf, a, g, l)),
                    }
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            let mut vals = Vec::with_capacity(operands.len());
            for i in 0..n {
                vals.clear();
                vals.extend(operands.iter().map(|o| match o {
                    Operand::Block(v) => v[i],
                    Operand::Scalar(s) => *s,
                }));
                out.push(op::eval(*op, &vals));
            }
            // Element values are float32 or bool; ints broadcast from uniforms become floats.
            if env.graph.kind(node) == Kind::I32 {
                out.iter_mut().for_each(|x| *x = op::eval(Op::ToF32, &[*x]));
            }
            out
        }
        _ => vec![broadcast(env, uniform, leaf, node, g, l); n],
    }
}

enum Operand<'a> {
    Block(&'a Vec<Scalar>),
    Scalar(Scalar),
}

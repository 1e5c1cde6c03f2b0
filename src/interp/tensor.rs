//! Element programs over whole leaves, for the groups that reduce over axes of their leaves
//! (`sum(x, axis=0)`) or keep state reduced over them: every value of a leaf is held at once,
//! stored reduced over the axes it is constant along (`ir::axes`), and operations broadcast as
//! numpy's do. Every backend runs these programs here, so they agree by construction; the
//! element operations are `op::eval`'s, and reductions over all leaves or within a leaf take
//! their partials block by block as the interpreter's passes do.

use rustc_hash::FxHashMap;

use super::{Env, PassOutput, Values, broadcast, reduce_block};
use crate::arena::Arena;
use crate::ir::axes::{self, Collapsed};
use crate::ir::op::{self, Kind, Op, Scalar};
use crate::ir::plan::{BLOCK, GroupProgram, Target, resolve};
use crate::ir::{Node, NodeId, Reduce};

/// A per-element value of one leaf, stored reduced over the axes it is constant along.
#[derive(Clone, Debug)]
struct Value {
    collapsed: Collapsed,
    data: Vec<Scalar>,
}

/// The index of element `at` (a multi-index into the leaf's shape) in a value stored reduced
/// over `collapsed`.
fn index(shape: &[usize], collapsed: Collapsed, at: &[usize]) -> usize {
    let mut i = 0;
    for (k, (&n, &x)) in shape.iter().zip(at).enumerate() {
        let kept = collapsed & (1 << k) == 0;
        i = i * if kept { n } else { 1 } + if kept { x } else { 0 };
    }
    i
}

/// Calls `f` with every multi-index of `dims`, in row-major order.
fn each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    if dims.contains(&0) {
        return;
    }
    let mut at = vec![0; dims.len()];
    loop {
        f(&at);
        let mut k = dims.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            at[k] += 1;
            if at[k] < dims[k] {
                break;
            }
            at[k] = 0;
        }
    }
}

/// `v` stored reduced over `to` instead (which must be among the axes `v` is constant along).
fn expand(shape: &[usize], v: &Value, to: Collapsed) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(axes::stored_len(shape, to));
    each_index(&axes::stored_shape(shape, to), |at| out.push(v.data[index(shape, v.collapsed, at)]));
    out
}

/// Runs a group's program over each of its leaves: reduction partials and writes into `out`.
/// `state` holds the element slots as they were before the step.
pub fn run_program(env: &mut Env, values: &Values, state: &Arena, program: &GroupProgram, out: &mut PassOutput) {
    let g = program.group;
    for &l in &env.groups.leaves[g] {
        let shape = env.layout.leaves[l].shape.clone();
        // Axes past the leaf's own are no axes of it.
        let mine = |c: Collapsed| if shape.len() >= 32 { c } else { c & ((1u32 << shape.len()) - 1) };
        let mut regs: FxHashMap<NodeId, Value> = FxHashMap::default();
        for &node in &program.nodes {
            let v = match &env.graph.get(node).node {
                Node::Grad => Value { collapsed: 0, data: env.leaves.grads[l].iter().map(|x| Scalar::F32(*x)).collect() },
                Node::Param => Value {
                    collapsed: 0,
                    data: env.leaves.params.get(l).unwrap_or_default().iter().map(|x| Scalar::F32(*x)).collect(),
                },
                Node::State(s) => {
                    let s = *s as usize;
                    let collapsed = mine(env.slots.collapsed(s));
                    let storage = env.slots.storage(s);
                    let words = state.get(s).unwrap_or_default();
                    let range = env.slots.range(s, l).unwrap_or(0..0);
                    let mut data: Vec<Scalar> = range.map(|i| Scalar::F32(storage.get(words, i).unwrap_or(0.0))).collect();
                    data.resize(axes::stored_len(&shape, collapsed), Scalar::F32(0.0));
                    Value { collapsed, data }
                }
                Node::Op(op, args) => {
                    let operands: Vec<Result<&Value, Scalar>> = args
                        .iter()
                        .map(|a| {
                            let a = resolve(env.graph, *a, g).unwrap_or(*a);
                            regs.get(&a).ok_or_else(|| broadcast(env, &values.uniform, &values.leaf, a, g, l))
                        })
                        .collect();
                    let collapsed = operands.iter().fold(mine(axes::ALL), |c, o| o.map_or(c, |v| c & v.collapsed));
                    let mut data = Vec::with_capacity(axes::stored_len(&shape, collapsed));
                    let mut args = Vec::with_capacity(operands.len());
                    each_index(&axes::stored_shape(&shape, collapsed), |at| {
                        args.clear();
                        args.extend(operands.iter().map(|o| match o {
                            Ok(v) => v.data[index(&shape, v.collapsed, at)],
                            Err(s) => *s,
                        }));
                        data.push(op::eval(*op, &args));
                    });
                    // Element values are float32 or bool; ints broadcast from uniforms become floats.
                    if env.graph.kind(node) == Kind::I32 {
                        data.iter_mut().for_each(|x| *x = op::eval(Op::ToF32, &[*x]));
                    }
                    Value { collapsed, data }
                }
                Node::AxisReduce { kind, arg, axes: over } => {
                    let a = resolve(env.graph, *arg, g).unwrap_or(*arg);
                    let arg = match regs.get(&a) {
                        Some(v) => v.clone(),
                        None => Value { collapsed: mine(axes::ALL), data: vec![broadcast(env, &values.uniform, &values.leaf, a, g, l)] },
                    };
                    axis_reduce(&shape, *kind, &arg, mine(*over))
                }
                _ => Value { collapsed: mine(axes::ALL), data: vec![broadcast(env, &values.uniform, &values.leaf, node, g, l)] },
            };
            regs.insert(node, v);
        }
        for &(red, arg) in &program.reductions {
            let kind = match &env.graph.get(red).node {
                Node::Reduce { kind, .. } | Node::LeafReduce { kind, .. } => *kind,
                _ => continue,
            };
            let xs = full(env, values, &regs, &shape, arg, g, l);
            for block in xs.chunks(BLOCK) {
                out.partials.entry(red).or_default().push((l, reduce_block(kind, block)));
            }
        }
        let writes: Vec<(Target, NodeId)> = program.writes.clone();
        for (target, node) in writes {
            match target {
                Target::Params => {
                    let xs = full(env, values, &regs, &shape, node, g, l);
                    if let Some(p) = env.leaves.params.get_mut(l) {
                        p.iter_mut().zip(&xs).for_each(|(p, x)| *p += x.f());
                    }
                }
                Target::Updates => {
                    let xs = full(env, values, &regs, &shape, node, g, l);
                    env.leaves.updates[l].iter_mut().zip(&xs).for_each(|(u, x)| *u = x.f());
                }
                Target::Slot(s) => {
                    let Some(range) = env.slots.range(s as usize, l) else { continue };
                    let to = mine(env.slots.collapsed(s as usize));
                    let xs = match regs.get(&node) {
                        Some(v) => expand(&shape, v, to),
                        None => vec![broadcast(env, &values.uniform, &values.leaf, node, g, l); range.len()],
                    };
                    let storage = env.slots.storage(s as usize);
                    let stored: Vec<f32> = xs.iter().map(|x| storage.round(x.f())).collect();
                    out.ranges.push((s, range.start, stored));
                }
            }
        }
    }
}

/// The value of `node` at every element of leaf `l` (of group `g`).
fn full(env: &Env, values: &Values, regs: &FxHashMap<NodeId, Value>, shape: &[usize], node: NodeId, g: usize, l: usize) -> Vec<Scalar> {
    match regs.get(&node) {
        Some(v) => expand(shape, v, 0),
        None => vec![broadcast(env, &values.uniform, &values.leaf, node, g, l); env.layout.leaves[l].len()],
    }
}

/// `arg` reduced over the axes `over` of a leaf of `shape`: each line in row-major order. An
/// axis `arg` is already constant along still counts each of its elements.
fn axis_reduce(shape: &[usize], kind: Reduce, arg: &Value, over: Collapsed) -> Value {
    let collapsed = arg.collapsed | over;
    let line: Vec<usize> = shape.iter().enumerate().map(|(k, &n)| if over & (1 << k) != 0 { n } else { 1 }).collect();
    let mut data = Vec::with_capacity(axes::stored_len(shape, collapsed));
    let mut at = vec![0; shape.len()];
    each_index(&axes::stored_shape(shape, collapsed), |base| {
        let mut acc = super::identity(kind);
        each_index(&line, |offset| {
            for k in 0..shape.len() {
                at[k] = base[k] + offset[k];
            }
            acc = super::combine(kind, acc, arg.data[index(shape, arg.collapsed, &at)]);
        });
        data.push(acc);
    });
    Value { collapsed, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(v: &[Scalar]) -> Vec<f32> {
        v.iter().map(|s| s.f()).collect()
    }

    #[test]
    fn axis_reductions_keep_one_value_per_line() {
        let shape = [2, 3];
        let x = Value { collapsed: 0, data: (1..=6).map(|i| Scalar::F32(i as f32)).collect() };
        let rows = axis_reduce(&shape, Reduce::Sum, &x, 0b10);
        assert_eq!((rows.collapsed, floats(&rows.data)), (0b10, vec![6.0, 15.0]));
        let cols = axis_reduce(&shape, Reduce::Max, &x, 0b01);
        assert_eq!((cols.collapsed, floats(&cols.data)), (0b01, vec![4.0, 5.0, 6.0]));
        // Broadcast back: each element takes its row's value.
        assert_eq!(floats(&expand(&shape, &rows, 0)), vec![6.0, 6.0, 6.0, 15.0, 15.0, 15.0]);
        // A sum over an axis the value is already constant along counts every element.
        assert_eq!(floats(&axis_reduce(&shape, Reduce::Sum, &rows, 0b11).data), vec![63.0]);
    }

    #[test]
    fn indices_skip_the_axes_a_value_is_constant_along() {
        assert_eq!(index(&[2, 3, 4], 0b010, &[1, 2, 3]), 4 + 3);
        let mut seen = Vec::new();
        each_index(&[2, 2], |at| seen.push(at.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        each_index(&[0, 2], |_| panic!("no elements"));
    }
}

//! Values as arrays of their own shapes: the element programs of groups that multiply matrices,
//! run over whole leaves, and the values of row programs stored reduced over axes (Adafactor's
//! row and column statistics), computed between passes over their small shapes. Every value
//! of a leaf is held at once as an array (the leaf's shape, the leaf's with size 1 on the axes
//! it is constant along, or a matrix product's), and operations broadcast as numpy's do. Every
//! backend computes these here, so they agree by construction; the element operations are
//! `op::eval`'s, and reductions over all leaves or within a leaf take their partials block by
//! block as the interpreter's passes do.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use super::{Env, PassOutput, Values, broadcast, reduce_block};
use crate::arena::Arena;
use crate::ir::axes::{self, Collapsed};
use crate::ir::op::{self, Kind, Op, Scalar};
use crate::ir::plan::{BLOCK, GroupProgram, Target, resolve};
use crate::ir::shapes::broadcast as broadcast_shapes;
use crate::ir::{MatOp, Node, NodeId, Reduce};

/// A per-element value of one leaf: an array (row-major). A `leafwise` one is the leaf's own
/// (its values, state, what is computed from them): it stands for the leaf's shape, stored
/// with size 1 on the axes it is constant along. Others are a matrix operation's, of their
/// own shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub leafwise: bool,
}

impl Value {
    /// A scalar, which broadcasts to any shape.
    pub fn scalar(x: f32) -> Value {
        Value { shape: Vec::new(), data: vec![x], leafwise: true }
    }

    /// The leaf's own values, or state of shape `shape`.
    fn leafwise(shape: Vec<usize>, data: Vec<f32>) -> Value {
        Value { shape, data, leafwise: true }
    }

    /// The shape it stands for on a leaf of shape `leaf`.
    fn logical(&self, leaf: &[usize]) -> Vec<usize> {
        if self.leafwise && broadcast_shapes(&self.shape, leaf).as_deref() == Some(leaf) { leaf.to_vec() } else { self.shape.clone() }
    }

    /// The element at `at` (an index into `shape`, with as many or more axes than this value
    /// has: leading ones are broadcast, and so is every axis of size 1).
    fn at(&self, at: &[usize]) -> f32 {
        let skip = at.len() - self.shape.len();
        let mut i = 0;
        for (&n, &x) in self.shape.iter().zip(&at[skip..]) {
            i = i * n + if n == 1 { 0 } else { x };
        }
        self.data[i]
    }

    /// This value broadcast to `shape` (which it must broadcast to).
    pub fn expand(&self, shape: &[usize]) -> Vec<f32> {
        if self.shape == shape {
            return self.data.clone();
        }
        let mut out = Vec::with_capacity(shape.iter().product());
        each_index(shape, |at| out.push(self.at(at)));
        out
    }
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

/// Runs a group's program over each of its leaves: reduction partials and writes into `out`.
/// `state` holds the element slots as they were before the step.
pub fn run_program(env: &mut Env, values: &Values, state: &Arena, program: &GroupProgram, out: &mut PassOutput) {
    let g = program.group;
    for &l in &env.groups.leaves[g] {
        let leaf = env.layout.leaves[l].shape.clone();
        let mut regs: FxHashMap<NodeId, Value> = FxHashMap::default();
        for &node in &program.nodes {
            let operand = |a: NodeId| -> Cow<'_, Value> {
                let a = resolve(env.graph, a, g).unwrap_or(a);
                match regs.get(&a) {
                    Some(v) => Cow::Borrowed(v),
                    None => Cow::Owned(Value::scalar(broadcast(env, &values.uniform, &values.leaf, a, g, l).f())),
                }
            };
            let v = match &env.graph.get(node).node {
                Node::Grad => Value::leafwise(leaf.clone(), env.leaves.grads[l].to_vec()),
                Node::Param => Value::leafwise(leaf.clone(), env.leaves.params.get(l).unwrap_or_default().to_vec()),
                Node::State(s) => state_value(env, state, *s as usize, l),
                Node::Op(op, args) => {
                    let operands: Vec<Cow<'_, Value>> = args.iter().map(|a| operand(*a)).collect();
                    elementwise(*op, &operands, env.graph.kind(node) == Kind::I32)
                }
                Node::AxisReduce { kind, arg, axes: over } => axis_reduce(&leaf, *kind, &operand(*arg), *over),
                Node::Matrix { op, args } => {
                    let operands: Vec<Cow<'_, Value>> = args.iter().map(|a| operand(*a)).collect();
                    matrix(op, &operands, &leaf)
                }
                _ => operand(node).into_owned(),
            };
            regs.insert(node, v);
        }
        let full = |node: NodeId| -> Vec<f32> {
            match regs.get(&node) {
                Some(v) => fit(v, &leaf),
                None => vec![broadcast(env, &values.uniform, &values.leaf, node, g, l).f(); env.layout.leaves[l].len()],
            }
        };
        let mut partials = Vec::new();
        for &(red, arg) in &program.reductions {
            let kind = match &env.graph.get(red).node {
                Node::Reduce { kind, .. } | Node::LeafReduce { kind, .. } => *kind,
                _ => continue,
            };
            let xs: Vec<Scalar> = full(arg).into_iter().map(Scalar::F32).collect();
            partials.extend(xs.chunks(BLOCK).map(|block| (red, reduce_block(kind, block))));
        }
        let mut writes = Vec::new();
        for &(target, node) in &program.writes {
            match target {
                Target::Slot(s) => {
                    let scalar = || Value::scalar(broadcast(env, &values.uniform, &values.leaf, node, g, l).f());
                    let v = regs.get(&node).map_or_else(|| Cow::Owned(scalar()), Cow::Borrowed);
                    out.ranges.extend(stored(env, s, l, &v));
                }
                _ => writes.push((target, full(node))),
            }
        }
        for (red, p) in partials {
            out.partials.entry(red).or_default().push((l, p));
        }
        for (target, xs) in writes {
            match target {
                Target::Params => {
                    if let Some(p) = env.leaves.params.get_mut(l) {
                        p.iter_mut().zip(&xs).for_each(|(p, x)| *p += x);
                    }
                }
                Target::Updates => env.leaves.updates[l].iter_mut().zip(&xs).for_each(|(u, x)| *u = *x),
                Target::Slot(_) => {}
            }
        }
    }
}

/// Slot `s` of `state` for leaf `l`, in the shape it is stored in.
fn state_value(env: &Env, state: &Arena, s: usize, l: usize) -> Value {
    let shape = axes::stored_shape(&env.layout.leaves[l].shape, env.slots.collapsed(s, l));
    let (storage, words) = (env.slots.storage(s), state.get(s).unwrap_or_default());
    let range = env.slots.range(s, l).unwrap_or(0..0);
    let mut data: Vec<f32> = range.map(|i| storage.get(words, i).unwrap_or(0.0)).collect();
    data.resize(shape.iter().product(), 0.0);
    Value::leafwise(shape, data)
}

/// A row program's value stored reduced over axes (`Pass::reduced_before`), for leaf `l` of
/// group `g`, from its operands in `values` and `state` (the element slots before the step).
pub fn reduced(env: &Env, values: &Values, state: &Arena, node: NodeId, g: usize, l: usize) -> Value {
    let operand = |a: NodeId| reduced_value(env, values, a, g, l);
    match &env.graph.get(node).node {
        Node::State(s) => state_value(env, state, *s as usize, l),
        Node::Op(op, args) => {
            let operands: Vec<Cow<'_, Value>> = args.iter().map(|a| operand(*a)).collect();
            elementwise(*op, &operands, env.graph.kind(node) == Kind::I32)
        }
        Node::AxisReduce { kind, arg, axes: over } => axis_reduce(&env.layout.leaves[l].shape, *kind, &operand(*arg), *over),
        _ => operand(node).into_owned(),
    }
}

/// The reduced value of node `a` for leaf `l` of group `g`: computed before, or a uniform or
/// per-leaf one as a scalar.
pub fn reduced_value<'v>(env: &Env, values: &'v Values, a: NodeId, g: usize, l: usize) -> Cow<'v, Value> {
    let a = resolve(env.graph, a, g).unwrap_or(a);
    match values.reduced.get(&(a, l)) {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(Value::scalar(broadcast(env, &values.uniform, &values.leaf, a, g, l).f())),
    }
}

/// Slot `s`'s new value for leaf `l` from `v`, in the shape and storage type it is kept in:
/// `(slot, first element, values)` for `Results::ranges`.
pub fn stored(env: &Env, s: u32, l: usize, v: &Value) -> Option<(u32, usize, Vec<f32>)> {
    let range = env.slots.range(s as usize, l)?;
    let to = axes::stored_shape(&env.layout.leaves[l].shape, env.slots.collapsed(s as usize, l));
    let storage = env.slots.storage(s as usize);
    Some((s, range.start, fit(v, &to).into_iter().map(|x| storage.round(x)).collect()))
}

/// A value of shape `shape` holding `identity` everywhere: where a reduction over axes starts.
pub fn filled(shape: Vec<usize>, identity: f32) -> Value {
    let len = shape.iter().product();
    Value::leafwise(shape, vec![identity; len])
}

/// `v` broadcast to `shape`; NaN where it does not broadcast (instantiation refuses that).
pub fn fit(v: &Value, shape: &[usize]) -> Vec<f32> {
    match broadcast_shapes(&v.shape, shape) {
        Some(s) if s == shape => v.expand(shape),
        _ => vec![f32::NAN; shape.iter().product()],
    }
}

/// `op` element by element over its operands, broadcast together.
fn elementwise(op: Op, operands: &[Cow<'_, Value>], int: bool) -> Value {
    let shape = operands.iter().try_fold(Vec::new(), |s, v| broadcast_shapes(&s, &v.shape));
    let Some(shape) = shape else { return Value::scalar(f32::NAN) };
    let leafwise = operands.iter().all(|v| v.leafwise);
    let len: usize = shape.iter().product();
    let mut data = Vec::with_capacity(len);
    let mut args = Vec::with_capacity(operands.len());
    let finish = |x: Scalar| if int { op::eval(Op::ToF32, &[x]).f() } else { x.f() };
    // Operands of the result's shape, or scalars: element `i` of each is its `i`-th (the common
    // case, without index arithmetic).
    if operands.iter().all(|v| v.shape == shape || v.data.len() == 1) {
        let at = |v: &Value, i: usize| if v.data.len() == 1 { v.data[0] } else { v.data[i] };
        // `pow`, the costliest, on lanes of elements at once (Adafactor's statistics).
        if let (false, Op::Pow, [a, b]) = (int, op, operands) {
            return Value { shape, data: crate::fmath::lanes::pow_each(len, |i| at(a, i), |i| at(b, i)), leafwise };
        }
        // A float operation: its function on floats, without the scalar type (as `op::eval`
        // computes it on float operands, the second 0 when there is none).
        if let (false, [a, rest @ ..]) = (int, operands)
            && rest.len() <= 1
        {
            let floats = || Floats { a, b: rest.first().map(|b| &**b), len };
            if let Some(data) = op::float_op(op, floats()) {
                return Value { shape, data, leafwise };
            }
            // Tests are floats too: 1 for true, 0 for false.
            if let Some(data) = op::float_test(op, floats()) {
                return Value { shape, data, leafwise };
            }
        }
        // `select`, as `op::eval` makes it of floats: the condition is true where it is not 0.
        if let (false, Op::Select, [c, a, b]) = (int, op, operands) {
            let data = (0..len).map(|i| if at(c, i) != 0.0 { at(a, i) } else { at(b, i) }).collect();
            return Value { shape, data, leafwise };
        }
        // Ops take at most three operands.
        let mut args = [Scalar::F32(0.0); 3];
        let n = operands.len().min(3);
        for i in 0..len {
            for (slot, v) in args.iter_mut().zip(operands) {
                *slot = Scalar::F32(at(v, i));
            }
            data.push(finish(op::eval(op, &args[..n])));
        }
        return Value { shape, data, leafwise };
    }
    each_index(&shape, |at| {
        args.clear();
        args.extend(operands.iter().map(|v| Scalar::F32(v.at(at))));
        // Element values are float32 (bools 0 or 1); ints broadcast from uniforms become floats.
        data.push(finish(op::eval(op, &args)));
    });
    Value { shape, data, leafwise }
}

/// A float operation over the elements of one or two values of one shape (or scalars).
struct Floats<'v> {
    a: &'v Value,
    b: Option<&'v Value>,
    len: usize,
}

impl op::FloatLoop for Floats<'_> {
    type Out = Vec<f32>;
    fn run<F: Fn(f32, f32) -> f32>(self, f: F) -> Vec<f32> {
        let one = |v: &Value| (v.data.len() == 1 && self.len != 1).then(|| v.data[0]);
        // The common cases as plain loops over slices, which the compiler vectorizes.
        match (one(self.a), self.b.map(|b| (b, one(b)))) {
            (None, None) => self.a.data.iter().map(|&x| f(x, 0.0)).collect(),
            (None, Some((b, None))) => self.a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
            (None, Some((_, Some(y)))) => self.a.data.iter().map(|&x| f(x, y)).collect(),
            (Some(x), Some((b, None))) => b.data.iter().map(|&y| f(x, y)).collect(),
            (Some(x), b) => vec![f(x, b.and_then(|(_, y)| y).unwrap_or(0.0)); self.len],
        }
    }
}

/// `arg` reduced over the axes `over` (bit `i`: axis `i` of the leaf's shape), keeping them:
/// each line in row-major order. An axis along which `arg` is constant still counts each
/// element of the leaf's line.
fn axis_reduce(leaf: &[usize], kind: Reduce, arg: &Value, over: Collapsed) -> Value {
    let logical = arg.logical(leaf);
    let n = logical.len();
    let reduced = |k: usize| k < 32 && over & (1 << k) != 0;
    let own = |k: usize| if k + arg.shape.len() >= n { arg.shape[k + arg.shape.len() - n] } else { 1 };
    let shape: Vec<usize> = (0..n).map(|k| if reduced(k) { 1 } else { own(k) }).collect();
    let line: Vec<usize> = (0..n).map(|k| if reduced(k) { logical[k] } else { 1 }).collect();
    // Where index `k` moves in `arg`'s data (0 along an axis it is broadcast along), as `at`.
    let mut strides = vec![0; n];
    let mut size = 1;
    for k in (0..n).rev() {
        strides[k] = if own(k) == 1 { 0 } else { size };
        size *= own(k);
    }
    let flat = |at: &[usize]| at.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>();
    // With one axis reduced (Adafactor's and SM3's statistics), a line is its elements one
    // stride apart, folded in order without walking an index.
    let single = (0..n).filter(|&k| reduced(k)).collect::<Vec<_>>();
    let mut data = Vec::with_capacity(shape.iter().product());
    each_index(&shape, |base| {
        let start = flat(base);
        if let [k] = single[..] {
            let elements = (0..logical[k]).map(|j| arg.data[start + j * strides[k]]);
            data.push(super::combine_floats(kind, Fold(super::identity(kind).f(), elements)));
        } else {
            let mut acc = super::identity(kind);
            each_index(&line, |offset| acc = super::combine(kind, acc, Scalar::F32(arg.data[start + flat(offset)])));
            data.push(acc.f());
        }
    });
    Value { shape, data, leafwise: arg.leafwise }
}

/// Floats folded in order into a starting value.
struct Fold<I>(f32, I);

impl<I: Iterator<Item = f32>> op::FloatLoop for Fold<I> {
    type Out = f32;
    fn run<F: Fn(f32, f32) -> f32>(self, f: F) -> f32 {
        self.1.fold(self.0, f)
    }
}

/// A value's logical shape and elements, row-major (borrowed when it is stored whole).
fn whole<'v>(v: &'v Value, leaf: &[usize]) -> (Vec<usize>, Cow<'v, [f32]>) {
    let shape = v.logical(leaf);
    let data = if v.shape == shape { Cow::Borrowed(v.data.as_slice()) } else { Cow::Owned(v.expand(&shape)) };
    (shape, data)
}

/// A matrix operation (a leaf-shaped value stands for the leaf's shape); NaN where the shapes
/// do not fit, which instantiation has refused already.
fn matrix(op: &MatOp, args: &[Cow<'_, Value>], leaf: &[usize]) -> Value {
    let args: Vec<(Vec<usize>, Cow<'_, [f32]>)> = args.iter().map(|a| whole(a, leaf)).collect();
    let shapes: Vec<Vec<usize>> = args.iter().map(|(s, _)| s.clone()).collect();
    let Some(shape) = op.shape(&shapes) else { return Value::scalar(f32::NAN) };
    let own = |data: Vec<f32>| Value { shape: shape.clone(), data, leafwise: false };
    // The number of matrices and each one's sides, for the batched operations.
    let sides = |s: &[usize]| (s[..s.len() - 2].iter().product::<usize>(), s[s.len() - 2], s[s.len() - 1]);
    match (op, args.as_slice()) {
        (MatOp::MatMul, [(sa, a), (sb, b)]) => {
            let ((batch, r, k), (_, _, c)) = (sides(sa), sides(sb));
            let mut data = Vec::with_capacity(batch * r * c);
            for i in 0..batch {
                // ndarray's product (matrixmultiply's blocked kernels): one order of sums for
                // every backend, since every backend runs this.
                let a = ndarray::ArrayView2::from_shape((r, k), &a[i * r * k..(i + 1) * r * k]);
                let b = ndarray::ArrayView2::from_shape((k, c), &b[i * k * c..(i + 1) * k * c]);
                let (Ok(a), Ok(b)) = (a, b) else { return Value::scalar(f32::NAN) };
                data.extend(a.dot(&b).iter());
            }
            own(data)
        }
        (MatOp::Permute(perm), [(_, a)]) if keeps(perm) => own(a.to_vec()),
        (MatOp::Permute(perm), [(sa, a)]) if swaps_last_two(perm) => {
            // Each matrix of a stack transposed (Newton-Schulz's X^T).
            let (_, r, c) = sides(sa);
            let mut data = vec![0.0f32; a.len()];
            for (src, dst) in a.chunks_exact((r * c).max(1)).zip(data.chunks_exact_mut((r * c).max(1))) {
                for i in 0..r {
                    for j in 0..c {
                        dst[j * r + i] = src[i * c + j];
                    }
                }
            }
            own(data)
        }
        (MatOp::Permute(perm), [(sa, a)]) => {
            // Walk the result in order; `strides[k]` steps through the operand along result axis k.
            let mut operand_strides = vec![1; sa.len()];
            for k in (0..sa.len().saturating_sub(1)).rev() {
                operand_strides[k] = operand_strides[k + 1] * sa[k + 1];
            }
            let strides: Vec<usize> = perm.iter().map(|&k| operand_strides[k]).collect();
            let mut data = Vec::with_capacity(a.len());
            each_index(&shape, |at| data.push(a[at.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]));
            own(data)
        }
        (MatOp::Reshape(_), [(_, a)]) => own(a.to_vec()),
        (MatOp::SpectralNorm, [(sa, a)]) => {
            let (batch, r, c) = sides(sa);
            own((0..batch).map(|i| crate::fmath::linalg::spectral_norm(r, c, &a[i * r * c..(i + 1) * r * c])).collect())
        }
        _ => Value::scalar(f32::NAN),
    }
}

/// Whether `perm` leaves every axis where it is.
fn keeps(perm: &[usize]) -> bool {
    perm.iter().enumerate().all(|(k, &p)| k == p)
}

/// Whether `perm` swaps the last two axes and keeps the others: each matrix of a stack transposed.
fn swaps_last_two(perm: &[usize]) -> bool {
    let n = perm.len();
    n >= 2 && perm[n - 2..] == [n - 1, n - 2] && keeps(&perm[..n - 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(shape: &[usize], data: &[f32]) -> Value {
        Value { shape: shape.to_vec(), data: data.to_vec(), leafwise: true }
    }

    #[test]
    fn axis_reductions_keep_one_value_per_line() {
        let leaf = [2, 3];
        let x = value(&leaf, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let rows = axis_reduce(&leaf, Reduce::Sum, &x, 0b10);
        assert_eq!(rows, value(&[2, 1], &[6.0, 15.0]));
        let cols = axis_reduce(&leaf, Reduce::Max, &x, 0b01);
        assert_eq!(cols, value(&[1, 3], &[4.0, 5.0, 6.0]));
        // Broadcast back: each element takes its row's value.
        assert_eq!(rows.expand(&leaf), vec![6.0, 6.0, 6.0, 15.0, 15.0, 15.0]);
        // A sum over an axis the value is already constant along counts every element.
        assert_eq!(axis_reduce(&leaf, Reduce::Sum, &rows, 0b11).data, vec![63.0]);
    }

    #[test]
    fn a_reduction_over_one_axis_folds_each_line_in_order() {
        // Against a walk over every index: each axis of a 3-D leaf, for a value stored whole
        // and for one broadcast along an axis (which still counts each element of the line).
        let leaf = [2, 3, 4];
        let whole = value(&leaf, &(0..24).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>());
        let rows = value(&[2, 1, 4], &(0..8).map(|i| i as f32 - 3.5).collect::<Vec<_>>());
        for arg in [&whole, &rows] {
            for axis in 0..3 {
                for kind in [Reduce::Sum, Reduce::Max] {
                    let got = axis_reduce(&leaf, kind, arg, 1 << axis);
                    let mut want = Vec::new();
                    each_index(&got.shape, |base| {
                        let mut at = base.to_vec();
                        let mut acc = super::super::identity(kind);
                        for j in 0..leaf[axis] {
                            at[axis] = j;
                            acc = super::super::combine(kind, acc, Scalar::F32(arg.at(&at)));
                        }
                        want.push(acc.f());
                    });
                    assert_eq!(got.data, want, "{kind:?} over axis {axis} of {:?}", arg.shape);
                }
            }
        }
    }

    #[test]
    fn tests_and_select_of_floats_are_evals_element_by_element() {
        // Their loops over floats must give what `op::eval` gives each element, special
        // values included, for values of the result's shape and for scalars.
        let specials = [0.0, -0.0, 1.0, -2.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40];
        let n = specials.len();
        let a: Vec<f32> = (0..n * n).map(|i| specials[i / n]).collect();
        let b: Vec<f32> = (0..n * n).map(|i| specials[i % n]).collect();
        let c: Vec<f32> = a.iter().rev().copied().collect();
        let (a, b, c) = (value(&[n * n], &a), value(&[n * n], &b), value(&[n * n], &c));
        let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::IsFinite, Op::IsNan, Op::SignBit, Op::And, Op::Or, Op::Not, Op::Select];
        for op in ops {
            for operands in [vec![&a, &b, &c], vec![&a, &Value::scalar(-0.0), &b], vec![&Value::scalar(f32::NAN), &b, &c]] {
                let args = if op == Op::Select { &operands[..] } else { &operands[..2] };
                let got = elementwise(op, &args.iter().map(|v| Cow::Borrowed(*v)).collect::<Vec<_>>(), false);
                for i in 0..n * n {
                    let at = |v: &Value| if v.data.len() == 1 { v.data[0] } else { v.data[i] };
                    let want = op::eval(op, &args.iter().map(|v| Scalar::F32(at(v))).collect::<Vec<_>>()).f();
                    assert_eq!(got.data[i].to_bits(), want.to_bits(), "{op:?} of {:?}", args.iter().map(|v| at(v)).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn operations_broadcast_as_numpy_does() {
        let sum = elementwise(Op::Add, &[Cow::Owned(value(&[2, 1], &[1.0, 2.0])), Cow::Owned(value(&[1, 3], &[10.0, 20.0, 30.0]))], false);
        assert_eq!(sum, value(&[2, 3], &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]));
        let mut seen = Vec::new();
        each_index(&[2, 2], |at| seen.push(at.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        each_index(&[0, 2], |_| panic!("no elements"));
    }

    #[test]
    fn matrix_products_and_transposes() {
        let leaf = [2, 3];
        let x = value(&leaf, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let xt = matrix(&MatOp::Permute(vec![1, 0]), &[Cow::Borrowed(&x)], &leaf);
        assert_eq!(xt, Value { leafwise: false, ..value(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]) });
        let gram = matrix(&MatOp::MatMul, &[Cow::Borrowed(&x), Cow::Owned(xt)], &leaf);
        assert_eq!(gram, Value { leafwise: false, ..value(&[2, 2], &[14.0, 32.0, 32.0, 77.0]) });
        // Inner sizes that differ give NaN (instantiation refuses them first).
        assert!(matrix(&MatOp::MatMul, &[Cow::Borrowed(&x), Cow::Borrowed(&x)], &leaf).data[0].is_nan());
    }

    #[test]
    fn stacks_of_matrices_are_taken_one_by_one() {
        // A (2, 1, 3) leaf: two 1 x 3 matrices, and their Gram matrices.
        let leaf = [2, 1, 3];
        let x = value(&leaf, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let xt = matrix(&MatOp::Permute(vec![0, 2, 1]), &[Cow::Borrowed(&x)], &leaf);
        assert_eq!(xt.shape, vec![2, 3, 1]);
        let gram = matrix(&MatOp::MatMul, &[Cow::Borrowed(&x), Cow::Borrowed(&xt)], &leaf);
        assert_eq!(gram, Value { leafwise: false, ..value(&[2, 1, 1], &[14.0, 77.0]) });
        let norms = matrix(&MatOp::SpectralNorm, &[Cow::Borrowed(&x)], &leaf);
        assert_eq!(norms.shape, vec![2, 1, 1]);
        assert!((norms.data[1] - 77f32.sqrt()).abs() < 1e-5);
        // A permutation of three axes, and a reshape that keeps the elements' order.
        let moved = matrix(&MatOp::Permute(vec![2, 0, 1]), &[Cow::Borrowed(&x)], &leaf);
        assert_eq!(moved, Value { leafwise: false, ..value(&[3, 2, 1], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]) });
        let flat = matrix(&MatOp::Reshape(vec![3, 2]), &[Cow::Borrowed(&x)], &leaf);
        assert_eq!(flat, Value { leafwise: false, ..value(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) });
        // Each matrix of a (2, 3, 4) stack transposed: element (b, j, i) is the operand's (b, i, j).
        let big = value(&[2, 3, 4], &(0..24).map(|x| x as f32).collect::<Vec<_>>());
        let t = matrix(&MatOp::Permute(vec![0, 2, 1]), &[Cow::Borrowed(&big)], &[2, 3, 4]);
        assert_eq!(t.shape, vec![2, 4, 3]);
        for (b, j, i) in (0..2).flat_map(|b| (0..4).flat_map(move |j| (0..3).map(move |i| (b, j, i)))) {
            assert_eq!(t.data[b * 12 + j * 3 + i], big.data[b * 12 + i * 4 + j]);
        }
        // Batches that differ do not fit.
        let other = value(&[3, 3, 1], &[0.0; 9]);
        assert!(matrix(&MatOp::MatMul, &[Cow::Borrowed(&x), Cow::Borrowed(&other)], &leaf).data[0].is_nan());
    }
}

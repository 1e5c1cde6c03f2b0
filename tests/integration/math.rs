//! The transcendental ops (`optc::fmath`, emitted inline by the JIT) on dense sweeps of
//! arguments: the JIT's vector body and scalar tail agree with the interpreter bit for bit,
//! with ordinary lanes and lanes left to the scalar path (zeros, infinities, NaN, negatives,
//! subnormals, huge angles, overflowing powers) side by side in one vector.

use optc::ir::op::Op;
use optc::ir::{ConstBits, Node};

use crate::jit::{Run, layouts, op_graph};

/// `n` floats from every `stride`-th bit pattern after `start`: every exponent, both signs.
fn bit_sweep(n: usize, start: u32, stride: u32) -> Vec<f32> {
    (0..n).map(|i| f32::from_bits(start.wrapping_add((i as u32).wrapping_mul(stride)))).collect()
}

/// `n` floats evenly spread over [lo, hi], where most lanes take the inline path.
fn span(n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)).collect()
}

fn run(what: &str, op: Op, args: &[Node], grads: &[f32], params: &[f32], value: f32) {
    let (graph, outputs) = op_graph(op, args);
    for layout in layouts(grads.len()) {
        let n: usize = layout.leaves.iter().map(|l| l.len()).sum();
        let run = Run {
            layout,
            graph: graph.clone(),
            outputs: outputs.clone(),
            grads: grads[..n].to_vec(),
            params: params[..n].to_vec(),
            slots: vec![vec![0.0; n], vec![0.0; n], vec![0.0; n]],
            value,
        };
        run.compare(what);
    }
}

const N: usize = 1 << 15;

#[test]
fn math_ops_agree_on_dense_sweeps() {
    let every = bit_sweep(N, 0x3F80_0000, 131_071);
    let others = bit_sweep(N, 12_345, 65_537);
    for op in [Op::Exp, Op::Log, Op::Sin, Op::Cos, Op::Tanh] {
        let name = op.name();
        run(&format!("{name} over every exponent"), op, &[Node::Grad], &every, &every, 0.0);
        run(&format!("{name} on [-100, 100]"), op, &[Node::Grad], &span(N, -100.0, 100.0), &every, 0.0);
        run(&format!("{name} on [0, 3000]"), op, &[Node::Grad], &span(N, 0.0, 3000.0), &every, 0.0);
    }
    let exponents = span(N, -40.0, 40.0);
    run("pow over every exponent", Op::Pow, &[Node::Grad, Node::Param], &every, &others, 0.0);
    run("pow of moderate bases", Op::Pow, &[Node::Grad, Node::Param], &span(N, 0.0, 30.0), &exponents, 0.0);
    run("pow of negative bases", Op::Pow, &[Node::Grad, Node::Param], &span(N, -3.0, 3.0), &span(N, -4.0, 4.0), 0.0);
    for base in [2.5f32, 0.999, 1.0, 0.0, -2.0, f32::NAN] {
        let constant = Node::Const(ConstBits::F32(base.to_bits()));
        run(&format!("pow of the constant {base}"), Op::Pow, &[constant, Node::Grad], &exponents, &every, 0.0);
        run(&format!("pow of the uniform {base}"), Op::Pow, &[Node::Value, Node::Grad], &exponents, &every, base);
    }
}

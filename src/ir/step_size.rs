//! The effective learning rate of each leaf group, found in the step graph rather than by the
//! name of some hyperparameter: the update of a group is followed down from its output
//! through multiplications by uniform values (a learning rate, a schedule's value, a plateau
//! scale, an injected hyperparameter, a parameter-free method's own step such as MoMo's `tau`
//! or DoG's distance ratio), negations and divisions by uniform values, past a decoupled
//! weight-decay term (`... - c * param`), to the direction it scales. The product of those
//! factors, negated, is the group's learning rate: positive when the update descends along
//! the direction, with the sign a user gave (`learning_rate=-1e-3` gives -0.001).
//!
//! A named step size (a definition's `let`, such as Prodigy's `dlr`) multiplying the numerator
//! of a preconditioned direction counts too, and so does one folded into the moment that is the
//! numerator (D-Adaptation's `m' = b1 * m + (1 - b1) * dlr * g`); unnamed factors inside the
//! direction (Adam's bias correction) do not. A group whose update is not a scaled direction (COCOB sets the
//! parameters from its bets; a select between two updates, as `apply_if_finite` makes) has no
//! such factor: its step size is measured from the step it takes ([`StepSize::Measured`]).

use super::op::{Kind, Op, Scalar};
use super::{Level, Named, Node, NodeId, StepIr};

/// How a group's learning rate is known.
#[derive(Clone, Debug, PartialEq)]
pub enum StepSize {
    /// The named uniform holding it after each step.
    Named(String),
    /// The update is not a scaled direction: measure the step it takes.
    Measured,
}

/// Finds each group's learning rate and adds it to the IR's named uniforms: `lr` when every
/// group has the same, else `lr[LABEL]` for the groups sharing each (their labels, see
/// [`super::Groups::labels`], joined by semicolons: `lr[*.bias]`, `lr[_]`, with the shape of groups
/// of one label whose rates differ by shape: `lr[ndim == 2 (64x3)]`), for groups whose
/// update is a scaled direction. Returns how each group's is known.
pub fn add(ir: &mut StepIr) -> Vec<StepSize> {
    let nodes: Vec<Option<NodeId>> = (0..ir.groups.len()).map(|g| factor(ir, g).map(|f| negated(ir, f))).collect();
    let mut distinct: Vec<NodeId> = nodes.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let one = distinct.len() == 1 && nodes.iter().all(Option::is_some);
    let names: Vec<(NodeId, String)> = distinct
        .into_iter()
        .map(|node| {
            let mut labels: Vec<String> = Vec::new();
            for (g, _) in nodes.iter().enumerate().filter(|(_, n)| **n == Some(node)) {
                // Groups of one label split by shape (a transform that reads it) whose rates
                // differ say which shape each is.
                let label = &ir.groups.labels[g];
                let split = nodes.iter().enumerate().any(|(h, n)| ir.groups.labels[h] == *label && *n != Some(node));
                let label = match ir.groups.leaves[g].first() {
                    Some(&l) if split => format!("{label} ({})", ir.layout.leaves[l].shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")),
                    _ => label.clone(),
                };
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
            (node, lr_name(one, &labels.join("; ")))
        })
        .collect();
    for (node, name) in &names {
        ir.named.push(Named { name: name.clone(), node: *node });
    }
    nodes
        .iter()
        .map(|n| match n.and_then(|n| names.iter().find(|(m, _)| *m == n)) {
            Some((_, name)) => StepSize::Named(name.clone()),
            None => StepSize::Measured,
        })
        .collect()
}

/// The name of a learning rate: `lr` when the whole model has `one`, else `lr[LABEL]`.
pub fn lr_name(one: bool, label: &str) -> String {
    if one { "lr".to_string() } else { format!("lr[{label}]") }
}

/// The label of a learning rate's name `lr[LABEL]` (as [`lr_name`] makes it); `None` for `lr`.
pub fn lr_label(name: &str) -> Option<&str> {
    name.strip_prefix("lr[")?.strip_suffix(']')
}

/// The product of the uniform factors of group `g`'s update, as a node (a constant 1 when
/// there are none), or `None` if the update is not a scaled direction.
fn factor(ir: &mut StepIr, g: usize) -> Option<NodeId> {
    let mut factors: Vec<(NodeId, bool)> = Vec::new();
    let minus = ir.graph.constant(Scalar::F32(-1.0));
    let mut node = ir.updates;
    loop {
        let graph = &ir.graph;
        let uniform = |n: NodeId| graph.level(n) == Level::Uniform;
        match &graph.get(node).node {
            Node::Merge(parts) => {
                node = parts.iter().find(|(groups, _)| groups.contains(g)).map(|(_, n)| *n)?;
            }
            Node::Op(Op::Mul, args) if let Some((rest, f)) = graph.scaled(args[0], args[1]) => {
                scalar_factors(graph, f, &mut factors);
                node = rest;
            }
            Node::Op(Op::Div, args) if uniform(args[1]) && !uniform(args[0]) => {
                factors.push((args[1], true));
                node = args[0];
            }
            Node::Op(Op::Div, args) if graph.level(args[1]) == Level::Leaf => node = args[0],
            Node::Op(Op::Neg, args) => {
                factors.push((minus, false));
                node = args[0];
            }
            Node::Op(op @ (Op::Add | Op::Sub), args) => {
                let (a, b) = (args[0], args[1]);
                // `target - param` sets the parameters (COCOB): not a scaled direction.
                if replaces(graph, a) || replaces(graph, b) {
                    return None;
                }
                if decays(graph, a) {
                    if *op == Op::Sub {
                        factors.push((minus, false));
                    }
                    node = b;
                } else if decays(graph, b) {
                    node = a;
                } else if let (Op::Add, Some((fresh, f))) = (op, moment_input(graph, a, b)) {
                    // Momentum kept after the learning rate (Adafactor's `ema`): the rate
                    // scales what goes into the moment.
                    if let Some(f) = f {
                        scalar_factors(graph, f, &mut factors);
                    }
                    node = fresh;
                } else if factors.is_empty() {
                    // A sum of two updates no factor scales (Lookahead's `fast - k * d`,
                    // Schedule-Free's `new - param`): not a scaled direction.
                    return None;
                } else {
                    break;
                }
            }
            // `dlr * m / (sqrt(v) + eps)`: a named step size (a definition's `let`) scaling the
            // numerator of a preconditioned direction (Prodigy). Unnamed ones, such as Adam's
            // bias correction, belong to the direction.
            Node::Op(Op::Div, args) if !uniform(args[1]) => {
                if let Node::Op(Op::Mul, m) = &graph.get(args[0]).node
                    && let Some(&f) = m.iter().find(|&&x| uniform(x) && ir.locals.iter().any(|n| n.node == x))
                {
                    factors.push((f, false));
                } else if let Some(f) = accumulated_step(ir, args[0]) {
                    factors.push((f, false));
                }
                break;
            }
            Node::Op(Op::Select, _) => return None,
            _ => break,
        }
    }
    Some(product(ir, &factors))
}

/// Adds the uniform factors of `f`, a uniform or per-leaf value scaling the update: `f` itself
/// if uniform; those of its operands if a product (instantiation multiplies a chain's factors
/// together before the elements); none if it is each leaf's own (Adafactor's parameter scale
/// and clipping, which belong to the direction: the learning rate is among the others).
fn scalar_factors(graph: &super::Graph, f: NodeId, factors: &mut Vec<(NodeId, bool)>) {
    match &graph.get(f).node {
        _ if graph.level(f) == Level::Uniform => factors.push((f, false)),
        Node::Op(Op::Mul, args) => args.iter().for_each(|&a| scalar_factors(graph, a, factors)),
        _ => {}
    }
}

/// The fresh term of a moment `c * x + b * m` (or `x + b * m`), where `m` is the moment's value
/// before the step: `x`, past the moment's own coefficient `c`, with the factors that came
/// with `c` when `x` is itself scaled (`x = y * f` makes `c * x` the product `y * (f * c)`).
/// `None` if `a + b` is no moment.
fn moment_input(graph: &super::Graph, a: NodeId, b: NodeId) -> Option<(NodeId, Option<NodeId>)> {
    let uniform = |n: NodeId| graph.level(n) == Level::Uniform;
    let state = |n: NodeId| matches!(graph.get(n).node, Node::State(_)) && graph.level(n) == Level::Element;
    let scaled_state = |n: NodeId| match &graph.get(n).node {
        Node::Op(Op::Mul, args) => args.iter().any(|&x| uniform(x)) && args.iter().any(|&x| state(x)),
        _ => state(n),
    };
    let fresh = match (scaled_state(a), scaled_state(b)) {
        (false, true) => a,
        (true, false) => b,
        _ => return None,
    };
    let Node::Op(Op::Mul, args) = &graph.get(fresh).node else { return Some((fresh, None)) };
    Some(match graph.scaled(args[0], args[1]) {
        Some((x, f)) => match &graph.get(f).node {
            // The product of what `x` was scaled by and, last, the coefficient.
            Node::Op(Op::Mul, fc) if uniform(fc[1]) => (x, Some(fc[0])),
            _ if uniform(f) => (x, None),
            _ => (fresh, None),
        },
        None => (fresh, None),
    })
}

/// A named step size folded into a moment: `b * m + c * dlr * g`, where the term that reads
/// this step's gradient is scaled by a definition's runtime `let` (D-Adaptation's `dlr`). The
/// moment's other term, and factors that are not products (`(1 - b) * g`), are the direction's.
fn accumulated_step(ir: &StepIr, n: NodeId) -> Option<NodeId> {
    let graph = &ir.graph;
    let Node::Op(Op::Add, terms) = &graph.get(n).node else { return None };
    let fresh = terms.iter().find(|&&t| reads_grad(graph, t, 4))?;
    named_in_product(ir, *fresh, 4)
}

/// Whether `n` reads the gradient within `depth` operations.
fn reads_grad(graph: &super::Graph, n: NodeId, depth: usize) -> bool {
    match &graph.get(n).node {
        Node::Grad => true,
        Node::Op(_, args) if depth > 0 => args.iter().any(|&a| reads_grad(graph, a, depth - 1)),
        _ => false,
    }
}

/// A runtime uniform `let` of a definition among the factors of the product `n`.
fn named_in_product(ir: &StepIr, n: NodeId, depth: usize) -> Option<NodeId> {
    let graph = &ir.graph;
    if graph.level(n) == Level::Uniform && graph.as_const(n).is_none() && ir.locals.iter().any(|l| l.node == n) {
        return Some(n);
    }
    match &graph.get(n).node {
        Node::Op(Op::Mul, args) if depth > 0 => args.iter().find_map(|&a| named_in_product(ir, a, depth - 1)),
        _ => None,
    }
}

/// Whether `n` is `-param`, which makes `target - param` an update that sets the parameters.
fn replaces(graph: &super::Graph, n: NodeId) -> bool {
    let minus_one = |x: NodeId| graph.as_const(x).is_some_and(|c| c.f() == -1.0);
    match &graph.get(n).node {
        Node::Op(Op::Neg, args) => graph.get(args[0]).node == Node::Param,
        Node::Op(Op::Mul, args) => {
            minus_one(args[0]) && graph.get(args[1]).node == Node::Param || minus_one(args[1]) && graph.get(args[0]).node == Node::Param
        }
        _ => false,
    }
}

/// Whether `n` is a weight-decay term: the parameters times uniform or per-leaf values.
fn decays(graph: &super::Graph, n: NodeId) -> bool {
    match &graph.get(n).node {
        Node::Param => true,
        Node::Op(Op::Neg, args) => decays(graph, args[0]),
        Node::Op(Op::Mul, args) => {
            let scalar = |x: NodeId| graph.level(x) < Level::Element;
            scalar(args[0]) && decays(graph, args[1]) || scalar(args[1]) && decays(graph, args[0])
        }
        _ => false,
    }
}

/// The product of `factors` (each divided by when marked), in float32.
fn product(ir: &mut StepIr, factors: &[(NodeId, bool)]) -> NodeId {
    let graph = &mut ir.graph;
    let mut acc = graph.constant(Scalar::F32(1.0));
    for &(f, reciprocal) in factors {
        let f = if graph.kind(f) == Kind::F32 { f } else { graph.add(Node::Op(Op::ToF32, vec![f]), Level::Uniform, Kind::F32) };
        let op = if reciprocal { Op::Div } else { Op::Mul };
        acc = match (graph.as_const(acc), graph.as_const(f)) {
            (Some(a), Some(b)) => graph.constant(super::op::eval(op, &[a, b])),
            _ => graph.add(Node::Op(op, vec![acc, f]), Level::Uniform, Kind::F32),
        };
    }
    acc
}

fn negated(ir: &mut StepIr, f: NodeId) -> NodeId {
    let graph = &mut ir.graph;
    match graph.as_const(f) {
        Some(c) => graph.constant(super::op::eval(Op::Neg, &[c])),
        None => graph.add(Node::Op(Op::Neg, vec![f]), Level::Uniform, Kind::F32),
    }
}

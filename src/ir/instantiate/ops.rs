//! Building one operation of the graph: constants folded in float32, and the rewrites that save
//! work per element (a division by a uniform value, a product by several).

use super::{Inst, Which};
use crate::ir::op::{Kind, Op, Scalar};
use crate::ir::{Graph, Level, Node, NodeId};

impl Inst<'_> {
    /// Builds `op` on nodes, folding constants in float32. A per-element value divided by a
    /// uniform or per-leaf one becomes a multiplication by its reciprocal, computed once per
    /// step (or leaf) instead of once per element: a divide costs several multiplies, and the
    /// conformance cases pass at their tolerances either way. (A divisor below 2^-128 in
    /// magnitude has an infinite reciprocal, so its quotients become infinite or NaN instead
    /// of large; no standard-library divisor gets there.) For the same reason a per-element
    /// value multiplied in turn by uniform or per-leaf factors is multiplied once by their
    /// product (`g * a * b` as `g * (a * b)`): a chain's learning rate, clipping and parameter
    /// scale (Adafactor's four) cost one multiply per element, not one each.
    pub fn op(&mut self, which: Which, op: Op, args: &[NodeId]) -> NodeId {
        let g = self.graph(which);
        if let (Op::Div, &[a, b]) = (op, args)
            && g.level(a) == Level::Element
            && g.level(b) < Level::Element
        {
            let one = g.constant(Scalar::F32(1.0));
            let reciprocal = self.op(which, Op::Div, &[one, b]);
            return self.op(which, Op::Mul, &[a, reciprocal]);
        }
        let g = self.graph(which);
        let level = args.iter().map(|a| g.level(*a)).max().unwrap_or(Level::Uniform);
        let kinds: Vec<Kind> = args.iter().map(|a| g.kind(*a)).collect();
        let kind = result_kind(op, &kinds);
        if let Some(consts) = args.iter().map(|a| g.as_const(*a)).collect::<Option<Vec<Scalar>>>() {
            return g.constant(crate::ir::op::eval(op, &consts));
        }
        // `x * 1.0` is `x` exactly (NaN payloads aside), as in `g * (max_norm / norm)` with
        // `max_norm = 1`: one multiply per element fewer.
        if let (Op::Mul, &[a, b]) = (op, args) {
            let is_one = |n: NodeId| g.as_const(n) == Some(Scalar::F32(1.0));
            match (is_one(a), is_one(b)) {
                (true, _) if g.kind(b) == Kind::F32 => return b,
                (_, true) if g.kind(a) == Kind::F32 => return a,
                _ => {}
            }
            if let Some((x, u, k)) = uniform_factors(g, a, b) {
                // The newest factor last: `step_size` takes it for a moment's coefficient.
                let factor = self.op(which, Op::Mul, &[u, k]);
                return self.op(which, Op::Mul, &[x, factor]);
            }
        }
        g.add(Node::Op(op, args.to_vec()), level, kind)
    }
}

/// The kind of an op's result.
fn result_kind(op: Op, kinds: &[Kind]) -> Kind {
    use Op::*;
    let all_int = kinds.iter().all(|k| *k == Kind::I32);
    match op {
        Eq | Ne | Lt | Le | Gt | Ge | IsFinite | IsNan | SignBit | And | Or | Not => Kind::Bool,
        Add | Sub | Mul | Rem | Min | Max | Abs | Sign | Neg if all_int => Kind::I32,
        ToI32 => Kind::I32,
        Select => {
            if kinds.get(1) == kinds.get(2) {
                kinds.get(1).copied().unwrap_or(Kind::F32)
            } else {
                Kind::F32
            }
        }
        _ => Kind::F32,
    }
}

/// `(x * u) * k` (either way round) with `x` per element and `u`, `k` not: `(x, u, k)`, to be
/// computed as `x * (u * k)`, once per step or leaf instead of once per element.
fn uniform_factors(g: &Graph, a: NodeId, b: NodeId) -> Option<(NodeId, NodeId, NodeId)> {
    let (product, k) = g.scaled(a, b)?;
    let Node::Op(Op::Mul, args) = &g.get(product).node else { return None };
    let &[p, q] = args.as_slice() else { return None };
    let (x, u) = g.scaled(p, q)?;
    if [k, x, u].iter().any(|&n| g.kind(n) != Kind::F32) {
        return None;
    }
    // Two constants would fold into one, and `step_size` could no longer tell a learning rate
    // (`scale(-0.01)`) from a moment's coefficient after it (`ema`'s 0.1).
    (g.as_const(u).is_none() || g.as_const(k).is_none()).then_some((x, u, k))
}

//! The shapes of per-element values of a leaf: the leaf's, the leaf's with size 1 on reduced
//! axes (`sum(x, axis=...)`), or a matrix operation's. One home for numpy's broadcasting rule,
//! used by instantiation (to refuse shapes that do not fit, at the transform) and by the
//! whole-leaf programs that compute them (`interp::tensor`).

use std::collections::HashMap;

use super::{Graph, Level, Node, NodeId};

/// The shape `a` and `b` broadcast to, numpy's rule (`None` if they do not).
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], k: usize| if k + s.len() >= n { s[k + s.len() - n] } else { 1 };
    (0..n)
        .map(|k| match (dim(a, k), dim(b, k)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// The shape of node `id` of `graph` on a leaf of shape `leaf`: the leaf's for its values and
/// what is computed from them (a reduction over axes stands for one value per line of the
/// leaf), a matrix operation's own; `None` where operands do not fit together.
pub fn of(graph: &Graph, id: NodeId, leaf: &[usize]) -> Option<Vec<usize>> {
    Shapes { graph, leaf, memo: HashMap::new() }.of(id).map(|s| s.shape)
}

/// The shape of a value, and whether it is the leaf's own (broadcast along reduced axes).
#[derive(Clone)]
struct Shape {
    shape: Vec<usize>,
    leafwise: bool,
}

struct Shapes<'g> {
    graph: &'g Graph,
    leaf: &'g [usize],
    memo: HashMap<NodeId, Option<Shape>>,
}

impl Shapes<'_> {
    fn of(&mut self, id: NodeId) -> Option<Shape> {
        if let Some(s) = self.memo.get(&id) {
            return s.clone();
        }
        let info = self.graph.get(id);
        let leafwise = |shape: Vec<usize>| Shape { shape, leafwise: true };
        let shape = if info.level != Level::Element {
            Some(leafwise(Vec::new()))
        } else {
            match &info.node {
                Node::Op(_, args) => args.iter().try_fold(leafwise(Vec::new()), |s, a| {
                    let a = self.of(*a)?;
                    Some(Shape { shape: broadcast(&s.shape, &a.shape)?, leafwise: s.leafwise && a.leafwise })
                }),
                Node::AxisReduce { arg, axes, .. } => {
                    let arg = self.of(*arg)?;
                    let reduced = arg.shape.iter().enumerate().map(|(k, &n)| if k < 32 && axes & (1 << k) != 0 { 1 } else { n });
                    Some(if arg.leafwise { arg } else { Shape { shape: reduced.collect(), leafwise: false } })
                }
                Node::Matrix { op, args } => {
                    let shapes: Option<Vec<Shape>> = args.iter().map(|a| self.of(*a)).collect();
                    let shapes: Vec<Vec<usize>> = shapes?.into_iter().map(|s| s.shape).collect();
                    op.shape(&shapes).map(|shape| Shape { shape, leafwise: false })
                }
                // The leaf's own values, and state (which broadcasts to it).
                _ => Some(leafwise(self.leaf.to_vec())),
            }
        };
        self.memo.insert(id, shape.clone());
        shape
    }
}

/// A shape as Python prints it: `(4, 6)`, `(3,)`, `()`.
pub fn show(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_broadcast_as_numpy_does() {
        assert_eq!(broadcast(&[2, 1], &[1, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[], &[4]), Some(vec![4]));
        assert_eq!(broadcast(&[2, 3], &[3, 2]), None);
        assert_eq!((show(&[4, 6]), show(&[3]), show(&[])), ("(4, 6)".into(), "(3,)".into(), "()".into()));
    }
}

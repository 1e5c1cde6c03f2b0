//! Rules of a few values: an element value that depends on the elements only through a value
//! taking a few values known before the step, such as `sign(g) * sign(m)` (PowerSign's
//! exponent), is one of a few values too. Where it is costly to compute (`pow`, `exp`, `log`,
//! ...), it is computed once per step for each of them, as uniform or per-leaf values, and
//! each element selects its own by comparisons: PowerSign's `alpha ^ (decay * sign(g) *
//! sign(m))` becomes five powers per step and four comparisons per element.
//!
//! The rewritten graph is the step's meaning for both backends, and it gives every element the
//! very bits the original gives, but for which NaN (a NaN is taken as one value).

use std::collections::HashMap;

use super::op::{self, Op, Scalar};
use super::{Graph, Kind, Level, Node, NodeId, StepIr};

/// The most values a node may take to count as few.
const FEW: usize = 8;

/// Rewrites `ir`'s step graph as [`specialize`] does, where it finds something to rewrite.
pub fn specialize_step(ir: &mut StepIr) {
    let mut roots = vec![ir.updates];
    roots.extend(ir.slots.iter().map(|s| s.next));
    roots.extend(ir.named.iter().chain(&ir.locals).map(|n| n.node));
    let Some((graph, map)) = specialize(&ir.graph, &roots) else { return };
    ir.graph = graph;
    let at = |n: NodeId| map[n as usize];
    ir.updates = at(ir.updates);
    for slot in &mut ir.slots {
        slot.next = at(slot.next);
    }
    for named in ir.named.iter_mut().chain(&mut ir.locals) {
        named.node = at(named.node);
    }
}

/// `graph` with each costly element value that depends on the elements only through one
/// few-valued node replaced by a select among its values for each of that node's values, and
/// where each node `roots` use went (the others are dropped); `None` where there is no such
/// value. `roots` are the values the step gives and names (a value they use as a whole is
/// rewritten as a whole).
pub fn specialize(graph: &Graph, roots: &[NodeId]) -> Option<(Graph, Vec<NodeId>)> {
    // Few values start at a `sign`: most pipelines have none, and are not copied.
    if !graph.nodes.iter().any(|i| i.level == Level::Element && matches!(i.node, Node::Op(Op::Sign, _))) {
        return None;
    }
    let (gathered, first) = gather_units(graph);
    let roots: Vec<NodeId> = roots.iter().map(|&r| first[r as usize]).collect();
    let (selected, second) = select_values(&gathered, &roots)?;
    let roots: Vec<NodeId> = roots.iter().map(|&r| second[r as usize]).collect();
    let (new, third) = live(&selected, &roots);
    let at = |n: NodeId| second.get(n as usize).and_then(|&n| third.get(n as usize)).copied().unwrap_or(NodeId::MAX);
    Some((new, first.iter().map(|&n| at(n)).collect()))
}

/// `graph` with only the nodes `roots` use (the values a rewrite replaced, and the ones it
/// folded on the way, would otherwise stay in listings); nodes left out map to `NodeId::MAX`.
fn live(graph: &Graph, roots: &[NodeId]) -> (Graph, Vec<NodeId>) {
    let mut used = vec![false; graph.nodes.len()];
    let mut stack = roots.to_vec();
    while let Some(n) = stack.pop() {
        if !std::mem::replace(&mut used[n as usize], true) {
            stack.extend(graph.get(n).node.args());
        }
    }
    rebuild(graph, |_, i, _| (!used[i as usize]).then_some(NodeId::MAX))
}

/// A copy of `graph`, node by node in order, where `replace(new, node, map)` may give a node
/// its own replacement (`map`: where the nodes before it went); the others are copied with
/// their operands moved. Returns the copy and where each node went.
fn rebuild(graph: &Graph, mut replace: impl FnMut(&mut Graph, NodeId, &[NodeId]) -> Option<NodeId>) -> (Graph, Vec<NodeId>) {
    let mut new = Graph::default();
    let mut map: Vec<NodeId> = Vec::with_capacity(graph.nodes.len());
    for (i, info) in graph.nodes.iter().enumerate() {
        new.set_origin(graph.origin(i as NodeId));
        let id = match replace(&mut new, i as NodeId, &map) {
            Some(id) => id,
            None => new.add(info.node.map_args(|a| map[a as usize]), info.level, info.kind),
        };
        map.push(id);
    }
    (new, map)
}

/// `graph` with products by several values of unit size regrouped, `(u * s) * r` as
/// `u * (s * r)`, where `u` is the same for every element and `s` and `r` are each -1, ±0, 1
/// or NaN (a `sign`): a product by such values is exact in any order, so the two give the same
/// bits, and `s * r` takes only those values (PowerSign's `decay * sign(g) * sign(m)`).
fn gather_units(graph: &Graph) -> (Graph, Vec<NodeId>) {
    rebuild(graph, |new, i, map| {
        let info = graph.get(i);
        match &info.node {
            Node::Op(Op::Mul, args) if info.level == Level::Element && info.kind == Kind::F32 => {
                let (a, b) = (map[args[0] as usize], map[args[1] as usize]);
                regroup(new, a, b).or_else(|| regroup(new, b, a))
            }
            _ => None,
        }
    })
}

/// `u * (s * r)` for `x = u * s` (either order), if `s` and `r` are of unit size and `u` is
/// not an element value.
fn regroup(graph: &mut Graph, x: NodeId, r: NodeId) -> Option<NodeId> {
    let Node::Op(Op::Mul, args) = &graph.get(x).node else { return None };
    let (a, b) = (args[0], args[1]);
    if !unit(graph, r) {
        return None;
    }
    let (u, s) = [(a, b), (b, a)].into_iter().find(|&(u, s)| graph.level(u) != Level::Element && unit(graph, s))?;
    let inner = graph.add(Node::Op(Op::Mul, vec![s, r]), Level::Element, Kind::F32);
    Some(graph.add(Node::Op(Op::Mul, vec![u, inner]), Level::Element, Kind::F32))
}

/// Whether an element value is always -1, ±0, 1 or NaN: a `sign`, or a product or negation of
/// such values.
fn unit(graph: &Graph, n: NodeId) -> bool {
    let info = graph.get(n);
    info.level == Level::Element
        && info.kind == Kind::F32
        && match &info.node {
            Node::Op(Op::Sign, _) => true,
            Node::Op(Op::Neg, args) => unit(graph, args[0]),
            Node::Op(Op::Mul, args) => args.iter().all(|&a| unit(graph, a)),
            _ => false,
        }
}

/// The rewrite of [`specialize`] on a graph whose unit products are gathered.
fn select_values(graph: &Graph, roots: &[NodeId]) -> Option<(Graph, Vec<NodeId>)> {
    let values = few_values(graph);
    let through = through(graph, &values);
    let costly = costly(graph, &through);
    // Rewritten: the largest such values, those some user (or a root) takes as they are.
    let mut whole = vec![false; graph.nodes.len()];
    for (u, info) in graph.nodes.iter().enumerate() {
        for a in info.node.args() {
            if through[a as usize].is_some() && through[u] != through[a as usize] {
                whole[a as usize] = true;
            }
        }
    }
    for &r in roots {
        whole[r as usize] |= through[r as usize].is_some();
    }
    let chosen: Vec<bool> = (0..graph.nodes.len())
        .map(|i| whole[i] && costly[i] && graph.nodes[i].kind == Kind::F32 && through[i].is_some_and(|t| t as usize != i))
        .collect();
    if !chosen.contains(&true) {
        return None;
    }
    Some(rebuild(graph, |new, i, map| {
        let t = through[i as usize].filter(|_| chosen[i as usize])?;
        let domain = values[t as usize].as_deref().unwrap_or_default();
        Some(select_among(graph, new, map, i, t, domain))
    }))
}

/// The values each element node takes where they are few and known before the step (NaNs as
/// one): a `sign`, and arithmetic of such values and constants.
fn few_values(graph: &Graph) -> Vec<Option<Vec<Scalar>>> {
    let mut out: Vec<Option<Vec<Scalar>>> = Vec::with_capacity(graph.nodes.len());
    for info in &graph.nodes {
        let element_float = info.level == Level::Element && info.kind == Kind::F32;
        let values = match &info.node {
            Node::Op(Op::Sign, _) if element_float => Some([-1.0, -0.0, 0.0, 1.0, f32::NAN].map(Scalar::F32).to_vec()),
            Node::Op(op @ (Op::Add | Op::Sub | Op::Mul | Op::Neg | Op::Abs), args) if element_float => {
                let sets: Option<Vec<Vec<Scalar>>> = args
                    .iter()
                    .map(|&a| match graph.as_const(a) {
                        Some(c) => Some(vec![c]),
                        None => out[a as usize].clone(),
                    })
                    .collect();
                sets.and_then(|sets| all_results(*op, &sets))
            }
            _ => None,
        };
        out.push(values);
    }
    out
}

/// `op` on every combination of `sets`' values, each result once; `None` if there are many.
fn all_results(op: Op, sets: &[Vec<Scalar>]) -> Option<Vec<Scalar>> {
    let mut combos: Vec<Vec<Scalar>> = vec![Vec::new()];
    for set in sets {
        combos = combos.iter().flat_map(|c| set.iter().map(move |v| [c.as_slice(), &[*v]].concat())).collect();
    }
    let mut out: Vec<Scalar> = Vec::new();
    for c in combos {
        let r = op::eval(op, &c);
        if !out.iter().any(|o| same(*o, r)) {
            out.push(r);
        }
    }
    (out.len() <= FEW && out.iter().all(|r| r.kind() == Kind::F32)).then_some(out)
}

/// The same value: the same bits, or both NaN.
fn same(a: Scalar, b: Scalar) -> bool {
    match (a, b) {
        (Scalar::F32(x), Scalar::F32(y)) => x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan(),
        _ => a == b,
    }
}

/// For each element node, the few-valued node its value depends on the elements through, if
/// there is exactly one and nothing else of the elements: itself for a few-valued node, and
/// an op whose element operands all depend on the same one.
fn through(graph: &Graph, values: &[Option<Vec<Scalar>>]) -> Vec<Option<NodeId>> {
    let mut out: Vec<Option<NodeId>> = Vec::with_capacity(graph.nodes.len());
    for (i, info) in graph.nodes.iter().enumerate() {
        let t = if info.level != Level::Element {
            None
        } else if values[i].is_some() {
            Some(i as NodeId)
        } else if let Node::Op(_, args) = &info.node {
            let mut element = args.iter().filter(|&&a| graph.level(a) == Level::Element).map(|&a| out[a as usize]);
            match element.next() {
                Some(Some(t)) if element.all(|u| u == Some(t)) => Some(t),
                _ => None,
            }
        } else {
            None
        };
        out.push(t);
    }
    out
}

/// Whether computing the node from its few-valued node takes a costly op: a transcendental
/// function, or one the JIT calls per lane (a few comparisons and selects cost as much as a
/// division or a square root, and more than the rest).
fn costly(graph: &Graph, through: &[Option<NodeId>]) -> Vec<bool> {
    let mut out = vec![false; graph.nodes.len()];
    for (i, info) in graph.nodes.iter().enumerate() {
        if let (Some(t), Node::Op(op, args)) = (through[i], &info.node)
            && t as usize != i
        {
            let own = op.is_math() || matches!(op, Op::Rem | Op::Cbrt);
            out[i] = own || args.iter().any(|&a| through[a as usize] == Some(t) && out[a as usize]);
        }
    }
    out
}

/// Node `n` of `old` (which depends on the elements only through `t`, taking `domain`) in
/// `new`: its value for each of `t`'s values, computed before the loop, selected by `t`.
fn select_among(old: &Graph, new: &mut Graph, map: &[NodeId], n: NodeId, t: NodeId, domain: &[Scalar]) -> NodeId {
    let f = Scalar::F32;
    let has = |x: f32| domain.iter().any(|&v| same(v, f(x)));
    let at = |new: &mut Graph, v: Scalar| value_at(old, new, map, n, t, v, &mut HashMap::new());
    let nan = has(f32::NAN).then(|| at(new, f(f32::NAN)));
    // ±0 compare equal: the sign bit tells them apart, where their values differ.
    let zeros = [-0.0, 0.0].map(|z| has(z).then(|| at(new, f(z))));
    let others: Vec<(Scalar, NodeId)> = domain.iter().filter(|v| v.f() != 0.0 && !v.f().is_nan()).map(|&v| (v, at(new, v))).collect();
    let t = map[t as usize];
    let element = |new: &mut Graph, op: Op, args: Vec<NodeId>, kind: Kind| new.add(Node::Op(op, args), Level::Element, kind);
    // Each value where `t` equals its own, the value before elsewhere: the first one (NaN's if
    // `t` takes NaN) stands for what no comparison picks.
    let mut result = nan;
    let mut pick = |new: &mut Graph, equal_to: Scalar, value: NodeId| {
        result = Some(match result {
            None => value,
            Some(otherwise) => {
                let c = new.constant(equal_to);
                let cond = element(new, Op::Eq, vec![t, c], Kind::Bool);
                element(new, Op::Select, vec![cond, value, otherwise], Kind::F32)
            }
        });
    };
    let zero = match zeros {
        [Some(negative), Some(positive)] if negative != positive => {
            let sign = element(new, Op::SignBit, vec![t], Kind::Bool);
            Some(element(new, Op::Select, vec![sign, negative, positive], Kind::F32))
        }
        [negative, positive] => positive.or(negative),
    };
    if let Some(zero) = zero {
        pick(new, f(0.0), zero);
    }
    for (v, value) in others {
        pick(new, v, value);
    }
    result.unwrap_or_else(|| new.constant(f(f32::NAN)))
}

/// Node `n` of `old` with `t` taken as `v`, in `new`: a uniform or per-leaf value (folded where
/// its operands are constants, as the interpreter would compute it).
fn value_at(old: &Graph, new: &mut Graph, map: &[NodeId], n: NodeId, t: NodeId, v: Scalar, memo: &mut HashMap<NodeId, NodeId>) -> NodeId {
    if n == t {
        return new.constant(v);
    }
    if old.level(n) != Level::Element {
        return map[n as usize];
    }
    if let Some(&done) = memo.get(&n) {
        return done;
    }
    let info = old.get(n);
    let Node::Op(op, args) = &info.node else { unreachable!("a value through a few-valued node is an op") };
    let args: Vec<NodeId> = args.iter().map(|&a| value_at(old, new, map, a, t, v, memo)).collect();
    let consts: Option<Vec<Scalar>> = args.iter().map(|&a| new.as_const(a)).collect();
    let id = match consts {
        Some(c) => new.constant(op::eval(*op, &c)),
        None => {
            let level = args.iter().map(|&a| new.level(a)).max().unwrap_or(Level::Uniform);
            new.add(Node::Op(*op, args), level, info.kind)
        }
    };
    memo.insert(n, id);
    id
}

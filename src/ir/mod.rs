//! The step IR: one step of a pipeline on one parameter layout, as a graph of scalar operations
//! at three levels (uniform, per leaf, per element), with state slots, reductions, and the leaf
//! groups that masks and partitions cut the layout into.
//!
//! Architecture invariant: the graph is the meaning of a step. `plan` only decides where and
//! when each node is computed; the interpreter and the JIT compute the same nodes in the same
//! order of reductions.

pub mod axes;
pub mod buffers;
pub mod finite;
pub mod groups;
pub mod instantiate;
pub mod layout;
pub mod merge;
pub mod op;
pub mod plan;
pub mod print;
pub mod shapes;
pub mod unused;
pub mod step_size;

use std::collections::HashMap;
use std::fmt;

use crate::diagnostic::Diagnostic;
use crate::source::Span;

pub use groups::{GroupSet, Groups};
pub use layout::{Layout, Leaf};
pub use op::{Kind, Op, Scalar};
pub use crate::fmath::storage::Storage;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = u32;
/// Index of a state slot in [`StepIr::slots`].
pub type SlotId = u32;

/// Where a runtime value lives (compile-time values are folded into constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Uniform,
    Leaf,
    Element,
}

impl Level {
    pub fn describe(self) -> &'static str {
        match self {
            Level::Uniform => "uniform",
            Level::Leaf => "per-leaf",
            Level::Element => "per-element",
        }
    }
}

/// How a reduction combines values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    Sum,
    Max,
    Min,
    /// All true.
    All,
    /// Any true.
    Any,
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant (compile-time values end up here, rounded to float32).
    Const(ConstBits),
    /// The loss passed to this step.
    Value,
    /// The incoming gradient.
    Grad,
    /// The parameters as passed to this step.
    Param,
    /// Number of elements of each leaf.
    LeafNumel,
    /// A state slot as it was at the start of the step.
    State(SlotId),
    Op(Op, Vec<NodeId>),
    /// Over the leaves of `groups`: a per-element or per-leaf value → uniform.
    Reduce { kind: Reduce, arg: NodeId, groups: GroupSet },
    /// Within each leaf: a per-element value → per leaf.
    LeafReduce { kind: Reduce, arg: NodeId },
    /// Within each leaf: a per-element value reduced over the axes of `axes` (bit `i` for
    /// axis `i`), each element taking the result of its own line (numpy's `keepdims=True`,
    /// broadcast back). Accumulated by a pass of a row program, or computed over a reduced
    /// shape (`interp::tensor`).
    AxisReduce { kind: Reduce, arg: NodeId, axes: u32 },
    /// A matrix operation on values of a leaf (`matmul`, `transpose`, `reshape`,
    /// `spectral_norm`), batched over leading axes as numpy's: a per-element value of its own
    /// shape. Computed over whole leaves (`interp::tensor`).
    Matrix { op: MatOp, args: Vec<NodeId> },
    /// A value defined piecewise over leaf groups (the output of `masked` and `partition`).
    Merge(Vec<(GroupSet, NodeId)>),
}

impl Node {
    /// Its operands.
    pub fn args(&self) -> Vec<NodeId> {
        match self {
            Node::Op(_, args) | Node::Matrix { args, .. } => args.clone(),
            Node::Reduce { arg, .. } | Node::LeafReduce { arg, .. } | Node::AxisReduce { arg, .. } => vec![*arg],
            Node::Merge(arms) => arms.iter().map(|(_, n)| *n).collect(),
            Node::Const(_) | Node::Value | Node::Grad | Node::Param | Node::LeafNumel | Node::State(_) => Vec::new(),
        }
    }

    /// The same node with each operand `n` replaced by `f(n)`, in order.
    pub fn map_args(&self, mut f: impl FnMut(NodeId) -> NodeId) -> Node {
        match self {
            Node::Op(op, args) => Node::Op(*op, args.iter().map(|&a| f(a)).collect()),
            Node::Matrix { op, args } => Node::Matrix { op: op.clone(), args: args.iter().map(|&a| f(a)).collect() },
            Node::Reduce { kind, arg, groups } => Node::Reduce { kind: *kind, arg: f(*arg), groups: groups.clone() },
            Node::LeafReduce { kind, arg } => Node::LeafReduce { kind: *kind, arg: f(*arg) },
            Node::AxisReduce { kind, arg, axes } => Node::AxisReduce { kind: *kind, arg: f(*arg), axes: *axes },
            Node::Merge(arms) => Node::Merge(arms.iter().map(|(g, n)| (g.clone(), f(*n))).collect()),
            other => other.clone(),
        }
    }
}

/// An operation on a leaf's values as a matrix, or a stack of matrices (the last two axes;
/// leading axes are a batch, as numpy's `matmul` takes them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MatOp {
    /// `a @ b`: (.., r × k) by (.., k × c) with the same batch, each entry summed in order of `k`.
    MatMul,
    /// Axes permuted: axis `k` of the result is axis `perm[k]` of the operand (numpy's
    /// `transpose(x, axes)`; `transpose(x)` reverses them).
    Permute(Vec<usize>),
    /// The elements in row-major order, as the given shape (numpy's `reshape`).
    Reshape(Vec<usize>),
    /// The largest singular value of each matrix, as a 1 × 1 matrix.
    SpectralNorm,
}

impl MatOp {
    /// Its name in a `.opt` file.
    pub fn name(&self) -> &'static str {
        match self {
            MatOp::MatMul => "matmul",
            MatOp::Permute(_) => "transpose",
            MatOp::Reshape(_) => "reshape",
            MatOp::SpectralNorm => "spectral_norm",
        }
    }

    /// The shape of its result from its operands' shapes; `None` where they do not fit.
    pub fn shape(&self, args: &[Vec<usize>]) -> Option<Vec<usize>> {
        let matrix = |s: &Vec<usize>| s.len() >= 2;
        match (self, args) {
            (MatOp::MatMul, [a, b]) if matrix(a) && a.len() == b.len() && a[..a.len() - 2] == b[..b.len() - 2] => {
                let (n, m) = (a.len(), b.len());
                (a[n - 1] == b[m - 2]).then(|| [&a[..n - 1], &b[m - 1..]].concat())
            }
            (MatOp::Permute(perm), [a]) if is_permutation(perm, a.len()) => Some(perm.iter().map(|&k| a[k]).collect()),
            (MatOp::Reshape(shape), [a]) if shape.iter().product::<usize>() == a.iter().product::<usize>() => Some(shape.clone()),
            (MatOp::SpectralNorm, [a]) if matrix(a) => Some([&a[..a.len() - 2], &[1, 1]].concat()),
            _ => None,
        }
    }
}

/// Whether `perm` lists each of `0..n` once.
pub fn is_permutation(perm: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    perm.len() == n && perm.iter().all(|&k| k < n && !std::mem::replace(&mut seen[k], true))
}

/// A scalar as hashable bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConstBits {
    F32(u32),
    I32(i32),
    Bool(bool),
}

impl ConstBits {
    pub fn scalar(self) -> Scalar {
        match self {
            ConstBits::F32(b) => Scalar::F32(f32::from_bits(b)),
            ConstBits::I32(n) => Scalar::I32(n),
            ConstBits::Bool(b) => Scalar::Bool(b),
        }
    }

    pub fn from_scalar(s: Scalar) -> ConstBits {
        match s {
            Scalar::F32(x) => ConstBits::F32(x.to_bits()),
            Scalar::I32(n) => ConstBits::I32(n),
            Scalar::Bool(b) => ConstBits::Bool(b),
        }
    }
}

/// A node and what is known about it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub node: Node,
    pub level: Level,
    pub kind: Kind,
}

/// A graph with hash-consing: building the same node twice gives the same id, so common
/// subexpressions across the transforms of a chain are shared.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<NodeInfo>,
    dedup: HashMap<Node, NodeId>,
    /// By node: the `.opt` statement it was first built for, if known (for listings only: it
    /// takes no part in the graph's meaning or in finding equal nodes).
    origins: Vec<Option<Span>>,
    /// The origin of the nodes added from now on.
    origin: Option<Span>,
}

impl Graph {
    pub fn get(&self, id: NodeId) -> &NodeInfo {
        &self.nodes[id as usize]
    }

    pub fn level(&self, id: NodeId) -> Level {
        self.get(id).level
    }

    pub fn kind(&self, id: NodeId) -> Kind {
        self.get(id).kind
    }

    /// Adds a node (or finds the identical one already there).
    pub fn add(&mut self, node: Node, level: Level, kind: Kind) -> NodeId {
        if let Some(&id) = self.dedup.get(&node) {
            return id;
        }
        let id = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.dedup.insert(node.clone(), id);
        self.nodes.push(NodeInfo { node, level, kind });
        self.origins.push(self.origin);
        id
    }

    /// Sets the origin of the nodes added from now on (the statement being instantiated);
    /// returns the one it replaces, to be put back.
    pub fn set_origin(&mut self, origin: Option<Span>) -> Option<Span> {
        std::mem::replace(&mut self.origin, origin)
    }

    /// The `.opt` statement node `id` was first built for, if known.
    pub fn origin(&self, id: NodeId) -> Option<Span> {
        self.origins.get(id as usize).copied().flatten()
    }

    pub fn constant(&mut self, s: Scalar) -> NodeId {
        self.add(Node::Const(ConstBits::from_scalar(s)), Level::Uniform, s.kind())
    }

    /// `(x, f)` for the operands of a product `x * f` (either way round) where `x` is a
    /// per-element value and `f` is not (a uniform or per-leaf factor scaling it).
    pub fn scaled(&self, a: NodeId, b: NodeId) -> Option<(NodeId, NodeId)> {
        match (self.level(a), self.level(b)) {
            (Level::Element, lb) if lb < Level::Element => Some((a, b)),
            (la, Level::Element) if la < Level::Element => Some((b, a)),
            _ => None,
        }
    }

    /// The constant value of a node, if it is one.
    pub fn as_const(&self, id: NodeId) -> Option<Scalar> {
        match self.get(id).node {
            Node::Const(c) => Some(c.scalar()),
            _ => None,
        }
    }
}

/// A piece of optimizer state (a `list[float]` state is one slot per entry).
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Where it lives in the pipeline, e.g. `adam.scale_by_adam.mu`.
    pub name: String,
    pub level: Level,
    pub kind: Kind,
    /// Leaf groups holding it (per-leaf and per-element slots).
    pub groups: GroupSet,
    /// How a per-element slot stores its values (others are float32 or their own kind).
    pub storage: Storage,
    /// By leaf group: the axes a per-element slot is constant along there, and stored reduced
    /// over (`axes`); none where missing.
    pub collapsed: Vec<axes::Collapsed>,
    /// Its value before the first step, a node of [`StepIr::init`].
    pub init: NodeId,
    /// Its value after a step, a node of [`StepIr::graph`].
    pub next: NodeId,
    /// The names of slots found equal to this one and merged into it (`merge`).
    pub aliases: Vec<String>,
}

/// A uniform value known by name after each step.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub node: NodeId,
}

/// The evaluation weights of a pipeline: what its transforms' `eval_params` blocks compute on
/// their leaves, and the parameters on the others.
#[derive(Clone, Debug)]
pub struct Eval {
    /// Reads `Param` (the parameters after the last step) and state (as after it) only.
    pub graph: Graph,
    /// The weights, per element, every group.
    pub weights: NodeId,
}

/// One step of a pipeline on one layout.
#[derive(Clone, Debug)]
pub struct StepIr {
    pub layout: Layout,
    pub groups: Groups,
    /// The step: reads `Grad`, `Param`, `Value` and state; gives the updates and new state.
    pub graph: Graph,
    /// The updates (per element, every group).
    pub updates: NodeId,
    /// The initial state: reads `Param` (the initial parameters) only.
    pub init: Graph,
    pub slots: Vec<Slot>,
    /// Uniform values users read by name after the step, besides the uniform state: injected
    /// hyperparameters, the values of schedules, the learning rate (`step_size`). Named as
    /// `check::names` names them, as the slots are.
    pub named: Vec<Named>,
    /// The uniform `let`s of transform steps, by path: a definition's internals, never shown
    /// to users, kept for finding what scales a step (`step_size`).
    pub locals: Vec<Named>,
    /// The weights to evaluate the model with, when a transform defines them (`eval_params`).
    pub eval: Option<Eval>,
    pub needs_value: bool,
    /// What instantiation noticed but did not refuse (a glob that matches no leaf).
    pub warnings: Vec<Diagnostic>,
}

impl Slot {
    /// The axes the slot is stored reduced over in group `g`.
    pub fn collapsed_in(&self, g: usize) -> axes::Collapsed {
        self.collapsed.get(g).copied().unwrap_or(0)
    }
}

impl StepIr {
    /// Elements in each leaf group.
    pub fn group_elements(&self) -> Vec<usize> {
        self.groups.leaves.iter().map(|leaves| leaves.iter().map(|&l| self.layout.leaves[l].len()).sum()).collect()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

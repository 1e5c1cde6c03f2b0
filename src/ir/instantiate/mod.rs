//! Instantiation: a checked [`Program`] × a [`Layout`] → [`StepIr`]. Walks the transform tree
//! once, inlining every definition: hyperparameters are folded (in double precision, as Python
//! computes them), globs are resolved to leaf groups, state gets slots, and what is left is a
//! graph of float32 operations on uniform, per-leaf and per-element values.

mod body;
mod globs;
mod ops;
mod parts;
mod value;

use std::collections::HashMap;

use super::groups::{self, GroupSet, Groups};
use super::layout::Layout;
use super::op::{Kind, Op, Scalar};
use super::{Graph, Level, Named, Node, NodeId, Slot, SlotId, StepIr, Storage, shapes};
use crate::check::names;
use crate::check::program::{DefAst, DefId, Hyper, Mask, PartitionArm, Program, Tx, Value};
use crate::diagnostic::Diagnostic;
use crate::source::Span;
pub use value::IVal;

/// Which graph a computation goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Step,
    Init,
    /// The evaluation weights ([`super::Eval`]).
    Eval,
}

/// Where a transform is instantiated: the leaf groups it sees, whether `flatten` made all of
/// them one leaf, and the path naming its state.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub domain: GroupSet,
    pub flat: bool,
    pub path: String,
}

impl Ctx {
    fn child(&self, name: &str) -> Ctx {
        self.at(names::join(&self.path, name))
    }

    /// The same place under another path.
    fn at(&self, path: String) -> Ctx {
        Ctx { path, ..self.clone() }
    }
}

/// How to compute a slot's initial value again (for `reset`).
#[derive(Clone, Debug)]
pub(crate) struct Recipe {
    pub def: DefId,
    pub args: Vec<Value>,
    pub state: usize,
    /// The entry, for a `list[float]` state.
    pub index: Option<usize>,
    pub ctx: Ctx,
}

pub(crate) struct SlotBuild {
    pub slot: Slot,
    pub recipe: Recipe,
}

/// The instantiation in progress.
pub(crate) struct Inst<'p> {
    pub program: &'p Program,
    pub layout: &'p Layout,
    pub groups: Groups,
    pub step: Graph,
    pub init: Graph,
    pub eval: Graph,
    /// The evaluation weights of each transform with `eval_params`: its leaf groups, the
    /// node of `eval` giving them, and the transform's span.
    pub evals: Vec<(GroupSet, NodeId, Option<Span>)>,
    pub slots: Vec<SlotBuild>,
    /// The current value of each slot during the step (a `State` read until assigned).
    pub state: HashMap<SlotId, NodeId>,
    pub named: Vec<Named>,
    /// Uniform `let`s of transform steps, by path ([`StepIr::locals`]).
    pub locals: Vec<Named>,
    /// Values of `inject_hyperparams` hyperparameters: (owner, name) → node of the step graph,
    /// and of the init graph (where a schedule is evaluated at count 0, as Optax's `init` does).
    pub injected: HashMap<(u32, String), NodeId>,
    pub injected_init: HashMap<(u32, String), NodeId>,
    /// And of the eval graph (their values at the last step).
    pub injected_eval: HashMap<(u32, String), NodeId>,
    pub errors: Vec<Diagnostic>,
    /// The span of the transform being instantiated, for diagnostics.
    pub span: Option<Span>,
    /// The user's call around the transform being instantiated (`Tx::Instance::call`).
    pub call: Option<Span>,
    /// Whether an `assert` of the part of a transform being instantiated failed, or a shape
    /// did not fit: what its body does after it (on leaves it was not meant for, with a value
    /// that stands in for the one that failed) is not reported, as Optax raises there.
    pub asserted: bool,
    /// Whether a body has made a matrix operation: then the shapes of what each part of a
    /// transform gives (updates, state) are checked against its leaves.
    pub uses_matrices: bool,
}

/// Instantiates the pipeline of `program` for `layout`.
pub fn instantiate(program: &Program, layout: &Layout) -> Result<StepIr, Vec<Diagnostic>> {
    let Some(tx) = &program.pipeline else {
        return Err(vec![Diagnostic::error("missing-pipeline", "this file has no pipeline to instantiate")
            .with_help("end the file with the pipeline expression, e.g. `adam(learning_rate=1e-3)`")]);
    };
    let groups = groups::split(program, layout, tx);
    let mut inst = Inst {
        program,
        layout,
        groups,
        step: Graph::default(),
        init: Graph::default(),
        eval: Graph::default(),
        evals: Vec::new(),
        slots: Vec::new(),
        state: HashMap::new(),
        named: Vec::new(),
        locals: Vec::new(),
        injected: HashMap::new(),
        injected_init: HashMap::new(),
        injected_eval: HashMap::new(),
        errors: Vec::new(),
        span: None,
        call: None,
        asserted: false,
        uses_matrices: false,
    };
    inst.check_globs(tx);
    let ctx = Ctx { domain: inst.groups.all(), flat: false, path: String::new() };
    let grad = inst.step.add(Node::Grad, Level::Element, Kind::F32);
    let out = inst.tx(tx, grad, &ctx);
    let updates = inst.f32_node(IVal::Node(out), Which::Step);
    let eval = inst.eval_weights();
    // The checker's budgets keep a step far smaller than this; a layout with many groups
    // multiplies it, so the graph's own size is checked as well.
    if inst.step.nodes.len().max(inst.init.nodes.len()) > crate::limits::STEP_NODES.max {
        let d = match first_span(tx) {
            Some(span) => crate::limits::STEP_NODES.exceeded(span),
            None => Diagnostic::error(crate::limits::STEP_NODES.code, crate::limits::STEP_NODES.message),
        };
        return Err(vec![d]);
    }
    if inst.errors.iter().any(Diagnostic::is_error) {
        return Err(inst.errors);
    }
    let needs_value = inst.step.nodes.iter().any(|n| n.node == Node::Value);
    let state = std::mem::take(&mut inst.state);
    let slots = inst
        .slots
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let next = state.get(&(i as SlotId)).copied().unwrap_or(b.slot.next);
            Slot { next, ..b.slot }
        })
        .collect();
    let mut ir = StepIr {
        layout: layout.clone(),
        groups: inst.groups,
        graph: inst.step,
        updates,
        init: inst.init,
        slots,
        named: inst.named,
        locals: inst.locals,
        eval,
        needs_value,
        warnings: inst.errors,
    };
    super::unused::drop_unused(&mut ir);
    super::merge::merge_equal_slots(&mut ir);
    super::finite::specialize_step(&mut ir);
    super::axes::assign(&mut ir);
    Ok(ir)
}

impl<'p> Inst<'p> {
    pub fn graph(&mut self, which: Which) -> &mut Graph {
        match which {
            Which::Step => &mut self.step,
            Which::Init => &mut self.init,
            Which::Eval => &mut self.eval,
        }
    }

    /// The value of a slot read in `which`: in the step, its current value; in the evaluation
    /// weights, its value after the last step.
    pub fn state_in(&mut self, which: Which, slot: SlotId) -> NodeId {
        if which == Which::Step {
            return self.state_value(slot);
        }
        let s = &self.slots[slot as usize].slot;
        let (level, kind) = (s.level, s.kind);
        self.graph(which).add(Node::State(slot), level, kind)
    }

    /// The evaluation weights of the whole layout: each transform's `eval_params` on its leaf
    /// groups, the parameters elsewhere; `None` if no transform defines any. Two transforms
    /// giving weights for the same leaves is an error: the weights of one are not the
    /// parameters the other's are computed from.
    fn eval_weights(&mut self) -> Option<super::Eval> {
        if self.evals.is_empty() {
            return None;
        }
        let mut parts: Vec<(GroupSet, NodeId)> = Vec::new();
        let mut taken = GroupSet::empty();
        for (i, (groups, node, span)) in self.evals.clone().into_iter().enumerate() {
            let shared = groups.intersect(&taken);
            if let Some(g) = shared.iter().next() {
                let leaves: Vec<&str> = self.groups.leaves[g].iter().map(|&l| self.layout.leaves[l].name.as_str()).collect();
                let first = self.evals[..i].iter().find(|(gs, _, _)| gs.contains(g)).and_then(|(_, _, s)| *s);
                let mut d = Diagnostic::error("eval-params-overlap", format!("two transforms give evaluation weights for {}", globs::quote_list(&leaves)))
                    .with_help("keep one transform with `eval_params` per leaf (mask the other away from these leaves)");
                if let Some(span) = span {
                    d = d.with_primary(span, "this transform's `eval_params`");
                }
                if let Some(first) = first {
                    d = d.with_secondary(first, "and this one's, for the same leaves");
                }
                self.errors.push(d);
                continue;
            }
            taken = taken.iter().chain(groups.iter()).collect();
            parts.push((groups, node));
        }
        let rest = self.groups.all().minus(&taken);
        if !rest.is_empty() {
            let param = self.eval.add(Node::Param, Level::Element, Kind::F32);
            parts.push((rest, param));
        }
        let weights = match parts.as_slice() {
            [(_, only)] => *only,
            _ => self.eval.add(Node::Merge(parts), Level::Element, Kind::F32),
        };
        Some(super::Eval { graph: std::mem::take(&mut self.eval), weights })
    }

    pub fn error(&mut self, d: Diagnostic) {
        if self.asserted {
            return;
        }
        self.asserted = matches!(d.code, "failed-assert" | "bad-shape" | "bad-axis");
        let d = match (&d.primary, self.span) {
            (None, Some(span)) => d.with_primary(span, "in this transform"),
            _ => d,
        };
        // Two transforms of one call may fail one `assert` of a helper they share (Muon's
        // dimension numbers, read by `scale_by_muon` and `scale_by_shape`): say it once.
        if !self.errors.contains(&d) {
            self.errors.push(d);
        }
    }

    /// Instantiates a transform on `input`; returns its output updates.
    pub fn tx(&mut self, tx: &Tx, input: NodeId, ctx: &Ctx) -> NodeId {
        match tx {
            Tx::Chain(parts) => {
                let paths = names::chain_parts(self.program, &ctx.path, parts.iter().map(|p| &**p));
                parts.iter().zip(paths).fold(input, |u, (t, path)| self.tx(t, u, &ctx.at(path)))
            }
            Tx::NamedChain(parts) => parts.iter().fold(input, |u, (name, t)| self.tx(t, u, &ctx.child(name))),
            Tx::Alias { inner, .. } => self.tx(inner, input, ctx),
            Tx::Flatten(inner) => self.tx(inner, input, &Ctx { flat: true, ..ctx.clone() }),
            Tx::Masked { inner, mask, span } => {
                let selected = self.masked_domain(mask, ctx, Some(*span));
                let rest = ctx.domain.minus(&selected);
                if selected.is_empty() {
                    return input;
                }
                let out = self.tx(inner, input, &Ctx { domain: selected.clone(), ..ctx.clone() });
                self.merge(vec![(selected, out), (rest, input)])
            }
            Tx::Partition(arms) => {
                let mut parts = Vec::new();
                let mut taken = GroupSet::empty();
                for (arm, path) in arms.iter().zip(names::partition_arms(&ctx.path, arms)) {
                    let matching = match &arm.mask {
                        None => ctx.domain.clone(),
                        Some(mask) => self.masked_domain(mask, ctx, Some(arm.span)),
                    };
                    let mine = matching.minus(&taken);
                    for g in mine.iter() {
                        taken.insert(g);
                    }
                    if mine.is_empty() {
                        continue;
                    }
                    let out = self.tx(&arm.tx, input, &Ctx { domain: mine.clone(), ..ctx.at(path) });
                    parts.push((mine, out));
                }
                let rest = ctx.domain.minus(&taken);
                if !rest.is_empty() {
                    // (Outside `flatten`, the leaves no arm takes are named by `check_globs`.)
                    if ctx.flat {
                        self.flat_unmatched(arms, ctx);
                    }
                    parts.push((rest, input));
                }
                self.merge(parts)
            }
            Tx::Inject { id, hypers, inner } => {
                let path = names::injected(&ctx.path);
                let count = self.uniform_slot(&path, "count", Scalar::I32(0));
                let count_node = self.state_value(count);
                // The evaluation weights see a hyperparameter's value at the last step: at the
                // count before it (the count at 0 before the first, as for the initial state).
                let eval_count = {
                    let after = self.state_in(Which::Eval, count);
                    let [one, zero] = [1, 0].map(|k| self.eval.constant(Scalar::I32(k)));
                    let before = self.op(Which::Eval, Op::Sub, &[after, one]);
                    self.op(Which::Eval, Op::Max, &[before, zero])
                };
                for (name, h) in hypers {
                    let counts = [(Which::Step, IVal::Node(count_node)), (Which::Init, IVal::Const(Value::Int(0))), (Which::Eval, IVal::Node(eval_count))];
                    let [node, init, eval] = counts.map(
                        |(which, count)| match h {
                            Hyper::Number(v) => match v {
                                Value::Int(n) => self.graph(which).constant(Scalar::I32(*n as i32)),
                                other => {
                                    let x = other.as_f64().unwrap_or(0.0) as f32;
                                    self.graph(which).constant(Scalar::F32(x))
                                }
                            },
                            Hyper::Schedule(s) => {
                                let v = self.schedule(s, count, which, ctx);
                                self.f32_node(v, which)
                            }
                        },
                    );
                    self.injected.insert((*id, name.clone()), node);
                    self.injected_init.insert((*id, name.clone()), init);
                    self.injected_eval.insert((*id, name.clone()), eval);
                    self.named.push(Named { name: names::join(&path, name), node });
                }
                let out = self.tx(inner, input, ctx);
                let one = self.step.constant(Scalar::I32(1));
                let next = self.op(Which::Step, Op::Add, &[count_node, one]);
                self.state.insert(count, next);
                out
            }
            Tx::Instance { def, args, span, call, .. } => {
                let saved = (self.span.replace(*span), self.call.replace(*call), self.asserted);
                let out = self.instance(*def, args, input, ctx);
                (self.span, self.call, self.asserted) = saved;
                out
            }
        }
    }

    /// The groups of `ctx`'s domain that `mask` selects. Under `flatten` the transform sees
    /// every leaf as one vector, as Optax's does: a mask takes all of it or none by that
    /// vector's shape, and a glob, with no leaf name to match there, is refused (at `span`, the
    /// mask's, if known).
    pub(super) fn masked_domain(&mut self, mask: &Mask, ctx: &Ctx, span: Option<Span>) -> GroupSet {
        if !ctx.flat {
            return self.groups.masked(self.layout, mask, &ctx.domain);
        }
        match mask.selects_nameless(&self.part_shape(ctx)) {
            Some(true) => ctx.domain.clone(),
            Some(false) => GroupSet::empty(),
            None => {
                let mut d = Diagnostic::error("glob-in-flatten", format!("inside `flatten`, the mask `{mask}` has no leaf names to match"))
                    .with_note("`flatten` hands its transform every leaf as one vector, as `optax.flatten` does")
                    .with_help("mask outside the `flatten`, or by `ndim` or `size`, which the one vector has");
                if let Some(span) = span {
                    d = d.with_primary(span, "a glob inside `flatten`");
                }
                // (Else `error` points at the transform.)
                self.error(d);
                GroupSet::empty()
            }
        }
    }

    /// Refuses a partition under `flatten` whose arms take none of the one vector there (as
    /// `check_globs` refuses leaves no arm takes elsewhere).
    fn flat_unmatched(&mut self, arms: &[PartitionArm], ctx: &Ctx) {
        let shape = shapes::show(&self.part_shape(ctx));
        let mut d = Diagnostic::error("unmatched-leaf", format!("no partition arm takes the leaves, one vector of shape {shape} under `flatten`"))
            .with_help("add an arm for it (`ndim == 1`), or end the partition with `_ => transform`");
        if let Some(arm) = arms.last() {
            d = d.with_primary(arm.span, "the last arm");
        }
        self.error(d);
    }

    /// A value defined piecewise over groups.
    fn merge(&mut self, parts: Vec<(GroupSet, NodeId)>) -> NodeId {
        let parts: Vec<(GroupSet, NodeId)> = parts.into_iter().filter(|(g, _)| !g.is_empty()).collect();
        if let [(_, only)] = parts.as_slice() {
            return *only;
        }
        if parts.windows(2).all(|w| w[0].1 == w[1].1) {
            return parts[0].1;
        }
        let nodes: Vec<NodeId> = parts.iter().map(|(_, n)| self.f32_node(IVal::Node(*n), Which::Step)).collect();
        let level = nodes.iter().map(|n| self.step.level(*n)).max().unwrap_or(Level::Element);
        let parts = parts.into_iter().zip(nodes).map(|((g, _), n)| (g, n)).collect();
        self.step.add(Node::Merge(parts), level, Kind::F32)
    }

    /// Allocates a uniform slot with a constant initial value.
    fn uniform_slot(&mut self, path: &str, name: &str, init: Scalar) -> SlotId {
        let init_node = self.init.constant(init);
        let id = self.slots.len() as SlotId;
        let read = self.step.add(Node::State(id), Level::Uniform, init.kind());
        self.slots.push(SlotBuild {
            slot: Slot {
                name: names::join(path, name),
                level: Level::Uniform,
                kind: init.kind(),
                groups: GroupSet::empty(),
                storage: Storage::F32,
                collapsed: Vec::new(),
                init: init_node,
                next: read,
                aliases: Vec::new(),
            },
            recipe: Recipe { def: usize::MAX, args: Vec::new(), state: 0, index: None, ctx: Ctx { domain: GroupSet::empty(), flat: false, path: path.into() } },
        });
        id
    }

    /// The current value of a slot within the step.
    pub fn state_value(&mut self, slot: SlotId) -> NodeId {
        if let Some(&n) = self.state.get(&slot) {
            return n;
        }
        let s = &self.slots[slot as usize].slot;
        let (level, kind) = (s.level, s.kind);
        self.step.add(Node::State(slot), level, kind)
    }

    /// Instantiates one `transform` definition. A body that reads a leaf's `ndim`, `size` or
    /// `shape` is instantiated once per value of them among its leaves (its groups are split by
    /// them, `groups::split`), so they are compile-time values there; the state is one set of
    /// slots, each defined piecewise over those parts.
    fn instance(&mut self, def: DefId, args: &[Value], input: NodeId, ctx: &Ctx) -> NodeId {
        let d = self.program.def(def);
        let Some(DefAst::Transform(t)) = d.ast.clone() else {
            self.error(Diagnostic::bug(format!("`{}` is not a transform", d.name)));
            return input;
        };
        let parts = self.shape_parts(&d.reads_leaf, ctx);
        let params: Vec<(String, IVal)> =
            d.params.iter().zip(args).map(|(p, a)| (p.name.clone(), IVal::Const(a.clone()))).collect();
        // State slots, with their initial values from the init graph.
        let mut state_bindings = Vec::new();
        for (i, decl) in t.states.iter().enumerate() {
            let sig = &d.states[i];
            let inits: Vec<(GroupSet, IVal)> = parts
                .iter()
                .map(|part| {
                    let mut frame = body::Frame::new(Which::Init, part.clone(), &params);
                    (part.domain.clone(), frame.expr(self, &decl.init))
                })
                .collect();
            let level = match sig.ty.level {
                crate::check::types::Level::Element => Level::Element,
                crate::check::types::Level::Leaf if !ctx.flat => Level::Leaf,
                _ => Level::Uniform,
            };
            let init = self.piecewise(Which::Init, inits, &sig.name, level);
            let recipe = |index| Recipe { def, args: args.to_vec(), state: i, index, ctx: ctx.clone() };
            // A list state is one slot per entry, `name[k]`.
            let ids: Vec<SlotId> = match &sig.ty.ty {
                crate::check::types::Ty::List(_) => (init.items().unwrap_or_default().into_iter().enumerate())
                    .map(|(k, v)| self.new_slot(ctx, &format!("{}[{k}]", sig.name), level, v, recipe(Some(k))))
                    .collect(),
                ty => {
                    let kind = match ty {
                        crate::check::types::Ty::Int => Kind::I32,
                        crate::check::types::Ty::Bool => Kind::Bool,
                        _ => Kind::F32,
                    };
                    let v = self.convert(init, kind, Which::Init);
                    vec![self.new_slot(ctx, &sig.name, level, v, recipe(None))]
                }
            };
            if level == Level::Element {
                let storage = sig.storage.resolve(|name| d.params.iter().position(|p| p.name == name).and_then(|k| args.get(k)));
                for id in &ids {
                    if let Some(built) = self.slots.get_mut(*id as usize) {
                        built.slot.storage = storage;
                    }
                }
            }
            state_bindings.push((sig.name.clone(), ids, matches!(sig.ty.ty, crate::check::types::Ty::List(_))));
        }
        if let Some(eval) = &t.eval_params {
            for part in &parts {
                let mut frame = body::Frame::new(Which::Eval, part.clone(), &params);
                for (name, ids, is_list) in &state_bindings {
                    frame.bind_state(name, ids.clone(), *is_list);
                }
                if let Some(v) = frame.block(self, &eval.body) {
                    let weights = self.f32_node(v, Which::Eval);
                    self.evals.push((part.domain.clone(), weights, self.span));
                }
            }
        }
        let Some(update) = &t.update else { return input };
        // Each part runs the body from the state as it was; what each part assigns is joined.
        let before = self.state.clone();
        let mut outs = Vec::new();
        let mut assigned: Vec<HashMap<SlotId, NodeId>> = Vec::new();
        for part in &parts {
            self.state = before.clone();
            self.asserted = false;
            let mut frame = body::Frame::new(Which::Step, part.clone(), &params);
            frame.owned_by(&d.name);
            for (name, ids, is_list) in &state_bindings {
                frame.bind_state(name, ids.clone(), *is_list);
            }
            frame.bind(&update.input.name, IVal::Node(input));
            let out = match frame.block(self, &update.body) {
                Some(v) => self.f32_node(v, Which::Step),
                None => input,
            };
            if self.uses_matrices {
                self.check_shapes(part, out, &before, &d.name);
            }
            outs.push((part.domain.clone(), out));
            assigned.push(std::mem::take(&mut self.state));
        }
        self.state = before;
        self.join_assigned(&parts, assigned);
        self.merge(outs)
    }

    fn new_slot(&mut self, ctx: &Ctx, name: &str, level: Level, init: IVal, recipe: Recipe) -> SlotId {
        let owner = &self.program.def(recipe.def).name;
        let name = names::member(&ctx.path, owner, name);
        let kind = match &init {
            IVal::Const(Value::Int(_)) => Kind::I32,
            IVal::Const(Value::Bool(_)) => Kind::Bool,
            IVal::Node(n) => self.init.kind(*n),
            _ => Kind::F32,
        };
        let kind = if level == Level::Uniform { kind } else { Kind::F32 };
        let init_node = self.convert(init, kind, Which::Init);
        let init_node = self.node_of(init_node, Which::Init, kind);
        let id = self.slots.len() as SlotId;
        let read = self.step.add(Node::State(id), level, kind);
        self.slots.push(SlotBuild {
            slot: Slot {
                name,
                level,
                kind,
                groups: if level == Level::Uniform { GroupSet::empty() } else { ctx.domain.clone() },
                storage: Storage::F32,
                collapsed: Vec::new(),
                init: init_node,
                next: read,
                aliases: Vec::new(),
            },
            recipe,
        });
        id
    }

    /// Evaluates a schedule at `count`.
    pub fn schedule(&mut self, s: &crate::check::program::Schedule, count: IVal, which: Which, ctx: &Ctx) -> IVal {
        use crate::check::program::Schedule;
        match s {
            Schedule::Constant(v) => match v {
                Value::Injected { owner, name, .. } => match self.injected.get(&(*owner, name.clone())) {
                    Some(n) => IVal::Node(*n),
                    None => {
                        self.error(Diagnostic::bug(format!("the injected hyperparameter `{name}` has no value")));
                        IVal::Const(Value::Float(0.0))
                    }
                },
                other => IVal::Const(other.clone()),
            },
            Schedule::Instance { def, args, .. } => {
                let d = self.program.def(*def);
                let Some(DefAst::Def(ast)) = d.ast.clone() else { return IVal::Const(Value::Float(0.0)) };
                let Some(body) = &ast.body else { return IVal::Const(Value::Float(0.0)) };
                let params: Vec<(String, IVal)> =
                    d.params.iter().zip(args).map(|(p, a)| (p.name.clone(), IVal::Const(a.clone()))).collect();
                let mut frame = body::Frame::new(which, ctx.clone(), &params);
                frame.bind("step", count);
                frame.block(self, body).unwrap_or(IVal::Const(Value::Float(0.0)))
            }
        }
    }
}

/// The span of the first transform the user called in `tx`, to point a pipeline-wide error at.
fn first_span(tx: &Tx) -> Option<crate::source::Span> {
    match tx {
        Tx::Instance { span, .. } | Tx::Masked { span, .. } => Some(*span),
        Tx::Chain(parts) => parts.iter().find_map(|t| first_span(t)),
        Tx::NamedChain(parts) => parts.iter().find_map(|(_, t)| first_span(t)),
        Tx::Partition(arms) => arms.first().map(|a| a.span),
        Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => first_span(inner),
    }
}

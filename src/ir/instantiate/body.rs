//! Bodies: statements and expressions of `update`, state initialisers, schedules and inlined
//! `def`s, evaluated to graph nodes. Compile-time parts are evaluated exactly and vanish; an
//! `if` on a runtime condition runs both branches and joins what they assign with selects, so a
//! nested transform applied in a branch commits its state only when the branch is taken.
//! Calls (definitions inlined, transforms applied, built-ins) are in `call`.

use std::collections::HashMap;

use super::value::IVal;
use super::{Ctx, Inst, Which};
use crate::check::bind::{self, CallArg, CallArgs};
use crate::check::builtins;
use crate::check::names;
use crate::check::program::{DefAst, DefKind, Func, LeafProp, ParamSig, Schedule, Tx, Value};
use crate::diagnostic::Diagnostic;
use crate::ir::op::{Kind, Op, Scalar};
use crate::ir::{Level, Named, Node, Reduce, SlotId};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};

mod call;

#[derive(Clone, Debug, PartialEq)]
enum Binding {
    Val(IVal),
    /// A state variable: one slot, or one per entry of a `list[float]`.
    State { slots: Vec<SlotId>, list: bool },
}

/// The scopes of one body being evaluated.
pub(crate) struct Frame {
    which: Which,
    ctx: Ctx,
    scopes: Vec<HashMap<String, Binding>>,
    /// Slots of the transform parameters applied so far, for `reset`.
    applied: HashMap<String, std::ops::Range<usize>>,
    /// Nesting of `if` and `for` (uniform `let`s are named only at the top).
    depth: usize,
    /// The transform whose step this is; `None` in its state initialisers and in the bodies
    /// of `def`s and schedules inlined into it (their parameters and locals are not its own).
    owner: Option<String>,
}

impl Frame {
    pub fn new(which: Which, ctx: Ctx, params: &[(String, IVal)]) -> Frame {
        let scope = params.iter().map(|(n, v)| (n.clone(), Binding::Val(v.clone()))).collect();
        Frame { which, ctx, scopes: vec![scope], applied: HashMap::new(), depth: 0, owner: None }
    }

    /// Marks the frame as the step of the transform `name`.
    pub fn owned_by(&mut self, name: &str) {
        self.owner = Some(name.to_string());
    }

    /// The transform's own parameter `name` is bound to, if `name` is one (not shadowed).
    fn own_param(&self, name: &str) -> Option<&IVal> {
        if self.owner.is_none() || self.scopes.iter().skip(1).any(|s| s.contains_key(name)) {
            return None;
        }
        match self.scopes.first()?.get(name)? {
            Binding::Val(v) => Some(v),
            Binding::State { .. } => None,
        }
    }

    pub fn bind(&mut self, name: &str, v: IVal) {
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), Binding::Val(v));
        }
    }

    pub fn bind_state(&mut self, name: &str, slots: Vec<SlotId>, list: bool) {
        if let Some(s) = self.scopes.first_mut() {
            s.insert(name.to_string(), Binding::State { slots, list });
        }
    }

    fn binding(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn lookup(&self, inst: &mut Inst, name: &str) -> Option<IVal> {
        match self.binding(name)?.clone() {
            Binding::Val(v) => Some(v),
            Binding::State { slots, list } => {
                let values: Vec<IVal> = slots.iter().map(|s| IVal::Node(inst.state_in(self.which, *s))).collect();
                if list { Some(IVal::List(values)) } else { values.into_iter().next() }
            }
        }
    }

    fn assign_local(&mut self, name: &str, v: IVal) -> bool {
        for scope in self.scopes.iter_mut().rev() {
            if let Some(b @ Binding::Val(_)) = scope.get_mut(name) {
                *b = Binding::Val(v);
                return true;
            }
        }
        false
    }

    // ---- statements ----------------------------------------------------------------------

    pub fn block(&mut self, inst: &mut Inst, block: &ast::Block) -> Option<IVal> {
        self.scopes.push(HashMap::new());
        for stmt in &block.stmts {
            let span = match stmt {
                ast::Stmt::Let(l) => Some(l.span),
                ast::Stmt::Assign(a) => Some(a.span),
                ast::Stmt::Expr(e) => Some(e.span),
                ast::Stmt::For(_) | ast::Stmt::Assert { .. } | ast::Stmt::Reset(_) | ast::Stmt::Revert(_) => None,
            };
            self.in_statement(inst, span, |this, inst| this.stmt(inst, stmt));
        }
        let result = block.result.as_ref().map(|e| self.in_statement(inst, Some(e.span), |this, inst| this.expr(inst, e)));
        self.scopes.pop();
        result
    }

    /// Runs `f` with the nodes it builds marked as coming from the statement (or block result)
    /// at `span`, for `emit --clif`. The innermost one wins, so a node is quoted with the line
    /// that computes it, inside the inlined body of a `def` too.
    fn in_statement<T>(&mut self, inst: &mut Inst, span: Option<Span>, f: impl FnOnce(&mut Self, &mut Inst) -> T) -> T {
        let Some(span) = span else { return f(self, inst) };
        let outer = inst.graph(self.which).set_origin(Some(span));
        let out = f(self, inst);
        inst.graph(self.which).set_origin(outer);
        out
    }

    fn stmt(&mut self, inst: &mut Inst, stmt: &ast::Stmt) {
        match stmt {
            ast::Stmt::Let(l) => {
                let v = self.expr(inst, &l.value);
                // Uniform locals of a transform's step are kept by name, for finding its step
                // size (`ir::step_size`); float constants too. They are a definition's
                // internals: users never see them.
                // (Only the step's: other graphs' node ids mean nothing in the step graph.)
                let node = match &v {
                    _ if self.which != Which::Step => None,
                    IVal::Node(n) if inst.step.level(*n) == Level::Uniform => {
                        Some(*n).filter(|n| !matches!(inst.step.as_const(*n), Some(Scalar::I32(_) | Scalar::Bool(_))))
                    }
                    IVal::Const(Value::Float(x)) => Some(inst.step.constant(Scalar::F32(*x as f32))),
                    _ => None,
                };
                if self.owner.is_some()
                    && self.depth == 0
                    && let (ast::Pattern::Name(id), Some(node)) = (&l.pattern, node)
                {
                    let name = names::join(&self.ctx.path, &id.name);
                    inst.locals.retain(|x| x.name != name);
                    inst.locals.push(Named { name, node });
                }
                self.bind_pattern(&l.pattern, v);
            }
            ast::Stmt::Assign(a) => self.assign(inst, a),
            ast::Stmt::For(f) => {
                let items = self.expr(inst, &f.iter).iterated().unwrap_or_else(|| {
                    inst.error(Diagnostic::bug("a `for` loop over a runtime value"));
                    Vec::new()
                });
                self.depth += 1;
                for item in items {
                    self.scopes.push(HashMap::new());
                    self.bind_pattern(&f.pattern, item);
                    self.block(inst, &f.body);
                    self.scopes.pop();
                }
                self.depth -= 1;
            }
            // The checker ran it for the hyperparameters (`check::ahead`); here the leaves'
            // shapes are known too.
            ast::Stmt::Assert { cond, message, span } => {
                if let IVal::Const(Value::Bool(false)) = self.expr(inst, cond) {
                    self.failed_assert(inst, message.as_deref(), *span);
                }
            }
            ast::Stmt::Reset(name) => self.reset(inst, &name.name),
            ast::Stmt::Revert(name) => self.revert(inst, &name.name),
            ast::Stmt::Expr(e) => match &e.kind {
                ExprKind::If { cond, then, otherwise } => {
                    let c = self.expr(inst, cond);
                    self.branches(inst, c, then, otherwise.as_ref());
                }
                _ => {
                    self.expr(inst, e);
                }
            },
        }
    }

    fn bind_pattern(&mut self, pattern: &ast::Pattern, v: IVal) {
        match pattern {
            ast::Pattern::Name(id) => self.bind(&id.name, v),
            ast::Pattern::Tuple(parts, _) => {
                let items: Vec<IVal> = match v.clone().items() {
                    Some(items) => items,
                    None => vec![v; parts.len()],
                };
                for (p, item) in parts.iter().zip(items) {
                    self.bind_pattern(p, item);
                }
            }
        }
    }

    fn assign(&mut self, inst: &mut Inst, a: &ast::Assign) {
        let mut v = self.expr(inst, &a.value);
        if a.op != ast::AssignOp::Set {
            let current = match (&a.index, self.lookup(inst, &a.target.name)) {
                (Some(i), Some(list)) => {
                    let i = self.expr(inst, i);
                    index(inst, list, i)
                }
                (None, Some(cur)) => cur,
                (_, None) => IVal::Const(Value::Float(0.0)),
            };
            let op = match a.op {
                ast::AssignOp::Add => ast::BinaryOp::Add,
                ast::AssignOp::Sub => ast::BinaryOp::Sub,
                ast::AssignOp::Mul => ast::BinaryOp::Mul,
                _ => ast::BinaryOp::Div,
            };
            v = inst.binary(op, current, v, self.which);
        }
        match self.binding(&a.target.name).cloned() {
            Some(Binding::State { slots, list }) => {
                let targets: Vec<(SlotId, IVal)> = match (&a.index, list) {
                    (Some(i), true) => {
                        let i = self.expr(inst, i);
                        match i {
                            IVal::Const(Value::Int(k)) => {
                                let k = if k < 0 { k + slots.len() as i64 } else { k };
                                usize::try_from(k).ok().and_then(|k| slots.get(k)).map(|s| vec![(*s, v)]).unwrap_or_default()
                            }
                            _ => Vec::new(),
                        }
                    }
                    (None, true) => match v {
                        IVal::List(items) => slots.iter().copied().zip(items).collect(),
                        IVal::Const(Value::List(items)) => slots.iter().copied().zip(items.into_iter().map(IVal::Const)).collect(),
                        _ => Vec::new(),
                    },
                    _ => slots.first().map(|s| vec![(*s, v)]).unwrap_or_default(),
                };
                for (slot, value) in targets {
                    let kind = inst.slots[slot as usize].slot.kind;
                    let node = inst.node_of(value, Which::Step, kind);
                    inst.state.insert(slot, node);
                }
            }
            Some(Binding::Val(_)) => {
                let v = match (&a.index, self.lookup(inst, &a.target.name)) {
                    (Some(i), Some(IVal::List(mut items))) => {
                        if let IVal::Const(Value::Int(k)) = self.expr(inst, i)
                            && let Some(slot) = usize::try_from(k).ok().and_then(|k| items.get_mut(k))
                        {
                            *slot = v;
                        }
                        IVal::List(items)
                    }
                    _ => v,
                };
                self.assign_local(&a.target.name, v);
            }
            None => inst.error(Diagnostic::bug(format!("assignment to an unknown name `{}`", a.target.name))),
        }
    }

    /// Runs both branches of an `if` on a runtime condition and joins what they assign.
    fn branches(&mut self, inst: &mut Inst, c: IVal, then: &ast::Block, otherwise: Option<&ast::Block>) -> (Option<IVal>, Option<IVal>) {
        match c {
            IVal::Const(Value::Bool(true)) => return (self.block(inst, then), None),
            IVal::Const(Value::Bool(false)) => return (None, otherwise.and_then(|o| self.block(inst, o))),
            _ => {}
        }
        let scopes = self.scopes.clone();
        let state = inst.state.clone();
        self.depth += 1;
        let a = self.block(inst, then);
        let then_scopes = std::mem::replace(&mut self.scopes, scopes.clone());
        let then_state = std::mem::replace(&mut inst.state, state.clone());
        let b = otherwise.and_then(|o| self.block(inst, o));
        self.depth -= 1;
        // Join locals.
        for (depth, scope) in then_scopes.into_iter().enumerate() {
            for (name, binding) in scope {
                let Binding::Val(x) = binding else { continue };
                let Some(Binding::Val(y)) = self.scopes.get(depth).and_then(|s| s.get(&name)).cloned() else { continue };
                if !x.identical(&y) {
                    let joined = inst.select(c.clone(), x, y, self.which);
                    if let Some(s) = self.scopes.get_mut(depth) {
                        s.insert(name, Binding::Val(joined));
                    }
                }
            }
        }
        // Join state: a slot keeps its old value in the branch that does not assign it.
        let mut slots: Vec<SlotId> = then_state.keys().chain(inst.state.keys()).copied().collect();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let x = then_state.get(&slot).copied().unwrap_or_else(|| read_old(inst, slot, &state));
            let y = inst.state.get(&slot).copied().unwrap_or_else(|| read_old(inst, slot, &state));
            if x != y {
                let joined = inst.select(c.clone(), IVal::Node(x), IVal::Node(y), Which::Step);
                let kind = inst.slots[slot as usize].slot.kind;
                let node = inst.node_of(joined, Which::Step, kind);
                inst.state.insert(slot, node);
            }
        }
        (a, b)
    }

    /// `revert name`: the nested transform's slots take their values from the start of the step
    /// again (under an `if`, the join then keeps the new state only in the other branch).
    fn revert(&mut self, inst: &mut Inst, name: &str) {
        let Some(range) = self.applied.get(name).cloned() else {
            inst.error(Diagnostic::bug(format!("`revert {name}` before `{name}` is applied")));
            return;
        };
        for slot in range {
            let old = read_old(inst, slot as SlotId, &HashMap::new());
            inst.state.insert(slot as SlotId, old);
        }
    }

    fn reset(&mut self, inst: &mut Inst, name: &str) {
        let Some(range) = self.applied.get(name).cloned() else {
            inst.error(Diagnostic::bug(format!("`reset {name}` before `{name}` is applied")));
            return;
        };
        for slot in range {
            let recipe = inst.slots[slot].recipe.clone();
            let d = inst.program.def(recipe.def);
            let Some(DefAst::Transform(t)) = d.ast.clone() else { continue };
            let Some(decl) = t.states.get(recipe.state) else { continue };
            let params: Vec<(String, IVal)> =
                d.params.iter().zip(&recipe.args).map(|(p, a)| (p.name.clone(), IVal::Const(a.clone()))).collect();
            let mut frame = Frame::new(Which::Step, recipe.ctx.clone(), &params);
            let mut v = frame.expr(inst, &decl.init);
            if let Some(k) = recipe.index {
                v = match v {
                    IVal::List(items) => items.into_iter().nth(k).unwrap_or(IVal::Const(Value::Float(0.0))),
                    IVal::Const(Value::List(items)) => {
                        IVal::Const(items.into_iter().nth(k).unwrap_or(Value::Float(0.0)))
                    }
                    other => other,
                };
            }
            let kind = inst.slots[slot].slot.kind;
            let node = inst.node_of(v, Which::Step, kind);
            inst.state.insert(slot as SlotId, node);
        }
    }

    // ---- expressions ---------------------------------------------------------------------

    pub fn expr(&mut self, inst: &mut Inst, e: &ast::Expr) -> IVal {
        match &e.kind {
            ExprKind::Int(n) => IVal::Const(Value::Int(*n)),
            ExprKind::Float(x) => IVal::Const(Value::Float(*x)),
            ExprKind::Str(s) => IVal::Const(Value::Str(s.clone())),
            ExprKind::Bool(b) => IVal::Const(Value::Bool(*b)),
            ExprKind::None | ExprKind::Error => IVal::Const(Value::None),
            ExprKind::Name(n) => self.name(inst, n),
            ExprKind::List(items) => {
                let vs: Vec<IVal> = items.iter().map(|i| self.expr(inst, i)).collect();
                collect(vs, false)
            }
            ExprKind::Tuple(items) => {
                let vs: Vec<IVal> = items.iter().map(|i| self.expr(inst, i)).collect();
                collect(vs, true)
            }
            ExprKind::ListComp { elem, pattern, iter } => {
                let items = self.expr(inst, iter).iterated().unwrap_or_default();
                let mut out = Vec::new();
                for item in items {
                    self.scopes.push(HashMap::new());
                    self.bind_pattern(pattern, item);
                    out.push(self.expr(inst, elem));
                    self.scopes.pop();
                }
                collect(out, false)
            }
            ExprKind::Map(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    if let (IVal::Const(k), IVal::Const(v)) = (self.expr(inst, k), self.expr(inst, v)) {
                        out.push((k, v));
                    }
                }
                out.sort_by(|(a, _), (b, _)| {
                    a.compare(b).unwrap_or(std::cmp::Ordering::Equal)
                });
                IVal::Const(Value::Map(out))
            }
            ExprKind::Unary { op, operand } => {
                let v = self.expr(inst, operand);
                inst.unary(*op, v, self.which)
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let l = self.expr(inst, lhs);
                match (op, &l) {
                    (ast::BinaryOp::And, IVal::Const(Value::Bool(false))) => return l,
                    (ast::BinaryOp::Or, IVal::Const(Value::Bool(true))) => return l,
                    _ => {}
                }
                let r = self.expr(inst, rhs);
                if let (ast::BinaryOp::Eq | ast::BinaryOp::Ne, IVal::Const(Value::None), _)
                | (ast::BinaryOp::Eq | ast::BinaryOp::Ne, _, IVal::Const(Value::None)) = (op, &l, &r)
                {
                    // A runtime value is never `None`.
                    let same = l == r;
                    return IVal::Const(Value::Bool(same == (*op == ast::BinaryOp::Eq)));
                }
                inst.binary(*op, l, r, self.which)
            }
            ExprKind::Call { callee, args, .. } => self.call(inst, callee, args),
            ExprKind::Index { base, index: i } => {
                let b = self.expr(inst, base);
                let i = self.expr(inst, i);
                index(inst, b, i)
            }
            ExprKind::Slice { base, start, end } => {
                let b = self.expr(inst, base);
                let bound = |this: &mut Self, inst: &mut Inst, x: &Option<Box<ast::Expr>>| match x {
                    Some(x) => match this.expr(inst, x) {
                        IVal::Const(Value::Int(n)) => Some(n),
                        _ => None,
                    },
                    None => None,
                };
                let (s, t) = (bound(self, inst, start), bound(self, inst, end));
                let items = match b.clone().items() {
                    Some(items) => items,
                    None => return b,
                };
                let n = items.len() as i64;
                let clamp = |x: i64| (if x < 0 { (x + n).max(0) } else { x.min(n) }) as usize;
                let (s, t) = (clamp(s.unwrap_or(0)), clamp(t.unwrap_or(n)));
                collect(items.get(s..t.max(s)).map(<[IVal]>::to_vec).unwrap_or_default(), false)
            }
            ExprKind::If { cond, then, otherwise } => {
                let c = self.expr(inst, cond);
                let (a, b) = self.branches(inst, c.clone(), then, otherwise.as_ref());
                match c {
                    IVal::Const(Value::Bool(true)) => a.unwrap_or(IVal::Const(Value::None)),
                    IVal::Const(Value::Bool(false)) => b.unwrap_or(IVal::Const(Value::None)),
                    _ => match (a, b) {
                        (Some(a), Some(b)) => inst.select(c, a, b, self.which),
                        (a, b) => a.or(b).unwrap_or(IVal::Const(Value::None)),
                    },
                }
            }
            ExprKind::Partition(_) => {
                inst.error(Diagnostic::bug("a partition inside a body"));
                IVal::Const(Value::None)
            }
        }
    }

    fn name(&mut self, inst: &mut Inst, name: &str) -> IVal {
        if let Some(v) = self.lookup(inst, name) {
            return v;
        }
        match name {
            "param" => return IVal::Node(inst.graph(self.which).add(Node::Param, Level::Element, Kind::F32)),
            "value" => return IVal::Node(inst.step.add(Node::Value, Level::Uniform, Kind::F32)),
            _ => {}
        }
        if let Some(prop) = LeafProp::in_body(name) {
            return self.leaf_prop(inst, prop);
        }
        if let Some((_, x)) = builtins::CONSTANTS.iter().find(|(n, _)| *n == name) {
            return IVal::Const(Value::Float(*x));
        }
        if let Some(id) = inst.program.lookup(name) {
            return IVal::Const(Value::Func(std::sync::Arc::new(Func::Def(id))));
        }
        inst.error(Diagnostic::bug(format!("`{name}` is not defined at instantiation")));
        IVal::Const(Value::Float(0.0))
    }

    /// An `assert` that fails for the leaves of this body's domain (on their shape): the
    /// checker's message, at the user's call, naming the leaves.
    fn failed_assert(&self, inst: &mut Inst, message: Option<&str>, span: Span) {
        let leaves: Vec<String> = self
            .ctx
            .domain
            .iter()
            .flat_map(|g| &inst.groups.leaves[g])
            .map(|&l| format!("`{}` {}", inst.layout.leaves[l].name, crate::ir::shapes::show(&inst.layout.leaves[l].shape)))
            .collect();
        let shown = super::globs::first_few(&leaves, 3);
        let mut d = bind::failed_assert(message, span);
        // The call is what the user wrote; the `assert` is where the requirement lives.
        if let (Some(required), Some(call)) = (d.primary.take(), inst.call) {
            d = d.with_primary(call, "in this call").with_secondary(required.span, required.message);
        }
        inst.error(d.with_note(format!("it fails for {shown}")).with_help("mask the transform to the leaves it is for, e.g. by `ndim` or `size`, or give the others to another `partition` arm"));
    }

    /// A leaf's `ndim`, `size` or `shape`: every leaf of the domain has the same, since a body
    /// that reads them is instantiated once per value (`Inst::instance`).
    fn leaf_prop(&self, inst: &mut Inst, prop: LeafProp) -> IVal {
        IVal::Const(prop.value(&inst.part_shape(&self.ctx)))
    }
}

/// The value a slot had at the start of the branch being joined.
fn read_old(inst: &mut Inst, slot: SlotId, before: &HashMap<SlotId, u32>) -> u32 {
    match before.get(&slot) {
        Some(n) => *n,
        None => {
            let s = &inst.slots[slot as usize].slot;
            let (level, kind) = (s.level, s.kind);
            inst.step.add(Node::State(slot), level, kind)
        }
    }
}

/// Compile-time items stay one compile-time list; any runtime item makes a runtime list.
pub(super) fn collect(items: Vec<IVal>, tuple: bool) -> IVal {
    if items.iter().all(|i| matches!(i, IVal::Const(_))) {
        let values = items.into_iter().filter_map(|i| if let IVal::Const(v) = i { Some(v) } else { None }).collect();
        return IVal::Const(if tuple { Value::Tuple(values) } else { Value::List(values) });
    }
    if tuple { IVal::Tuple(items) } else { IVal::List(items) }
}

fn index(inst: &mut Inst, base: IVal, i: IVal) -> IVal {
    let items: Vec<IVal> = match base {
        IVal::Const(Value::Map(entries)) => {
            let IVal::Const(key) = i else { return IVal::Const(Value::None) };
            return entries
                .into_iter()
                .find(|(k, _)| k.equals(&key))
                .map_or(IVal::Const(Value::None), |(_, v)| IVal::Const(v));
        }
        other => match other.clone().items() {
            Some(items) => items,
            None => return other,
        },
    };
    match i {
        IVal::Const(Value::Int(k)) => {
            let n = items.len() as i64;
            let k = if k < 0 { k + n } else { k };
            usize::try_from(k).ok().and_then(|k| items.into_iter().nth(k)).unwrap_or(IVal::Const(Value::None))
        }
        _ => {
            inst.error(Diagnostic::bug("a list indexed by a runtime value"));
            IVal::Const(Value::None)
        }
    }
}

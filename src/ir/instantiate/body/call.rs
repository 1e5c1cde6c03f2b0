//! Calls inside bodies: user and standard-library definitions inlined, transforms applied,
//! built-in functions, and the reductions and sizes they read.

use super::*;
use crate::ir::{MatOp, shapes};

impl Frame {
    pub(super) fn call(&mut self, inst: &mut Inst, callee: &ast::Expr, args: &[ast::Arg]) -> IVal {
        if let ExprKind::Name(name) = &callee.kind
            && self.binding(name).is_none()
        {
            if builtins::is_builtin(name) {
                if let Some(axis) = args.iter().find_map(|a| match a {
                    ast::Arg::Keyword { name: k, value } if k.name == "axis" => Some(value),
                    _ => None,
                }) {
                    let x = match args.first() {
                        Some(ast::Arg::Positional(e)) => self.expr(inst, e),
                        _ => IVal::Const(Value::Float(0.0)),
                    };
                    let axis = self.expr(inst, axis);
                    return self.axis_reduce(inst, name, x, axis);
                }
                let values: Vec<IVal> = args
                    .iter()
                    .map(|a| match a {
                        ast::Arg::Positional(e) | ast::Arg::Keyword { value: e, .. } | ast::Arg::Splat(e) => {
                            self.expr(inst, e)
                        }
                    })
                    .collect();
                return self.builtin(inst, name, values);
            }
            if let Some(id) = inst.program.lookup(name) {
                return self.call_def(inst, id, args);
            }
        }
        let f = self.expr(inst, callee);
        match f {
            IVal::Const(Value::Schedule(s)) => {
                let count = args.first().map_or(IVal::Const(Value::Int(0)), |a| match a {
                    ast::Arg::Positional(e) | ast::Arg::Keyword { value: e, .. } | ast::Arg::Splat(e) => {
                        self.expr(inst, e)
                    }
                });
                let value = inst.schedule(&s, count, self.which, &self.ctx);
                self.name_schedule_value(inst, callee, &s, &value);
                value
            }
            IVal::Const(Value::Transform(tx)) => self.apply(inst, callee, &tx, args),
            IVal::Const(Value::Func(func)) => match &*func {
                Func::Def(id) => self.call_def(inst, *id, args),
                Func::Injected { .. } => {
                    inst.error(Diagnostic::bug("`inject_hyperparams` inside a body"));
                    IVal::Const(Value::None)
                }
            },
            _ => {
                inst.error(Diagnostic::bug("a call of something not callable"));
                IVal::Const(Value::None)
            }
        }
    }

    /// `inner(g)`: instantiates a transform parameter on `g`.
    fn apply(&mut self, inst: &mut Inst, callee: &ast::Expr, tx: &Tx, args: &[ast::Arg]) -> IVal {
        let input = match args.first() {
            Some(ast::Arg::Positional(e)) => self.expr(inst, e),
            _ => IVal::Const(Value::Float(0.0)),
        };
        let input = inst.f32_node(input, Which::Step);
        // Named after the parameter that holds it, as `check::names` names it.
        let name = match &callee.kind {
            ExprKind::Name(n) => n.clone(),
            _ => "inner".into(),
        };
        let before = inst.slots.len();
        let out = inst.tx(tx, input, &self.ctx.child(&name));
        self.applied.insert(name, before..inst.slots.len());
        IVal::Node(out)
    }

    /// The value of a schedule the transform was given, called in its step, is named after
    /// the parameter (the first call's, when a body calls it at several counts), so users can
    /// read and log it; a number given for a schedule is not named: it never changes.
    fn name_schedule_value(&self, inst: &mut Inst, callee: &ast::Expr, s: &Schedule, value: &IVal) {
        let ExprKind::Name(param) = &callee.kind else { return };
        let Some(owner) = &self.owner else { return };
        if self.which != Which::Step || !matches!(s, Schedule::Instance { .. }) || self.own_param(param).is_none() {
            return;
        }
        let Some(node) = inst.node_for(value.clone(), Which::Step) else { return };
        let name = names::member(&self.ctx.path, owner, param);
        if inst.step.level(node) == Level::Uniform && !inst.named.iter().any(|n| n.name == name) {
            inst.named.push(Named { name, node });
        }
    }

    /// Inlines a `def` (or builds a transform or schedule value) at a call.
    fn call_def(&mut self, inst: &mut Inst, id: usize, args: &[ast::Arg]) -> IVal {
        let program = inst.program;
        let d = program.def(id);
        let span = inst.span.unwrap_or(crate::source::Span::new(crate::source::FileId(0), 0..0));
        let mut call = CallArgs { args: Vec::new(), opaque_splat: false, span };
        for a in args {
            match a {
                ast::Arg::Positional(e) => call.args.push(CallArg::Positional(self.expr(inst, e), e.span)),
                ast::Arg::Keyword { name, value } => {
                    let v = self.expr(inst, value);
                    call.args.push(CallArg::Keyword(name.clone(), v, name.span.to(value.span)));
                }
                ast::Arg::Splat(e) => {
                    if let IVal::Const(Value::Map(entries)) = self.expr(inst, e) {
                        for (k, v) in entries {
                            if let Value::Str(name) = k {
                                call.args.push(CallArg::Keyword(ast::Ident { name, span: e.span }, IVal::Const(v), e.span));
                            }
                        }
                    }
                }
            }
        }
        let (which, ctx) = (self.which, self.ctx.clone());
        let mut errors = Vec::new();
        let binder = bind::Call { defs: &program.defs, injected: false };
        let default = |p: &ParamSig| match &p.default {
            Some(default) => Frame::new(which, ctx.clone(), &[]).expr(inst, default),
            None => IVal::Const(Value::Error),
        };
        let values = binder.bind(d, call, default, &mut errors);
        for e in errors {
            inst.error(e);
        }
        match d.kind {
            DefKind::Def => {
                let Some(DefAst::Def(ast)) = d.ast.clone() else { return IVal::Const(Value::None) };
                let Some(body) = &ast.body else { return IVal::Const(Value::None) };
                let bound: Vec<(String, IVal)> = d.params.iter().map(|p| p.name.clone()).zip(values).collect();
                let mut frame = Frame::new(self.which, self.ctx.clone(), &bound);
                frame.block(inst, body).unwrap_or(IVal::Const(Value::None))
            }
            DefKind::Transform | DefKind::Schedule => {
                let mut args = Vec::new();
                for (p, v) in d.params.iter().zip(values) {
                    match v {
                        IVal::Const(c) => args.push(c),
                        _ => {
                            inst.error(Diagnostic::bug(format!("`{}` of `{}` is not a compile-time value", p.name, d.name)));
                            args.push(Value::None);
                        }
                    }
                }
                if d.kind == DefKind::Transform {
                    IVal::Const(Value::Transform(std::sync::Arc::new(Tx::Instance { def: id, args, span, call: inst.call.unwrap_or(span), lists: Vec::new() })))
                } else {
                    IVal::Const(Value::Schedule(std::sync::Arc::new(Schedule::Instance { def: id, args, span })))
                }
            }
            DefKind::Builtin => {
                inst.error(Diagnostic::bug(format!("the combinator `{}` inside a body", d.name)));
                IVal::Const(Value::None)
            }
        }
    }

    fn builtin(&mut self, inst: &mut Inst, name: &str, args: Vec<IVal>) -> IVal {
        let which = self.which;
        if name == "selects" {
            return self.selects(inst, &args);
        }
        // Exact at compile time.
        if args.iter().all(|a| matches!(a, IVal::Const(v) if !matches!(v, Value::Injected { .. }))) {
            let values: Vec<Value> =
                args.iter().filter_map(|a| if let IVal::Const(v) = a { Some(v.clone()) } else { None }).collect();
            if let Some(Ok(v)) = builtins::eval(name, &values) {
                return IVal::Const(v);
            }
        }
        // `transpose(x, axes)` and `reshape(x, shape)`: the second is a compile-time list.
        let mut args = args;
        let mut listed = None;
        if matches!(name, "transpose" | "reshape") && args.len() == 2 {
            let ints = |items: &[Value]| items.iter().map(|v| if let Value::Int(a) = v { Some(*a) } else { None }).collect::<Option<Vec<i64>>>();
            listed = match args.pop() {
                Some(IVal::Const(Value::List(items) | Value::Tuple(items))) => ints(&items),
                Some(IVal::Const(Value::Int(a))) => Some(vec![a]),
                _ => None,
            };
            if listed.is_none() {
                // (A value of a hyperparameter of type `any` that the checker could not see.)
                let what = if name == "transpose" { "axes" } else { "shape" };
                inst.error(Diagnostic::error("type-mismatch", format!("`{name}`'s {what} is not a list of ints")));
                return IVal::Const(Value::Float(0.0));
            }
        }
        let mut nodes = Vec::new();
        for a in args {
            match inst.node_for(a, which) {
                Some(n) => nodes.push(n),
                None => return IVal::Const(Value::Float(0.0)),
            }
        }
        let f32s = |inst: &mut Inst, nodes: &[u32]| -> Vec<u32> {
            nodes.iter().map(|n| inst.f32_node(IVal::Node(*n), which)).collect()
        };
        let unary = |inst: &mut Inst, op: Op, nodes: &[u32]| {
            let a = f32s(inst, nodes);
            IVal::Node(inst.op(which, op, &a[..1]))
        };
        match (name, nodes.len()) {
            ("sqrt", _) => unary(inst, Op::Sqrt, &nodes),
            ("rsqrt", _) => unary(inst, Op::Rsqrt, &nodes),
            ("cbrt", _) => unary(inst, Op::Cbrt, &nodes),
            ("exp", _) => unary(inst, Op::Exp, &nodes),
            ("log", _) => unary(inst, Op::Log, &nodes),
            ("cos", _) => unary(inst, Op::Cos, &nodes),
            ("sin", _) => unary(inst, Op::Sin, &nodes),
            ("tanh", _) => unary(inst, Op::Tanh, &nodes),
            ("floor", _) => unary(inst, Op::Floor, &nodes),
            ("ceil", _) => unary(inst, Op::Ceil, &nodes),
            ("isfinite", _) => unary(inst, Op::IsFinite, &nodes),
            ("isnan", _) => unary(inst, Op::IsNan, &nodes),
            ("float", _) => IVal::Node(inst.f32_node(IVal::Node(nodes[0]), which)),
            ("int", _) => IVal::Node(inst.op(which, Op::ToI32, &nodes[..1])),
            ("abs" | "sign", _) => {
                let op = if name == "abs" { Op::Abs } else { Op::Sign };
                IVal::Node(inst.op(which, op, &nodes[..1]))
            }
            ("pow", 2) => IVal::Node(inst.binary_nodes(ast::BinaryOp::Pow, nodes[0], nodes[1], which)),
            ("min" | "max", 2) => {
                let op = if name == "min" { Op::Min } else { Op::Max };
                let all_int = nodes.iter().all(|n| inst.graph(which).kind(*n) == Kind::I32);
                let args = if all_int { nodes.clone() } else { f32s(inst, &nodes) };
                IVal::Node(inst.op(which, op, &args))
            }
            ("clip", 3) => {
                let all_int = nodes.iter().all(|n| inst.graph(which).kind(*n) == Kind::I32);
                let a = if all_int { nodes.clone() } else { f32s(inst, &nodes) };
                let lo = inst.op(which, Op::Max, &[a[0], a[1]]);
                IVal::Node(inst.op(which, Op::Min, &[lo, a[2]]))
            }
            ("sum" | "leaf_sum", _) => self.reduce(inst, name == "sum", Reduce::Sum, nodes[0]),
            ("max" | "leaf_max", 1) => self.reduce(inst, name == "max", Reduce::Max, nodes[0]),
            ("min" | "leaf_min", 1) => self.reduce(inst, name == "min", Reduce::Min, nodes[0]),
            ("all", _) => self.reduce(inst, true, Reduce::All, nodes[0]),
            ("any", _) => self.reduce(inst, true, Reduce::Any, nodes[0]),
            ("norm" | "leaf_norm", _) => {
                let x = inst.f32_node(IVal::Node(nodes[0]), which);
                let sq = inst.op(which, Op::Mul, &[x, x]);
                let s = self.reduce(inst, name == "norm", Reduce::Sum, sq);
                let s = inst.f32_node(s, which);
                IVal::Node(inst.op(which, Op::Sqrt, &[s]))
            }
            ("dot" | "leaf_dot", _) => {
                let a = f32s(inst, &nodes);
                let p = inst.op(which, Op::Mul, &[a[0], a[1]]);
                self.reduce(inst, name == "dot", Reduce::Sum, p)
            }
            ("matmul" | "transpose" | "reshape" | "spectral_norm", _) => self.matrix(inst, name, &nodes, listed),
            ("numel", _) => IVal::Const(Value::Int(self.numel(inst) as i64)),
            ("leaf_numel", _) => self.leaf_numel(inst),
            ("mean" | "leaf_mean", _) => {
                let global = name == "mean";
                let s = self.reduce(inst, global, Reduce::Sum, nodes[0]);
                let n = if global { IVal::Const(Value::Int(self.numel(inst) as i64)) } else { self.leaf_numel(inst) };
                inst.binary(ast::BinaryOp::Div, s, n, which)
            }
            _ => {
                inst.error(Diagnostic::bug(format!("the built-in `{name}` cannot be instantiated here")));
                IVal::Const(Value::Float(0.0))
            }
        }
    }

    /// A reduction over all leaves of the domain (`global`) or within each leaf.
    fn reduce(&mut self, inst: &mut Inst, global: bool, kind: Reduce, arg: u32) -> IVal {
        let which = self.which;
        let global = global || self.ctx.flat;
        let arg = if matches!(kind, Reduce::All | Reduce::Any) { arg } else { inst.f32_node(IVal::Node(arg), which) };
        let level = inst.graph(which).level(arg);
        // A uniform value is the same in every element.
        if level == Level::Uniform || (level == Level::Leaf && !global) {
            return match kind {
                Reduce::Sum => {
                    let n = if global { IVal::Const(Value::Int(self.numel(inst) as i64)) } else { self.leaf_numel(inst) };
                    inst.binary(ast::BinaryOp::Mul, IVal::Node(arg), n, which)
                }
                _ => IVal::Node(arg),
            };
        }
        let node = if global {
            Node::Reduce { kind, arg, groups: self.ctx.domain.clone() }
        } else {
            Node::LeafReduce { kind, arg }
        };
        let out_kind = if matches!(kind, Reduce::All | Reduce::Any) { Kind::Bool } else { Kind::F32 };
        let out_level = if global { Level::Uniform } else { Level::Leaf };
        IVal::Node(inst.graph(which).add(node, out_level, out_kind))
    }

    /// `sum(x, axis=a)` and friends on this part's leaves (which share one shape).
    fn axis_reduce(&mut self, inst: &mut Inst, name: &str, x: IVal, axis: IVal) -> IVal {
        let which = self.which;
        let leaf = inst.part_shape(&self.ctx);
        let Some(arg) = inst.node_for(x, which) else { return IVal::Const(Value::Float(0.0)) };
        let arg = inst.f32_node(IVal::Node(arg), which);
        // The axes are the value's: the leaf's, or a matrix operation's own.
        let own = if inst.graph(which).level(arg) == Level::Element { shapes::of(inst.graph(which), arg, &leaf) } else { None };
        let shape = own.unwrap_or_else(|| leaf.clone());
        let ndim = shape.len() as i64;
        let listed = match axis {
            IVal::Const(Value::Int(a)) => vec![a],
            IVal::Const(Value::List(items) | Value::Tuple(items)) => items.iter().map(|v| if let Value::Int(a) = v { *a } else { i64::MAX }).collect(),
            _ => vec![i64::MAX],
        };
        let mut axes = 0u32;
        for a in listed {
            let k = if a < 0 { a + ndim } else { a };
            if !(0..ndim).contains(&k) {
                // (`error` points at the transform.)
                inst.error(
                    Diagnostic::error("bad-axis", if shape == leaf {
                        format!("axis {a} is out of range for a leaf of shape {}", shapes::show(&shape))
                    } else {
                        format!("axis {a} is out of range for a value of shape {} (on a leaf of shape {})", shapes::show(&shape), shapes::show(&leaf))
                    })
                        .with_help("a leaf of `ndim` dimensions has axes 0 to ndim - 1 (or -ndim to -1); test `ndim` first"),
                );
                return IVal::Const(Value::Float(0.0));
            }
            if axes & (1 << k) != 0 {
                // numpy refuses it too ("duplicate value in 'axis'").
                inst.error(
                    Diagnostic::error("bad-axis", format!("axis {a} is given twice, for a leaf of shape {}", shapes::show(&leaf)))
                        .with_help("list each axis once (-1 and ndim - 1 are the same axis)"),
                );
                return IVal::Const(Value::Float(0.0));
            }
            axes |= 1 << k;
        }
        let kind = match name {
            "max" => Reduce::Max,
            "min" => Reduce::Min,
            _ => Reduce::Sum,
        };
        let count: usize = (0..shape.len()).filter(|k| axes & (1 << k) != 0).map(|k| shape[k]).product();
        let sum = if inst.graph(which).level(arg) != Level::Element || axes == 0 {
            // Every element of the line has the value: a sum is `count` of it.
            match kind {
                Reduce::Sum => inst.binary(ast::BinaryOp::Mul, IVal::Node(arg), IVal::Const(Value::Int(count as i64)), which),
                _ => IVal::Node(arg),
            }
        } else {
            IVal::Node(inst.graph(which).add(Node::AxisReduce { kind, arg, axes }, Level::Element, Kind::F32))
        };
        if name == "mean" { inst.binary(ast::BinaryOp::Div, sum, IVal::Const(Value::Int(count as i64)), which) } else { sum }
    }

    /// `matmul(a, b)`, `transpose(a)`, `transpose(a, axes)`, `reshape(a, shape)`,
    /// `spectral_norm(a)` on this part's leaves (which share one shape): the operands must be
    /// matrices, or stacks of them, that fit. `listed` holds the axes or the shape.
    fn matrix(&mut self, inst: &mut Inst, name: &str, args: &[u32], listed: Option<Vec<i64>>) -> IVal {
        let which = self.which;
        let args: Vec<u32> = args.iter().map(|a| inst.f32_node(IVal::Node(*a), which)).collect();
        let leaf = inst.part_shape(&self.ctx);
        let shapes: Vec<Option<Vec<usize>>> = args.iter().map(|a| shapes::of(inst.graph(which), *a, &leaf)).collect();
        let ndim = shapes.first().and_then(|s| s.as_ref()).map_or(0, Vec::len);
        let size: usize = shapes.first().and_then(|s| s.as_ref()).map_or(0, |s| s.iter().product());
        let given = listed.as_ref().map(|l| format!("{l:?}"));
        let op = match (name, listed) {
            ("matmul", _) => Some(MatOp::MatMul),
            ("spectral_norm", _) => Some(MatOp::SpectralNorm),
            ("transpose", None) => Some(MatOp::Permute((0..ndim).rev().collect())),
            // Axes count from the end when negative, as numpy's.
            ("transpose", Some(axes)) => axes
                .iter()
                .map(|&a| usize::try_from(if a < 0 { a + ndim as i64 } else { a }).ok())
                .collect::<Option<Vec<usize>>>()
                .map(MatOp::Permute),
            // One size may be -1: what the others leave, as numpy's.
            ("reshape", Some(sizes)) => {
                let known: usize = sizes.iter().filter(|&&n| n >= 0).map(|&n| n as usize).product();
                let inferred = size.checked_div(known).unwrap_or(0);
                let unknown = sizes.iter().filter(|&&n| n < 0).count();
                (sizes.iter().all(|&n| n >= -1) && unknown <= 1)
                    .then(|| MatOp::Reshape(sizes.iter().map(|&n| if n < 0 { inferred } else { n as usize }).collect()))
            }
            _ => None,
        };
        let fits = shapes.iter().all(Option::is_some) && op.as_ref().is_some_and(|op| {
            op.shape(&shapes.iter().flatten().cloned().collect::<Vec<_>>()).is_some()
        });
        let Some(op) = op.filter(|_| fits) else {
            let shown: Vec<String> = shapes.iter().map(|s| s.as_deref().map_or("(shapes that do not broadcast)".into(), shapes::show)).collect();
            let what = match given {
                Some(given) => format!("`{name}` of {} to {given}", shown.join(" and ")),
                None => format!("`{name}` of {}", shown.join(" and ")),
            };
            inst.error(
                Diagnostic::error("bad-shape", format!("{what} on a leaf of shape {}", shapes::show(&leaf)))
                    .with_help(match name {
                        "transpose" => "`transpose(x, axes)` takes each of x's axes once (a negative one counts from the end)",
                        "reshape" => "`reshape(x, shape)` keeps x's number of elements (one size may be -1: what the others leave)",
                        _ => "`matmul` takes (r x k) and (k x c), or stacks of them with the same leading axes, `spectral_norm` a matrix or a stack; test `ndim` first, or mask the transform to matrices",
                    }),
            );
            return IVal::Const(Value::Float(0.0));
        };
        inst.uses_matrices = true;
        IVal::Node(inst.graph(which).add(Node::Matrix { op, args }, Level::Element, Kind::F32))
    }

    /// `selects(m)`: whether mask `m` selects this part's leaves. Their groups are cut by every
    /// mask the transform's hyperparameters hold (`groups::split`) and a body that asks is
    /// instantiated per group, so all of them get the same answer (under `flatten`, the one
    /// vector's).
    fn selects(&self, inst: &mut Inst, args: &[IVal]) -> IVal {
        let mask = match args {
            [IVal::Const(v)] => crate::check::program::Mask::from_value(v),
            _ => None,
        };
        let Some(mask) = mask else {
            inst.error(Diagnostic::bug("`selects` given no mask"));
            return IVal::Const(Value::Bool(false));
        };
        let selected = inst.masked_domain(&mask, &self.ctx, None);
        IVal::Const(Value::Bool(self.ctx.domain.minus(&selected).is_empty()))
    }

    fn numel(&self, inst: &Inst) -> usize {
        self.ctx.domain.iter().flat_map(|g| inst.groups.leaves[g].iter()).map(|&l| inst.layout.leaves[l].len()).sum()
    }

    fn leaf_numel(&self, inst: &mut Inst) -> IVal {
        if self.ctx.flat {
            return IVal::Const(Value::Int(self.numel(inst) as i64));
        }
        IVal::Node(inst.graph(self.which).add(Node::LeafNumel, Level::Leaf, Kind::I32))
    }
}

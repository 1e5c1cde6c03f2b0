//! Definitions: collecting them from the files (signatures, ranges, duplicates), checking each
//! body once with its declared types, and checking a `def` again at a call site with the levels
//! of the arguments it is called with.

use std::collections::HashMap;

use super::bind::Slot;
use super::body::{Checker, Ctx, VarKind};
use super::program::{DefAst, DefId, DefKind, Definition, Globals, Interval, LeafProp, ParamSig, StateSig, Storage, StorageDecl};
use super::types::{self, Level, Ty, Typed};
use crate::diagnostic::Diagnostic;
use crate::source::{SourceMap, Span};
use crate::syntax::ast::{self, ExprKind, UnaryOp};

/// Collects the definitions of all files, standard library first.
pub fn collect(files: &[(crate::source::FileId, ast::File)], sources: &SourceMap, errors: &mut Vec<Diagnostic>) -> Vec<Definition> {
    let mut defs: Vec<Definition> = Vec::new();
    let mut seen: HashMap<String, Span> = HashMap::new();
    for (file, ast_file) in files {
        let is_stdlib = sources.get(*file).is_some_and(|f| f.is_stdlib);
        for item in &ast_file.items {
            let (kind, name, doc, params, ret, states, ast) = match item {
                ast::Item::Def(d) => (DefKind::Def, &d.name, &d.doc, &d.params, &d.ret, &[][..], DefAst::Def(d.clone())),
                ast::Item::Schedule(d) => {
                    (DefKind::Schedule, &d.name, &d.doc, &d.params, &d.ret, &[][..], DefAst::Def(d.clone()))
                }
                ast::Item::Builtin(d) => {
                    (DefKind::Builtin, &d.name, &d.doc, &d.params, &d.ret, &[][..], DefAst::Def(d.clone()))
                }
                ast::Item::Transform(t) => (
                    DefKind::Transform,
                    &t.name,
                    &t.doc,
                    &t.params,
                    &None,
                    &t.states[..],
                    DefAst::Transform(t.clone()),
                ),
                ast::Item::Let(_) | ast::Item::Expr(_) => continue,
            };
            if let Some(first) = seen.get(&name.name) {
                let mut d = Diagnostic::error("duplicate-definition", format!("`{}` is defined twice", name.name))
                    .with_primary(name.span, "defined again here")
                    .with_secondary(*first, "first defined here");
                if sources.get(first.file).is_some_and(|f| f.is_stdlib) && !is_stdlib {
                    d = d.with_help(format!("the standard library defines `{}`; choose another name", name.name));
                }
                errors.push(d);
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            let params: Vec<ParamSig> = params.iter().map(|p| param_sig(p, kind, errors)).collect();
            let ret = ret.as_ref().map(|t| types::resolve(t, Level::Const, errors).ty);
            let states = states.iter().map(|s| state_sig(s, &params, errors)).collect();
            defs.push(Definition {
                name: name.name.clone(),
                kind,
                doc: doc.clone(),
                params,
                ret,
                states,
                reads_value: false,
                reads_param: false,
                reads_leaf: Vec::new(),
                gives: None,
                has_errors: false,
                name_span: name.span,
                is_stdlib,
                ast: Some(ast),
            });
        }
    }
    defs
}

/// A state's signature; `tensor[T]` declares its storage type `T`: a type's name
/// (`bfloat16`, `float32`) or a parameter whose values name one (`mu_dtype`).
fn state_sig(s: &ast::StateDecl, params: &[ParamSig], errors: &mut Vec<Diagnostic>) -> StateSig {
    let mut storage = StorageDecl::Fixed(Storage::F32);
    let ty = match split_storage(&s.ty) {
        Some((arg, plain)) => {
            if let Some(decl) = storage_decl(arg, params, errors) {
                storage = decl;
            }
            types::resolve(&plain, Level::Uniform, errors)
        }
        None => types::resolve(&s.ty, Level::Uniform, errors),
    };
    StateSig { name: s.name.name.clone(), ty, storage, span: s.span }
}

/// `tensor[T]`, alone or as the items of a list (`list[tensor[T]]`): the storage argument `T`,
/// and the type without it.
fn split_storage(t: &ast::TypeExpr) -> Option<(&ast::TypeExpr, ast::TypeExpr)> {
    let ast::TypeExpr::Named { name, args, span } = t else { return None };
    let plain = |args| ast::TypeExpr::Named { name: name.clone(), args, span: *span };
    match (name.name.as_str(), args.as_slice()) {
        ("tensor", [arg]) => Some((arg, plain(Vec::new()))),
        ("list", [item]) => split_storage(item).map(|(arg, item)| (arg, plain(vec![item]))),
        _ => None,
    }
}

/// The storage type `arg` of `tensor[arg]` names, or an error.
fn storage_decl(arg: &ast::TypeExpr, params: &[ParamSig], errors: &mut Vec<Diagnostic>) -> Option<StorageDecl> {
    let names: Vec<&str> = Storage::ALL.iter().map(|s| s.name()).collect();
    let (word, span) = match arg {
        ast::TypeExpr::Named { name, args, .. } if args.is_empty() => (name.name.as_str(), name.span),
        ast::TypeExpr::Literal { value, span } => (value.as_str(), *span),
        other => ("", other.span()),
    };
    if let Some(s) = Storage::parse(word) {
        return Some(StorageDecl::Fixed(s));
    }
    if let Some(p) = params.iter().find(|p| p.name == word) {
        // The parameter's values must all name storage types (or be `None`: float32), so
        // that the checker refuses any other value where the call is written.
        let options = match &p.ty.ty {
            Ty::Enum(o) => Some(o.clone()),
            Ty::Optional(inner) => match &**inner {
                Ty::Enum(o) => Some(o.clone()),
                _ => None,
            },
            _ => None,
        };
        if options.as_ref().is_some_and(|o| o.iter().all(|n| Storage::parse(n).is_some())) {
            return Some(StorageDecl::Param(p.name.clone()));
        }
        errors.push(
            Diagnostic::error("bad-type", format!("parameter `{word}` does not name a storage type"))
                .with_primary(span, "used as a storage type here")
                .with_secondary(p.span, "declared here")
                .with_help(format!("declare it `{word}: {}? = None`", quoted_union(&names))),
        );
        return None;
    }
    let listed = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ");
    if word.is_empty() {
        // `tensor[None]`, `tensor[float32 | bfloat16]`: no name at all.
        errors.push(
            Diagnostic::error("unknown-type", "a state's storage type is a name")
                .with_primary(span, "not the name of a storage type")
                .with_note(format!("a `tensor` state is stored as {listed}, or as a parameter of the transform names")),
        );
        return None;
    }
    let mut d = Diagnostic::error("unknown-type", format!("unknown storage type `{word}`"))
        .with_primary(span, "not a storage type")
        .with_note(format!("a `tensor` state is stored as {listed}, or as a parameter of the transform names"));
    let candidates = names.iter().copied().chain(params.iter().map(|p| p.name.as_str()));
    if let Some(s) = super::suggest::closest(word, candidates) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    errors.push(d);
    None
}

/// `"a" | "b"`.
fn quoted_union(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" | ")
}

fn param_sig(p: &ast::Param, kind: DefKind, errors: &mut Vec<Diagnostic>) -> ParamSig {
    let ty = types::resolve(&p.ty, Level::Const, errors);
    if kind == DefKind::Transform && ty.level > Level::Const {
        errors.push(
            Diagnostic::error("bad-type", format!("the hyperparameter `{}` cannot be {ty}", p.name.name))
                .with_primary(p.ty.span(), "hyperparameters are fixed values")
                .with_help("declare per-element values as `state`, or compute them in `update`"),
        );
    }
    let range = p.range.as_ref().and_then(|r| {
        let numeric = matches!(ty.ty, Ty::Float | Ty::Int | Ty::Schedule | Ty::IntSchedule | Ty::Error)
            || matches!(&ty.ty, Ty::Optional(t) if matches!(**t, Ty::Float | Ty::Int | Ty::Schedule));
        if !numeric {
            errors.push(
                Diagnostic::error("bad-range", format!("a range needs a number, but `{}` is {ty}", p.name.name))
                    .with_primary(r.span, "range on a non-number"),
            );
            return None;
        }
        match (const_number(&r.lo), const_number(&r.hi)) {
            (Some(lo), Some(hi)) if lo <= hi => {
                Some(Interval { lo, hi, lo_inclusive: r.lo_inclusive, hi_inclusive: r.hi_inclusive, span: r.span })
            }
            (Some(_), Some(_)) => {
                errors.push(
                    Diagnostic::error("bad-range", "this range is empty").with_primary(r.span, "the lower bound is above the upper"),
                );
                None
            }
            _ => {
                errors.push(
                    Diagnostic::error("bad-range", "range bounds are numbers")
                        .with_primary(r.span, "write the bounds as numbers, `inf` or `-inf`"),
                );
                None
            }
        }
    });
    ParamSig {
        name: p.name.name.clone(),
        name_span: p.name.span,
        ty,
        range,
        default: p.default.clone(),
        variadic: p.variadic,
        span: p.span,
    }
}

/// A number written with literals, `inf`, `pi`, unary minus and arithmetic.
pub fn const_number(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Int(n) => Some(*n as f64),
        ExprKind::Float(x) => Some(*x),
        ExprKind::Name(n) => super::builtins::CONSTANTS.iter().find(|(c, _)| c == n).map(|(_, v)| *v),
        ExprKind::Unary { op: UnaryOp::Neg, operand } => const_number(operand).map(|x| -x),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let (a, b) = (const_number(lhs)?, const_number(rhs)?);
            Some(match op {
                ast::BinaryOp::Add => a + b,
                ast::BinaryOp::Sub => a - b,
                ast::BinaryOp::Mul => a * b,
                ast::BinaryOp::Div => a / b,
                ast::BinaryOp::Pow => a.powf(b),
                _ => return None,
            })
        }
        _ => None,
    }
}

/// What checking a body found: what a transform's body reads besides its input, and the type
/// a `def` gives.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    pub value: bool,
    pub param: bool,
    /// The leaf properties the transform's bodies read (`ndim`, `size`).
    pub leaf: Vec<LeafProp>,
    /// The type a `def`'s body gives with the declared parameter types.
    pub gives: Option<Ty>,
}

/// Checks the body of one definition with its declared types; records what it reads.
pub fn check_definition(globals: &Globals, id: DefId) -> (Vec<Diagnostic>, Reads) {
    let def = &globals.defs[id];
    let mut errors = Vec::new();
    let mut reads = Reads::default();
    // Defaults must fit their parameter (and its range).
    for p in &def.params {
        if let Some(default) = &p.default {
            let mut c = Checker::new(globals, Ctx::Def);
            let t = c.expr(default);
            errors.append(&mut c.errors);
            if !t.is_error() && !p.ty.ty.accepts(&t.ty) {
                errors.push(
                    Diagnostic::error("type-mismatch", format!("the default of `{}` is {t}, not {}", p.name, p.ty.ty))
                        .with_primary(default.span, format!("expected {}", p.ty.ty)),
                );
            }
            if let (Some(r), Some(x)) = (&p.range, const_number(default))
                && !r.contains(x)
            {
                errors.push(
                    Diagnostic::error("out-of-range", format!("the default of `{}` is outside its range", p.name))
                        .with_primary(default.span, format!("{x} is not in {r}"))
                        .with_secondary(r.span, "the range"),
                );
            }
        }
    }
    match &def.ast {
        Some(DefAst::Def(d)) => {
            let Some(body) = &d.body else { return (errors, reads) };
            let ctx = if def.kind == DefKind::Schedule { Ctx::Schedule } else { Ctx::Def };
            let mut c = Checker::new(globals, ctx);
            c.def_stack.push(id);
            declare_params(&mut c, def, None);
            let result = c.block(body);
            errors.append(&mut c.errors);
            reads.gives = result.as_ref().map(|t| t.ty.clone());
            check_result(def, result, body.span, &mut errors);
        }
        Some(DefAst::Transform(t)) => {
            for (state, sig) in t.states.iter().zip(&def.states) {
                let mut c = Checker::new(globals, Ctx::StateInit);
                declare_params(&mut c, def, None);
                let init = c.expr(&state.init);
                errors.append(&mut c.errors);
                reads.param |= c.reads_param;
                merge_leaf_reads(&mut reads.leaf, &c.reads_leaf);
                if init.is_error() || sig.ty.is_error() {
                    continue;
                }
                if !sig.ty.ty.accepts(&init.ty) {
                    errors.push(super::body::type_mismatch(
                        state.init.span,
                        &format!("state `{}`", sig.name),
                        &sig.ty.ty,
                        &init,
                    ));
                } else if init.level > sig.ty.level {
                    errors.push(
                        Diagnostic::error(
                            "level-mismatch",
                            format!("state `{}` is {} but starts from a {} value", sig.name, sig.ty.level.describe(), init.level.describe()),
                        )
                        .with_primary(state.init.span, format!("this is {}", init.level.describe()))
                        .with_secondary(state.ty.span(), "declared here"),
                    );
                }
            }
            match &t.update {
                None => errors.push(
                    Diagnostic::error("missing-update", format!("transform `{}` has no `update` block", def.name))
                        .with_primary(def.name_span, "no `update`")
                        .with_help("add `update(g) { ... }` computing the outgoing updates"),
                ),
                Some(update) => {
                    let mut c = Checker::new(globals, Ctx::Update);
                    declare_params(&mut c, def, None);
                    for sig in &def.states {
                        c.declare(&sig.name, sig.ty.clone(), VarKind::State(sig.ty.clone()));
                    }
                    c.declare(&update.input.name, Typed::new(Ty::Float, Level::Element), VarKind::Local);
                    let result = c.block(&update.body);
                    errors.append(&mut c.errors);
                    reads.value = c.reads_value;
                    reads.param |= c.reads_param;
                    merge_leaf_reads(&mut reads.leaf, &c.reads_leaf);
                merge_leaf_reads(&mut reads.leaf, &c.reads_leaf);
                    match result {
                        None => errors.push(
                            Diagnostic::error("missing-result", "`update` must end with the outgoing updates")
                                .with_primary(update.body.span.end_point(), "no final expression")
                                .with_help(format!("end the block with the updates, e.g. `{}`", update.input.name)),
                        ),
                        Some(t) if !t.is_error() && !t.ty.is_numeric() => {
                            let span = update.body.result.as_ref().map_or(update.span, |r| r.span);
                            errors.push(
                                Diagnostic::error("type-mismatch", format!("`update` must give the outgoing updates, a number per element, found {t}"))
                                    .with_primary(span, "not a number")
                                    .with_help("convert a condition with `if c { 1.0 } else { 0.0 }`"),
                            );
                        }
                        _ => {}
                    }
                }
            }
            if let Some(eval) = &t.eval_params {
                let mut c = Checker::new(globals, Ctx::EvalParams);
                declare_params(&mut c, def, None);
                for sig in &def.states {
                    c.declare(&sig.name, sig.ty.clone(), VarKind::State(sig.ty.clone()));
                }
                let result = c.block(&eval.body);
                errors.append(&mut c.errors);
                match result {
                    None => errors.push(
                        Diagnostic::error("missing-result", "`eval_params` must end with the weights to evaluate")
                            .with_primary(eval.body.span.end_point(), "no final expression")
                            .with_help("end the block with the weights, e.g. `param`"),
                    ),
                    Some(t) if !t.is_error() && !t.ty.is_numeric() => {
                        let span = eval.body.result.as_ref().map_or(eval.span, |r| r.span);
                        errors.push(
                            Diagnostic::error("type-mismatch", format!("`eval_params` must give the weights, a number per element, found {t}"))
                                .with_primary(span, "not a number"),
                        );
                    }
                    _ => {}
                }
            }
        }
        None => {}
    }
    (errors, reads)
}

fn check_result(def: &Definition, result: Option<Typed>, span: Span, errors: &mut Vec<Diagnostic>) {
    let Some(t) = result else {
        errors.push(
            Diagnostic::error("missing-result", format!("`{}` has no result", def.name))
                .with_primary(span.end_point(), "the block ends without an expression"),
        );
        return;
    };
    if t.is_error() {
        return;
    }
    let expected = match def.kind {
        DefKind::Schedule => Some(Ty::Float),
        _ => def.ret.clone(),
    };
    if let Some(expected) = expected
        && !expected.accepts(&t.ty)
    {
        errors.push(super::body::type_mismatch(span, &format!("`{}`", def.name), &expected, &t));
    }
}

/// Declares a definition's parameters in a checker: with their declared types, or with the
/// types of the arguments of a call (`given`).
fn declare_params(c: &mut Checker, def: &Definition, given: Option<&[Typed]>) {
    for (i, p) in def.params.iter().enumerate() {
        let mut ty = given.and_then(|g| g.get(i).cloned()).unwrap_or_else(|| p.ty.clone());
        if p.variadic {
            ty = Typed::new(Ty::List(Box::new(ty.ty)), ty.level.min(Level::Uniform));
        }
        c.declare(&p.name, ty, VarKind::Param);
    }
}

impl Checker<'_, '_> {
    /// The result type of a `def` called with these arguments: its body checked again with their
    /// levels (the `def` is inlined there). Problems that only these levels cause are reported at
    /// the call.
    pub(super) fn def_instance(&mut self, id: DefId, slots: &[Slot<Typed>], span: Span) -> Typed {
        let def = &self.globals.defs[id];
        if self.def_stack.contains(&id) {
            self.err(
                Diagnostic::error("recursive-definition", format!("`{}` calls itself", def.name))
                    .with_primary(span, "recursive call")
                    .with_secondary(def.name_span, "in this definition")
                    .with_note("definitions are inlined where they are called, so they cannot recurse"),
            );
            return Typed::error();
        }
        let args: Vec<Typed> = slots
            .iter()
            .zip(&def.params)
            .map(|(slot, p)| match slot {
                // The declared type, at the level of the argument.
                Slot::Given(t, _) => Typed::new(if t.is_error() { Ty::Error } else { p.ty.ty.clone() }, t.level),
                Slot::Variadic(items) => {
                    let level = items.iter().map(|(t, _)| t.level).max().unwrap_or(Level::Const);
                    Typed::new(p.ty.ty.clone(), level)
                }
                Slot::Default => Typed::new(p.ty.ty.clone(), Level::Const),
            })
            .collect();
        let key = (id, args.clone());
        let cached = self.globals.instances.borrow().get(&key).cloned();
        let result = match cached {
            Some(r) => r,
            None => {
                let r = self.check_instance(id, &args);
                self.globals.instances.borrow_mut().insert(key, r.clone());
                r
            }
        };
        match result {
            Ok(t) => t,
            Err(_) if self.broken(id) => Typed::error(),
            Err(inner) => {
                let def = &self.globals.defs[id];
                let mut d = Diagnostic::error("level-mismatch", format!("`{}` cannot be used with these arguments", def.name))
                    .with_primary(span, "in this call");
                if let Some(first) = inner.first()
                    && let Some(label) = &first.primary {
                        d = d.with_secondary(label.span, format!("{} (inside `{}`)", first.message, def.name));
                    }
                for e in inner.iter().skip(1).take(2) {
                    d = d.with_note(e.message.clone());
                }
                self.err(d);
                Typed::error()
            }
        }
    }

    /// Whether a `def` fails even with its declared types: its own diagnostics say why, so its
    /// call sites stay quiet.
    fn broken(&mut self, id: DefId) -> bool {
        let declared: Vec<Typed> = self.globals.defs[id].params.iter().map(|p| p.ty.clone()).collect();
        let key = (id, declared.clone());
        let cached = self.globals.instances.borrow().get(&key).cloned();
        let result = match cached {
            Some(r) => r,
            None => {
                let r = self.check_instance(id, &declared);
                self.globals.instances.borrow_mut().insert(key, r.clone());
                r
            }
        };
        result.is_err()
    }

    fn check_instance(&mut self, id: DefId, args: &[Typed]) -> Result<Typed, Vec<Diagnostic>> {
        let def = &self.globals.defs[id];
        let Some(DefAst::Def(d)) = &def.ast else { return Ok(Typed::error()) };
        let Some(body) = &d.body else { return Ok(Typed::error()) };
        let mut c = Checker::new(self.globals, Ctx::Def);
        c.def_stack = self.def_stack.clone();
        c.def_stack.push(id);
        declare_params(&mut c, def, Some(args));
        let result = c.block(body);
        if c.errors.is_empty() { Ok(result.unwrap_or_else(Typed::error)) } else { Err(c.errors) }
    }
}

fn merge_leaf_reads(into: &mut Vec<LeafProp>, more: &[LeafProp]) {
    for p in more {
        if !into.contains(p) {
            into.push(*p);
        }
    }
}

//! Check: syntax trees → a [`Program`]. Resolves names against the standard library, the
//! user's definitions, `let`s and the built-in combinators; types every definition body and
//! infers the level of every value in it; evaluates the pipeline at compile time with range
//! checks. All errors are collected, never just the first.
//!
//! Two walkers over one floor. The floor: `program` (definitions, the definition table,
//! compile-time values), `types`, `builtins`, `consts` (Python's arithmetic) and `bind` (how
//! any call binds its arguments, checks and widens their values). The checker (`defs`, `body`,
//! `expr`) types each definition once, with its declared types. The evaluator (`eval`, `apply`,
//! `ahead`) runs the user's file at compile time, and each transform and schedule body it
//! instantiates ahead of time, so that every call at any depth is bound and checked with its
//! values. Instantiation (`ir::instantiate`) binds the calls of the bodies it inlines through
//! `bind` as well.
//!
//! Architecture invariant: nothing here knows about parameter layouts or code generation; the
//! [`Program`] is the only thing handed on.

pub mod program;
pub mod mask;
pub mod types;
pub mod builtins;
pub mod consts;
pub mod bind;
mod defs;
mod body;
mod expr;
pub mod eval;
mod apply;
mod ahead;
mod budget;
mod needed;
pub mod suggest;
pub mod names;
pub mod summary;

use std::collections::HashMap;
use std::sync::Arc;

pub use needed::check_needed;
pub use program::{DefId, DefKind, Definition, Program, Tx, Value};

use crate::diagnostic::{self, Diagnostic};
use crate::source::{FileId, SourceMap};
use crate::syntax::{self, ast};

/// The result of checking: the program (as much of it as could be built) and every diagnostic,
/// sorted by position.
pub struct Checked {
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// What the last expression of the user's file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A transform: the pipeline.
    Pipeline,
    /// A schedule (or a number, a constant schedule), for `optc schedule`, which runs it
    /// through the standard library's `scale_by_schedule`.
    Schedule,
}

/// Checks every definition of the standard library files of `sources` together with the user
/// file `user`, whose last expression (if any) must be `expect`. (A compile checks only what
/// the file reaches: [`check_needed`].)
pub fn check_as(sources: &SourceMap, user: Option<FileId>, expect: Expect) -> Checked {
    let mut diagnostics = Vec::new();
    let mut files: Vec<(FileId, ast::File)> = Vec::new();
    let stdlib = stdlib_texts(sources);
    let user = user.and_then(|id| sources.get(id).map(|f| (id, syntax::parse(id, &f.text))));
    let parsed = stdlib.iter().map(|(id, _)| *id).zip(syntax::parse_cached(&stdlib)).chain(user);
    for (id, (ast, mut errors)) in parsed {
        diagnostics.append(&mut errors);
        if let Some(ast) = ast {
            files.push((id, ast));
        }
    }
    check_files(sources, &files, diagnostics, expect)
}

/// The standard library files of `sources`, in order, with their texts.
fn stdlib_texts(sources: &SourceMap) -> Vec<(FileId, &str)> {
    sources.files().filter(|(_, f)| f.is_stdlib).map(|(id, f)| (id, &*f.text)).collect()
}

/// Checks the syntax trees `files` (standard library first), adding to `diagnostics`.
fn check_files(sources: &SourceMap, files: &[(FileId, ast::File)], mut diagnostics: Vec<Diagnostic>, expect: Expect) -> Checked {
    let mut defs = defs::collect(files, sources, &mut diagnostics);
    let by_name: HashMap<String, DefId> = defs.iter().enumerate().map(|(i, d)| (d.name.clone(), i)).collect();
    let reads: Vec<(defs::Reads, bool)> = {
        let globals = program::Globals { defs: &defs, by_name: &by_name, instances: Default::default() };
        (0..defs.len())
            .map(|id| {
                let (mut errors, reads) = defs::check_definition(&globals, id);
                let has_errors = errors.iter().any(Diagnostic::is_error);
                diagnostics.append(&mut errors);
                (reads, has_errors)
            })
            .collect()
    };
    for (def, (reads, has_errors)) in defs.iter_mut().zip(reads) {
        def.reads_value = reads.value;
        def.reads_param = reads.param;
        def.reads_leaf = reads.leaf;
        def.gives = reads.gives;
        def.has_errors = has_errors;
    }

    let mut pipeline = None;
    let mut schedule = None;
    {
        let globals = program::Globals { defs: &defs, by_name: &by_name, instances: Default::default() };
        for (id, file) in files {
            let is_stdlib = sources.get(*id).is_some_and(|f| f.is_stdlib);
            let mut evaluator = eval::Evaluator::new(&globals, sources);
            let last_expr = file.items.iter().rposition(|i| matches!(i, ast::Item::Expr(_)));
            if !is_stdlib && last_expr.is_none() {
                diagnostics.push(no_pipeline(sources, *id, file, expect));
            }
            for (i, item) in file.items.iter().enumerate() {
                match item {
                    ast::Item::Let(l) if !is_stdlib => {
                        let v = evaluator.expr(&l.value);
                        evaluator.bind_pattern(&l.pattern, v);
                    }
                    ast::Item::Let(l) => diagnostics.push(stdlib_item(l.span)),
                    ast::Item::Expr(e) if is_stdlib => diagnostics.push(stdlib_item(e.span)),
                    ast::Item::Expr(e) if Some(i) != last_expr => diagnostics.push(
                        Diagnostic::error("unused-value", "only the last expression of a file is its pipeline")
                            .with_primary(e.span, "this expression is not used")
                            .with_help("bind it with `let name = ...` and use the name in the pipeline"),
                    ),
                    ast::Item::Expr(e) => match (evaluator.expr(e), expect) {
                        (Value::Transform(tx), Expect::Pipeline) => pipeline = Some(tx),
                        (Value::Schedule(s), Expect::Schedule) => schedule = Some(s),
                        (v @ (Value::Int(_) | Value::Float(_)), Expect::Schedule) => {
                            schedule = Some(Arc::new(program::Schedule::Constant(v)));
                        }
                        (Value::Error, _) => {}
                        (other, Expect::Pipeline) => {
                            let d = evaluator.expected_transform(&other, e.span, "the pipeline");
                            diagnostics.push(d);
                        }
                        (other, Expect::Schedule) => diagnostics.push(
                            Diagnostic::error("type-mismatch", format!("expected a schedule, found {}", other.ty()))
                                .with_primary(e.span, "not a schedule")
                                .with_help("give a schedule such as `cosine_decay_schedule(init_value=0.1, decay_steps=1000)`"),
                        ),
                    },
                    _ => {}
                }
            }
            diagnostics.append(&mut evaluator.errors);
        }
    }

    diagnostic::sort(&mut diagnostics);
    let pipeline: Option<Arc<Tx>> = pipeline;
    Checked { program: Program { defs, pipeline, schedule }, diagnostics }
}

/// The warning for a user file that ends with no pipeline (or schedule) expression.
fn no_pipeline(sources: &SourceMap, id: FileId, file: &ast::File, expect: Expect) -> Diagnostic {
    let what = if expect == Expect::Schedule { "schedule" } else { "pipeline" };
    let end = sources.get(id).map_or(0, |f| f.text.trim_end().len());
    let mut d = Diagnostic::warning("missing-pipeline", format!("this file has no {what}"))
        .with_primary(crate::source::Span::new(id, end..end), format!("the file ends without a {what} expression"));
    d = match file.items.last() {
        Some(ast::Item::Let(l)) => {
            let name = match &l.pattern {
                ast::Pattern::Name(n) => n.name.clone(),
                ast::Pattern::Tuple(..) => "...".into(),
            };
            d.with_help(format!("end the file with the {what} itself: add a last line `{name}`"))
        }
        Some(_) => d.with_note("a file of definitions alone can be checked, but not run"),
        None => d.with_help("write a pipeline, e.g. `adam(learning_rate=1e-3)`"),
    };
    d
}

fn stdlib_item(span: crate::source::Span) -> Diagnostic {
    Diagnostic::error("stdlib-item", "a standard library file holds only definitions")
        .with_primary(span, "not a definition")
}

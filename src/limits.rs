//! The budgets that bound what any input costs: one home for each limit, with the code and
//! the words it is reported with. Without them a small file could make the compiler recurse
//! past its stack (brackets, `let` chains, definitions calling definitions), or unroll, copy or
//! build more than any machine holds (`for` loops, lists doubled by `let`, a pipeline that uses
//! a transform twice at every level). Each limit is far above what a real pipeline needs (the
//! largest standard-library optimizer and a 1,000-element chain use a small fraction of every
//! one; `tests/integration/fuzz.rs` checks it) and low enough that any file is answered in
//! bounded time and memory. `docs/language.md` lists them.

use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// One budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The most allowed.
    pub max: usize,
    /// The diagnostic code it is reported with.
    pub code: &'static str,
    /// The message, saying which limit was hit.
    pub message: &'static str,
    /// What is counted, in the plural ("levels of brackets"): the label says "more than
    /// `max` `what`".
    pub what: &'static str,
    /// How to stay within it.
    pub help: &'static str,
}

impl Limit {
    /// The diagnostic for going past this limit at `span`.
    pub fn exceeded(&self, span: Span) -> Diagnostic {
        Diagnostic::error(self.code, self.message)
            .with_primary(span, format!("more than {} {}", self.max, self.what))
            .with_help(self.help)
    }
}

const NESTED: &str = "too-deeply-nested";

/// Brackets of every kind, counted before parsing.
pub const BRACKETS: Limit = Limit {
    max: 64,
    code: NESTED,
    message: "brackets are nested too deeply",
    what: "levels of brackets",
    help: "split the expression into several `let` bindings",
};

/// Operators, calls and brackets in one expression (a long `a + b + c + ...` nests too).
pub const EXPRESSION: Limit = Limit {
    max: 200,
    code: NESTED,
    message: "this expression is nested too deeply",
    what: "levels of operators, calls or brackets",
    help: "split it into several `let` bindings",
};

/// Definitions calling definitions, each inlined in the next.
pub const CALLS: Limit = Limit {
    max: 64,
    code: NESTED,
    message: "definitions call each other too deeply",
    what: "nested calls",
    help: "call fewer definitions through one another: compute parts with `let` and pass the values on",
};

/// Transforms inside transforms (`chain(chain(...))`, through `let`s too).
pub const TRANSFORMS: Limit = Limit {
    max: 256,
    code: NESTED,
    message: "transforms are nested too deeply",
    what: "levels of transforms inside transforms",
    help: "put the parts side by side in one `chain(...)` instead of nesting them",
};

/// Lists, tuples and maps inside one another (through `let`s too).
pub const VALUE_DEPTH: Limit = Limit {
    max: 64,
    code: NESTED,
    message: "this value is nested too deeply",
    what: "levels of lists, tuples or maps inside one another",
    help: "keep compile-time values flat: a list of numbers, a map of numbers",
};

/// Items of a compile-time value (a string counts its characters), all levels together.
pub const VALUE_SIZE: Limit = Limit {
    max: 65_536,
    code: "value-too-large",
    message: "this compile-time value is too large",
    what: "items",
    help: "compile-time lists and strings are for hyperparameters (boundaries, scales, globs); a value this large is almost surely a mistake",
};

/// Operations the compile-time evaluation of a file runs (expressions evaluated, items of the
/// values it builds or copies, every `for` iteration and inlined call counted), and the same
/// measure of the pipeline's step: each transform's body as unrolled for its hyperparameters,
/// once for every place the pipeline uses it.
pub const UNROLLED: Limit = Limit {
    max: 2_000_000,
    code: "unrolled-too-large",
    message: "this unrolls into too much code",
    what: "operations unrolled at compile time",
    help: "unroll less: loop over fewer items, or use a transform fewer times",
};

/// Nodes of one step's graph (the step IR), and as many in its initial state's graph.
pub const STEP_NODES: Limit = Limit {
    max: 2_000_000,
    code: "step-too-large",
    message: "the step of this pipeline is too large",
    what: "operations in one step",
    help: "use fewer or smaller transforms",
};

/// Every limit, for the documentation test.
pub const ALL: &[Limit] = &[BRACKETS, EXPRESSION, CALLS, TRANSFORMS, VALUE_DEPTH, VALUE_SIZE, UNROLLED, STEP_NODES];

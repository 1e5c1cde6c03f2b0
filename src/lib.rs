//! optc: a compiler for optimizer pipelines.
//!
//! ```text
//! .opt text ──syntax::parse──▶ ast::File ──check::check_needed──▶ check::Program
//!            (pest, spans)              (names, types, levels, ranges, pipeline evaluated)
//!
//! check::Program × Layout ──ir::instantiate──▶ ir::StepIr ──ir::plan──▶ ir::Plan
//!
//! ir::Plan ──jit::compile──▶ jit::CompiledStep (one Cranelift kernel per pass)
//!          └─ interp (the reference; runs the uniform and per-leaf work for both)
//!
//! runtime::Optimizer: step(params, grads, value) runs the plan with either backend
//! ```
//!
//! Data flows one way, left to right; no stage reaches back into an earlier one's internals.
//! `source`, `diagnostic`, `limits`, `glob`, `fmath`, `arena`, `native`, `fsio` and `stdlib` sit at
//! the source end and every stage may use them.
//!
//! Architecture invariants:
//! - pest is used only in `syntax`; the AST carries its own spans.
//! - codespan-reporting is used only in `diagnostic`; Cranelift only in `jit`.
//! - `unsafe` only in `jit`, behind a function that checks every index first; in `native`, only
//!   to call a `#[target_feature]` function after `is_x86_feature_detected!` confirmed its
//!   features; and in `arena`, only to advise the kernel how to back its own memory (`madvise`).
//! - The JIT agrees with the interpreter bit for bit (NaN payloads aside).
//! - No input makes a stage panic: bad input is a [`Diagnostic`]. No input makes one run out of
//!   stack, memory or time either: [`limits`] bounds what a file may nest, unroll and build.
//! - Every file optc writes goes through [`fsio`]: written whole and renamed into place, or not at all.
#![deny(unsafe_code)]

// pest_derive without its "std" feature names `alloc` from the crate root.
extern crate alloc;

pub mod arena;
pub mod check;
pub mod cli;
pub mod codes;
pub mod diagnostic;
pub mod fmath;
pub mod fsio;
pub mod glob;
pub mod interp;
pub mod ir;
#[allow(unsafe_code)]
pub mod jit;
pub mod limits;
#[allow(unsafe_code)]
pub mod native;
pub mod parallel;
#[cfg(feature = "python")]
pub mod python;
pub mod runtime;
pub mod source;
pub mod stdlib;
pub mod syntax;
pub mod train;

pub use check::Program;
pub use diagnostic::Diagnostic;
pub use source::SourceMap;

/// Checks `text` (named `name` in diagnostics) against the embedded standard library, as
/// `optc` does: [`check::check_needed`], so the program holds only the library definitions the
/// text reaches when it checks clean.
pub fn check_str(name: &str, text: &str) -> (SourceMap, check::Checked) {
    let mut sources = SourceMap::new();
    stdlib::load(&mut sources);
    let id = sources.add(name, text.to_string(), false);
    let checked = check::check_needed(&sources, id, check::Expect::Pipeline);
    (sources, checked)
}

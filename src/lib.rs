//! optc: a compiler for optimizer pipelines.
//!
//! ```text
//! .opt text ──syntax::parse──▶ ast::File ──check::check──▶ check::Program
//!            (pest, spans)              (names, types, levels, ranges, pipeline evaluated)
//! ```
//!
//! Data flows one way, left to right; no stage reaches back into an earlier one's internals.
//! `source`, `diagnostic`, `glob` and `stdlib` sit at the source end and every stage may use them.
//!
//! Architecture invariants:
//! - pest is used only in `syntax`; the AST carries its own spans.
//! - codespan-reporting is used only in `diagnostic`.
//! - No input makes a stage panic: bad input is a [`Diagnostic`].
#![deny(unsafe_code)]

pub mod check;
pub mod cli;
pub mod codes;
pub mod diagnostic;
pub mod glob;
pub mod interp;
pub mod ir;
#[allow(unsafe_code)]
pub mod jit;
pub mod runtime;
pub mod source;
pub mod stdlib;
pub mod syntax;

pub use check::Program;
pub use diagnostic::Diagnostic;
pub use source::SourceMap;

/// Checks `text` (named `name` in diagnostics) against the embedded standard library.
pub fn check_str(name: &str, text: &str) -> (SourceMap, check::Checked) {
    let mut sources = SourceMap::new();
    stdlib::load(&mut sources);
    let id = sources.add(name, text, false);
    let checked = check::check(&sources, Some(id));
    (sources, checked)
}

//! The one integration-test binary (every extra `tests/*.rs` would link the crate again).

mod cli;
mod conformance;
mod diagnostics;
mod examples;
mod files;
mod fuzz;
mod mutants;
mod ir;
mod jit;
mod math;
mod python;
mod run;
mod runtime;
mod stdlib;
mod support;
mod tidy;

//! optc: a compiler for optimizer pipelines.
#![deny(unsafe_code)]

pub mod diagnostic;
pub mod source;
pub mod syntax;

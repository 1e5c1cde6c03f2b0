//! `optc.Pipeline`: a checked pipeline, what it needs and keeps, and `init` for a model's
//! parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;

use super::arrays;
use super::optimizer::Optimizer;
use super::{Compiled, PyDiagnostic};
use crate::check::{summary, types::Level};
use crate::runtime::{Backend, Options};

/// A checked pipeline, ready to be initialised for a model's parameters.
#[pyclass(module = "optc", frozen)]
pub struct Pipeline {
    compiled: Arc<Compiled>,
}

impl Pipeline {
    pub(crate) fn new(compiled: Arc<Compiled>) -> Pipeline {
        Pipeline { compiled }
    }
}

#[pymethods]
impl Pipeline {
    /// The file's path, or `<string>` for a pipeline given as text.
    #[getter]
    fn name(&self) -> &str {
        &self.compiled.name
    }

    /// The resolved pipeline as `optc check` prints it: every alias expanded, every default
    /// filled in.
    #[getter]
    fn resolved(&self) -> String {
        let program = &self.compiled.program;
        program.pipeline.as_ref().map(|tx| summary::describe(program, tx)).unwrap_or_default()
    }

    /// Whether a step needs `value` (the loss).
    #[getter]
    fn needs_value(&self) -> bool {
        let program = &self.compiled.program;
        program.pipeline.as_ref().is_some_and(|tx| summary::needs_value(program, tx))
    }

    /// Whether a step reads the parameters (weight decay, for one).
    #[getter]
    fn reads_params(&self) -> bool {
        let program = &self.compiled.program;
        program.pipeline.as_ref().is_some_and(|tx| summary::reads_params(program, tx))
    }

    /// The state it keeps, by level: `{"element": [...], "leaf": [...], "uniform": [...]}`
    /// (per parameter element, per leaf, one value), named as `optc check` names it.
    #[getter]
    fn state(&self) -> BTreeMap<&'static str, Vec<String>> {
        let program = &self.compiled.program;
        let entries = program.pipeline.as_ref().map(|tx| summary::states(program, tx)).unwrap_or_default();
        let mut out: BTreeMap<&'static str, Vec<String>> = ["element", "leaf", "uniform"].into_iter().map(|k| (k, Vec::new())).collect();
        for (level, names) in summary::describe_states(&entries) {
            let key = match level {
                Level::Element => "element",
                Level::Leaf => "leaf",
                _ => "uniform",
            };
            out.entry(key).or_default().extend(names);
        }
        out
    }

    /// What checking noticed but did not refuse.
    #[getter]
    fn warnings(&self) -> Vec<PyDiagnostic> {
        self.compiled.warnings.iter().map(|d| PyDiagnostic::new(d, &self.compiled.sources)).collect()
    }

    /// Instantiates the pipeline for `params` (a mapping of leaf names to float32 numpy arrays;
    /// nested mappings flatten with dots) and initialises its state from them.
    ///
    /// `backend` is `"jit"` (compiled code, the default) or `"interp"` (the reference
    /// interpreter); `threads` splits a step's passes (default: every core); with
    /// `separate_updates`, steps write the updates to arrays of their own
    /// (`Optimizer.updates`) instead of adding them to the parameters.
    #[pyo3(signature = (params, *, backend = "jit", threads = None, separate_updates = false))]
    fn init(&self, py: Python<'_>, params: &Bound<'_, PyAny>, backend: &str, threads: Option<i64>, separate_updates: bool) -> PyResult<Optimizer> {
        let backend: Backend = backend.parse().map_err(pyo3::exceptions::PyValueError::new_err)?;
        let layout = arrays::layout_of(params)?;
        Optimizer::new(py, self.compiled.clone(), layout, params, Options { backend, separate_updates }, threads)
    }

    /// What `optc check` prints for this file: the resolved pipeline, what it needs, what it
    /// keeps.
    fn __str__(&self) -> String {
        crate::cli::check::report(&self.compiled.name, &self.compiled.program)
    }

    fn __repr__(&self) -> String {
        let resolved = self.resolved();
        let first = resolved.lines().next().unwrap_or("");
        format!("<optc.Pipeline {} ({first}{})>", self.compiled.name, if resolved.lines().count() > 1 { " ..." } else { "" })
    }
}

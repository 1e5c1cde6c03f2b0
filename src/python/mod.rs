//! The Python package's native module, `optc._optc` (built by maturin with `--features
//! python`; `python/` holds the Python side: the PyTorch and Optax adapters, stubs, tests).
//!
//! A thin layer: checking is `check`'s, the step is `runtime`'s, the text of a failed check is
//! `cli::check`'s. This module converts between Python objects and them, and turns every
//! misuse into a Python exception that names the leaf and what was expected, before anything
//! changes.

mod arrays;
mod optimizer;
mod pipeline;
mod state;

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceMap;

pub use optimizer::Optimizer;
pub use pipeline::Pipeline;

create_exception!(
    optc,
    CompileError,
    PyValueError,
    "A pipeline with errors: `str()` is what `optc check` prints, `.diagnostics` the list of them."
);

/// One diagnostic, as data: where and what.
#[pyclass(module = "optc", name = "Diagnostic", frozen, get_all)]
#[derive(Clone)]
pub struct PyDiagnostic {
    /// Stable kebab-case code (`optc check --explain CODE` explains it).
    code: String,
    /// `error`, `warning` or `bug` (an internal error).
    severity: String,
    message: String,
    /// The file of the primary label (`<string>` for source given as text), if it has one.
    file: Option<String>,
    /// 1-based line and column of the primary label.
    line: Option<usize>,
    column: Option<usize>,
    notes: Vec<String>,
    help: Vec<String>,
}

#[pymethods]
impl PyDiagnostic {
    fn __repr__(&self) -> String {
        let at = match (&self.file, self.line, self.column) {
            (Some(f), Some(l), Some(c)) => format!(" at {f}:{l}:{c}"),
            _ => String::new(),
        };
        format!("<Diagnostic {}[{}]{at}: {}>", self.severity, self.code, self.message)
    }
}

impl PyDiagnostic {
    fn new(d: &Diagnostic, sources: &SourceMap) -> PyDiagnostic {
        let position = d.primary.as_ref().and_then(|l| sources.position(l.span));
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Bug => "bug",
        };
        PyDiagnostic {
            code: d.code.to_string(),
            severity: severity.to_string(),
            message: d.message.clone(),
            file: position.map(|(f, _, _)| f.to_string()),
            line: position.map(|(_, l, _)| l),
            column: position.map(|(_, _, c)| c),
            notes: d.notes.clone(),
            help: d.help.clone(),
        }
    }
}

/// A `CompileError` whose text is `text` and whose `.diagnostics` are `diagnostics`.
fn compile_error(py: Python<'_>, text: String, diagnostics: &[Diagnostic], sources: &SourceMap) -> PyErr {
    let err = CompileError::new_err(text);
    let list: Vec<PyDiagnostic> = diagnostics.iter().map(|d| PyDiagnostic::new(d, sources)).collect();
    if let Err(e) = err.value(py).setattr("diagnostics", list) {
        return e;
    }
    err
}

/// The sources and program of a checked pipeline, shared by the pipeline and its optimizers.
pub(crate) struct Compiled {
    pub name: String,
    pub sources: SourceMap,
    pub program: crate::check::Program,
    pub warnings: Vec<Diagnostic>,
}

/// Checks a pipeline: a `.opt` file's path (a `str` naming an existing file, or any
/// path-like), or its text. Raises `CompileError` with what `optc check` prints if it has
/// errors.
#[pyfunction]
#[pyo3(signature = (source, *, stdlib = None))]
fn compile(py: Python<'_>, source: &Bound<'_, PyAny>, stdlib: Option<PathBuf>) -> PyResult<Pipeline> {
    let (name, text) = read_source(source)?;
    let mut sources = crate::cli::sources_with_stdlib(stdlib.as_deref()).map_err(pyo3::exceptions::PyOSError::new_err)?;
    let id = sources.add(name.clone(), text, false);
    let checked = py.detach(|| crate::check::check_needed(&sources, id, crate::check::Expect::Pipeline));
    if let Some(summary) = crate::cli::check::error_summary(&name, &checked.diagnostics) {
        let text = format!("{}{summary}", crate::diagnostic::render(&checked.diagnostics, &sources));
        return Err(compile_error(py, text, &checked.diagnostics, &sources));
    }
    let compiled = Compiled { name, program: checked.program, warnings: checked.diagnostics, sources };
    Ok(Pipeline::new(Arc::new(compiled)))
}

/// The name and text of what `compile` was given: a path-like object or a `str` naming an
/// existing file is read; any other `str` is the pipeline's text.
fn read_source(source: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyTypeError};
    let path: PathBuf = match source.extract::<String>() {
        Ok(text) => {
            let path = PathBuf::from(&text);
            let looks_like_a_path = text.ends_with(".opt") && !text.contains(['(', '\n', '{']);
            if !path.is_file() && !looks_like_a_path {
                return Ok(("<string>".to_string(), text));
            }
            path
        }
        Err(_) => source.extract::<PathBuf>().map_err(|_| {
            let kind = source.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!("expected a pipeline's text or the path of a .opt file, found {kind}"))
        })?,
    };
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err(format!("`{}`: no such file", path.display())));
    }
    crate::cli::read_input(&path).map_err(PyOSError::new_err)
}

/// The native module.
#[pymodule]
fn _optc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_class::<Pipeline>()?;
    m.add_class::<Optimizer>()?;
    m.add_class::<PyDiagnostic>()?;
    m.add("CompileError", m.py().get_type::<CompileError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! `optc.Optimizer`: a pipeline initialised for a model's leaves, stepping numpy arrays in
//! place (no copies; the GIL released while the step runs).

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyReadwriteArrayDyn};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::arrays::{self, Leaves};
use super::pipeline::Pipeline;
use super::{Compiled, PyDiagnostic, compile_error, state};
use crate::ir::Layout;
use crate::ir::op::Scalar;
use crate::ir::step_size::StepSize;
use crate::runtime::checkpoint::LoadError;
use crate::runtime::{self, Options, StepError};
use crate::train::LrGroup;

/// A pipeline initialised for a model's parameters, with its state.
#[pyclass(module = "optc")]
pub struct Optimizer {
    compiled: Arc<Compiled>,
    inner: runtime::Optimizer,
    leaves: Leaves,
    warnings: Vec<PyDiagnostic>,
    /// The leaves that share a learning rate (partition arms, mask sides, or the whole model).
    lr_groups: Vec<LrGroup>,
}

impl Optimizer {
    pub(crate) fn new(
        py: Python<'_>,
        compiled: Arc<Compiled>,
        layout: Layout,
        params: &Bound<'_, PyAny>,
        options: Options,
        threads: Option<i64>,
    ) -> PyResult<Optimizer> {
        let threads = threads.map(thread_count).transpose()?;
        let leaves = Leaves::new(layout);
        let arrays = leaves.gather(params, "params")?;
        let borrowed = read(&arrays, &leaves.layout, "params")?;
        let slices = slices(&borrowed)?;
        let layout = &leaves.layout;
        let made = py.detach(|| runtime::Optimizer::with_options(&compiled.program, layout, &slices, options));
        let mut inner = made.map_err(|diagnostics| {
            let text = crate::diagnostic::render(&diagnostics, &compiled.sources);
            compile_error(py, text.trim_end().to_string(), &diagnostics, &compiled.sources)
        })?;
        if let Some(t) = threads {
            inner.set_threads(t);
        }
        // What instantiation noticed (a glob that matches no leaf) is a Python warning too.
        let warnings: Vec<PyDiagnostic> = inner.warnings().iter().map(|d| PyDiagnostic::new(d, &compiled.sources)).collect();
        for d in inner.warnings() {
            let text = crate::diagnostic::render(std::slice::from_ref(d), &compiled.sources);
            PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &std::ffi::CString::new(text.trim_end()).unwrap_or_default(), 1)?;
        }
        let lr_groups = crate::train::lr_groups(&inner);
        Ok(Optimizer { compiled, inner, leaves, warnings, lr_groups })
    }

    /// `step`, `times` times over the same arrays; the time the steps took in Rust.
    #[allow(clippy::too_many_arguments)]
    fn steps_timed(
        &mut self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        grads: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        threads: Option<i64>,
        hold: Option<Vec<String>>,
        times: usize,
    ) -> PyResult<std::time::Duration> {
        let threads = threads.map(thread_count).transpose()?;
        if self.inner.separate_updates() {
            return Err(PyTypeError::new_err("this optimizer writes the updates apart (separate_updates=True): call updates()"));
        }
        let value = self.value(value)?;
        let layout = &self.leaves.layout;
        let held = self.leaves.indices(&hold.unwrap_or_default(), "hold")?;
        let params = self.leaves.gather(params, "params")?;
        let grads = self.leaves.gather_some(grads, "grads", &held)?;
        // A held leaf's gradient is not used; one given is checked all the same.
        let grads: Vec<_> = grads.into_iter().zip(&layout.leaves).map(|(g, leaf)| g.unwrap_or_else(|| PyArrayDyn::<f32>::zeros(py, leaf.shape.clone(), false))).collect();
        let mut params_w = write(&params, layout, "params")?;
        let grads_r = read(&grads, layout, "grads")?;
        let mut ps = slices_mut(&mut params_w)?;
        let gs = slices(&grads_r)?;
        let inner = &mut self.inner;
        py.detach(|| {
            with_threads(inner, threads, |opt| {
                let start = std::time::Instant::now();
                for _ in 0..times {
                    if held.is_empty() { opt.step_leaves(&mut ps, &gs, value) } else { opt.step_leaves_holding(&mut ps, &gs, value, &held) }?;
                }
                Ok(start.elapsed())
            })
        })
        .map_err(step_error)
    }

    /// The learning rate of each group after the last step, with its sign (None before the
    /// first step, and for a group whose step is not a scaled direction, such as COCOB's).
    fn learning_rates(&self) -> Vec<Option<f64>> {
        let uniforms = self.inner.uniforms();
        self.lr_groups
            .iter()
            .map(|g| match &g.size {
                StepSize::Named(name) => uniforms.iter().find(|(n, _)| n == name).map(|(_, v)| f64::from(v.f())),
                StepSize::Measured => None,
            })
            .collect()
    }

    /// `value` as the step needs it: required exactly when the pipeline reads it.
    fn value(&self, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f32>> {
        match (self.inner.needs_value(), value) {
            (true, None) => Err(PyTypeError::new_err(
                "this pipeline reads the loss at every step (it has reduce_on_plateau or another transform that reads `value`): pass value=loss",
            )),
            (false, Some(_)) => Err(PyTypeError::new_err(
                "this pipeline does not read a value: pass none (a value given by mistake hides a bug)",
            )),
            (_, None) => Ok(None),
            (_, Some(v)) => v.extract::<f64>().map(|v| Some(v as f32)).map_err(|_| {
                PyTypeError::new_err(format!("value must be a number (the loss), found {}", arrays::type_name(v)))
            }),
        }
    }
}

/// Borrows each array for reading (refused if another borrow writes it).
fn read<'py>(given: &[Bound<'py, PyArrayDyn<f32>>], layout: &Layout, what: &str) -> PyResult<Vec<PyReadonlyArrayDyn<'py, f32>>> {
    given
        .iter()
        .zip(&layout.leaves)
        .map(|(a, leaf)| {
            a.try_readonly().map_err(|_| {
                PyValueError::new_err(format!("{what}[{}] shares memory with an array this step writes", arrays::quote(&leaf.name)))
            })
        })
        .collect()
}

/// Borrows each array for writing (refused if it is read-only or shares memory with another
/// array of the step).
fn write<'py>(given: &[Bound<'py, PyArrayDyn<f32>>], layout: &Layout, what: &str) -> PyResult<Vec<PyReadwriteArrayDyn<'py, f32>>> {
    given
        .iter()
        .zip(&layout.leaves)
        .map(|(a, leaf)| {
            let name = arrays::quote(&leaf.name);
            a.try_readwrite().map_err(|e| match e {
                numpy::BorrowError::NotWriteable => {
                    PyValueError::new_err(format!("{what}[{name}] is read-only: optc updates the parameters in place"))
                }
                _ => PyValueError::new_err(format!("{what}[{name}] shares memory with another array of this step")),
            })
        })
        .collect()
}

fn slices<'a>(borrowed: &'a [PyReadonlyArrayDyn<'_, f32>]) -> PyResult<Vec<&'a [f32]>> {
    borrowed.iter().map(|a| a.as_slice().map_err(|e| PyValueError::new_err(e.to_string()))).collect()
}

fn slices_mut<'a>(borrowed: &'a mut [PyReadwriteArrayDyn<'_, f32>]) -> PyResult<Vec<&'a mut [f32]>> {
    borrowed.iter_mut().map(|a| a.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))).collect()
}

fn step_error(e: StepError) -> PyErr {
    match e {
        StepError::MissingValue | StepError::UnexpectedValue | StepError::Output { .. } => PyTypeError::new_err(e.to_string()),
        StepError::Internal(_) => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn load_error(e: LoadError) -> PyErr {
    match e {
        LoadError::Io(m) => PyOSError::new_err(m),
        e => PyValueError::new_err(e.to_string()),
    }
}

fn scalar(py: Python<'_>, x: Scalar) -> PyResult<Bound<'_, PyAny>> {
    Ok(match x {
        Scalar::F32(v) => f64::from(v).into_pyobject(py)?.into_any(),
        Scalar::I32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
    })
}

#[pymethods]
impl Optimizer {
    /// One step: `params[leaf] += update(grads)[leaf]`, in place, for every leaf. `params` and
    /// `grads` map leaf names to float32 C-contiguous arrays of the leaves' shapes (nested
    /// mappings flatten with dots); `value` is the loss, for pipelines that read it;
    /// `threads` overrides the optimizer's thread count for this step. The leaves named in
    /// `hold` are left as they are, parameters and state (their grads may be missing). Every
    /// bad input raises `TypeError` or `ValueError` naming the leaf, before anything changes.
    #[pyo3(signature = (params, grads, value = None, *, threads = None, hold = None))]
    fn step(
        &mut self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        grads: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        threads: Option<i64>,
        hold: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.steps_timed(py, params, grads, value, threads, hold, 1).map(drop)
    }

    /// For `python/bench.py`: `steps` steps as `step` makes them, run back to back in Rust on
    /// the same arrays, and the seconds each took on average: the runtime's own step on these
    /// buffers, with no Python between steps.
    #[pyo3(signature = (params, grads, steps, value = None))]
    fn _time_steps(&mut self, py: Python<'_>, params: &Bound<'_, PyAny>, grads: &Bound<'_, PyAny>, steps: usize, value: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
        let took = self.steps_timed(py, params, grads, value, None, None, steps.max(1))?;
        Ok(took.as_secs_f64() / steps.max(1) as f64)
    }


    /// One step of an optimizer made with `separate_updates=True`: returns the updates (a dict
    /// of new float32 arrays, by leaf name) and leaves `params` unchanged. `params + updates`
    /// in float32 is what `step` would have made.
    #[pyo3(signature = (params, grads, value = None, *, threads = None))]
    fn updates<'py>(&mut self, py: Python<'py>, params: &Bound<'py, PyAny>, grads: &Bound<'py, PyAny>, value: Option<&Bound<'py, PyAny>>, threads: Option<i64>) -> PyResult<Bound<'py, PyDict>> {
        let threads = threads.map(thread_count).transpose()?;
        if !self.inner.separate_updates() {
            return Err(PyTypeError::new_err("this optimizer adds the updates to the parameters: call step(), or init(..., separate_updates=True)"));
        }
        let value = self.value(value)?;
        let layout = &self.leaves.layout;
        let params = self.leaves.gather(params, "params")?;
        let grads = self.leaves.gather(grads, "grads")?;
        let out: Vec<Bound<'py, PyArrayDyn<f32>>> = layout.leaves.iter().map(|l| PyArrayDyn::<f32>::zeros(py, l.shape.clone(), false)).collect();
        let params_r = read(&params, layout, "params")?;
        let grads_r = read(&grads, layout, "grads")?;
        let mut out_w = write(&out, layout, "updates")?;
        let (ps, gs) = (slices(&params_r)?, slices(&grads_r)?);
        let mut us = slices_mut(&mut out_w)?;
        let inner = &mut self.inner;
        let result = py.detach(|| with_threads(inner, threads, |opt| opt.step_updates(&ps, &gs, value, &mut us)));
        result.map_err(step_error)?;
        drop(out_w);
        let d = PyDict::new(py);
        for (leaf, array) in layout.leaves.iter().zip(out) {
            d.set_item(&leaf.name, array)?;
        }
        Ok(d)
    }

    /// The weights to evaluate the model with (a dict of new float32 arrays, by leaf name),
    /// from `params` after the last step: Schedule-Free's average, Lookahead's slow weights,
    /// `ema_params`'s average (the transforms' `eval_params`); copies of `params` for a
    /// pipeline that defines none. The state does not change.
    fn eval_params<'py>(&mut self, py: Python<'py>, params: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let layout = &self.leaves.layout;
        let params = self.leaves.gather(params, "params")?;
        let out: Vec<Bound<'py, PyArrayDyn<f32>>> = layout.leaves.iter().map(|l| PyArrayDyn::<f32>::zeros(py, l.shape.clone(), false)).collect();
        let params_r = read(&params, layout, "params")?;
        let mut out_w = write(&out, layout, "eval_params")?;
        let ps = slices(&params_r)?;
        let mut ws = slices_mut(&mut out_w)?;
        let inner = &mut self.inner;
        py.detach(|| inner.eval_params_leaves(&ps, &mut ws)).map_err(step_error)?;
        drop(out_w);
        let d = PyDict::new(py);
        for (leaf, array) in layout.leaves.iter().zip(out) {
            d.set_item(&leaf.name, array)?;
        }
        Ok(d)
    }

    /// Whether the pipeline defines evaluation weights other than the parameters.
    #[getter]
    fn has_eval_params(&self) -> bool {
        self.inner.has_eval_params()
    }

    /// The leaves, in the order optc keeps them (names sorted): `[(name, shape), ...]`.
    #[getter]
    fn leaves(&self) -> Vec<(String, Vec<usize>)> {
        self.leaves.layout.leaves.iter().map(|l| (l.name.clone(), l.shape.clone())).collect()
    }

    /// The pipeline it was initialised from.
    #[getter]
    fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.compiled.clone())
    }

    /// Whether a step needs `value` (the loss).
    #[getter]
    fn needs_value(&self) -> bool {
        self.inner.needs_value()
    }

    /// Steps taken since initialisation (or since the state loaded).
    #[getter]
    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    /// `"jit"` or `"interp"`.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend().to_string()
    }

    /// Threads a step's passes are split over (results do not depend on it).
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    #[setter]
    fn set_threads(&mut self, threads: i64) -> PyResult<()> {
        self.inner.set_threads(thread_count(threads)?);
        Ok(())
    }

    /// What instantiation noticed but did not refuse (also issued as Python warnings).
    #[getter]
    fn warnings(&self) -> Vec<PyDiagnostic> {
        self.warnings.clone()
    }

    /// Every value a user can name after a step, by the names `optc check` prints: the
    /// uniform state (counters, the plateau scale, ...), injected hyperparameters, and the
    /// learning rate (`lr`, or `lr[ARM]` for each parameter group that has its own).
    #[getter]
    fn hyperparams<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let names = crate::train::logged_names(&self.inner);
        for (name, v) in self.inner.uniforms() {
            if names.contains(&name) && !d.contains(&name)? {
                d.set_item(name, scalar(py, v)?)?;
            }
        }
        for (g, lr) in self.lr_groups.iter().zip(self.learning_rates()) {
            d.set_item(&g.name, lr)?;
        }
        Ok(d)
    }

    /// The learning rate of the last step, with its sign, when the whole model has one;
    /// None before the first step, or when groups differ (see `param_groups`).
    #[getter]
    fn learning_rate(&self) -> Option<f64> {
        let rates = self.learning_rates();
        let first = *rates.first()?;
        rates.iter().all(|r| *r == first).then_some(first).flatten()
    }

    /// The learning rate of each of `param_groups`, in their order (cheaper than
    /// `param_groups` when only the rates are wanted, as after every step).
    #[getter]
    fn learning_rates_by_group(&self) -> Vec<Option<f64>> {
        self.learning_rates()
    }

    /// The leaves that share a learning rate: `[{"label": "*.bias", "leaves": [names],
    /// "lr": float | None}, ...]` (one group for the whole model unless a partition or a mask
    /// gives parts their own).
    #[getter]
    fn param_groups<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.lr_groups
            .iter()
            .zip(self.learning_rates())
            .map(|(g, lr)| {
                let d = PyDict::new(py);
                d.set_item("label", &g.label)?;
                let names: Vec<&str> = g.leaves.iter().map(|&l| self.leaves.layout.leaves[l].name.as_str()).collect();
                d.set_item("leaves", names)?;
                d.set_item("lr", lr)?;
                Ok(d)
            })
            .collect()
    }

    /// The state as plain values and numpy arrays (copies): round-trips through pickle, and
    /// `load_state_dict` refuses it for another pipeline or layout.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state::to_dict(py, &self.inner.snapshot(), &self.leaves.layout, self.inner.slot_layout())
    }

    /// Replaces the state with one from `state_dict` of an optimizer of the same pipeline and
    /// layout; anything else raises `ValueError` with the reason, and nothing changes.
    fn load_state_dict(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let snapshot = state::from_dict(state, &self.inner.snapshot(), &self.leaves.layout, self.inner.slot_layout())?;
        self.inner.restore(&snapshot).map_err(load_error)
    }

    /// Where each slot lives in `_state_packed`'s arrays: `[(name, kind, offset, length,
    /// shape)]` (for the Optax adapter).
    fn _state_layout(&self) -> Vec<(String, &'static str, usize, usize, Vec<usize>)> {
        self.inner.packed_layout().into_iter().map(|s| (s.name, s.kind, s.offset, s.len, s.shape)).collect()
    }

    /// The state as two flat arrays, for the Optax adapter: the float32 slots, and the int32
    /// slots (bools as 0 or 1) followed by the step count.
    fn _state_packed<'py>(&self, py: Python<'py>) -> Packed<'py> {
        let (f, mut i) = self.inner.packed_state();
        i.push(i32::try_from(self.inner.steps()).unwrap_or(i32::MAX));
        (PyArray1::from_vec(py, f), PyArray1::from_vec(py, i))
    }

    /// One step of the Optax adapter, with everything in two arrays each way (a host call pays
    /// for every array it passes). `floats`: the grads, then the params if `with_params`, then
    /// the float32 state, then the value; `ints`: the int32 state and the step count, as
    /// `_state_packed` gives them. Loads that state, steps, and returns the updates followed by
    /// the new float32 state, and the new int32 state with the step count. Leaves are one after
    /// another in the order of `leaves`.
    fn _step_packed<'py>(
        &mut self,
        py: Python<'py>,
        floats: PyReadonlyArray1<'py, f32>,
        ints: PyReadonlyArray1<'py, i32>,
        with_params: bool,
    ) -> PyResult<Packed<'py>> {
        if !self.inner.separate_updates() {
            return Err(PyTypeError::new_err("this optimizer adds the updates to the parameters: init(..., separate_updates=True)"));
        }
        let contiguous = |e: numpy::AsSliceError| PyValueError::new_err(e.to_string());
        let (floats, ints) = (floats.as_slice().map_err(contiguous)?, ints.as_slice().map_err(contiguous)?);
        let layout = &self.leaves.layout;
        let n = layout.total();
        let (Some((&steps, ints)), true) = (ints.split_last(), floats.len() > n * (1 + usize::from(with_params))) else {
            return Err(PyValueError::new_err("the packed step is too short for the leaves"));
        };
        let (grads, rest) = floats.split_at(n);
        let (params, rest) = if with_params { rest.split_at(n) } else { (grads, rest) };
        let (state, value) = rest.split_at(rest.len() - 1);
        self.inner.load_packed_state(state, ints, u64::try_from(steps).unwrap_or(0)).map_err(load_error)?;
        let value = self.inner.needs_value().then_some(value[0]);
        let mut out = vec![0.0f32; n];
        let (ps, gs) = (crate::ir::buffers::split(layout, params), crate::ir::buffers::split(layout, grads));
        let mut us = crate::ir::buffers::split_mut(layout, &mut out);
        let inner = &mut self.inner;
        py.detach(|| inner.step_updates(&ps, &gs, value, &mut us)).map_err(step_error)?;
        let (f, mut i) = self.inner.packed_state();
        out.extend_from_slice(&f);
        i.push(steps.saturating_add(1));
        Ok((PyArray1::from_vec(py, out), PyArray1::from_vec(py, i)))
    }

    /// Writes the state to `path`, in the format of `optc run`'s checkpoints (atomically).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.inner.save(&path).map_err(|e| PyOSError::new_err(format!("cannot write `{}`: {e}", path.display())))
    }

    /// Replaces the state with one saved by `save` (or by `optc run`) for the same pipeline and
    /// layout; anything else raises with the reason, and nothing changes.
    fn load(&mut self, path: PathBuf) -> PyResult<()> {
        self.inner.load(&path).map_err(load_error)
    }

    fn __repr__(&self) -> String {
        let n = self.leaves.layout.leaves.len();
        format!(
            "<optc.Optimizer {} on {n} lea{} ({} parameters), {} steps>",
            self.compiled.name,
            if n == 1 { "f" } else { "ves" },
            self.leaves.layout.total(),
            self.inner.steps()
        )
    }
}

/// A float32 and an int32 array: the Optax adapter's packed state and steps.
type Packed<'py> = (Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<i32>>);

/// A thread count given from Python: at least 1 (as `--threads` on the command line).
fn thread_count(threads: i64) -> PyResult<usize> {
    usize::try_from(threads).ok().filter(|&t| t >= 1).ok_or_else(|| PyValueError::new_err(format!("threads must be at least 1, not {threads}")))
}

/// Runs `f` with `threads` threads if given, then puts the optimizer's own count back.
fn with_threads<T>(opt: &mut runtime::Optimizer, threads: Option<usize>, f: impl FnOnce(&mut runtime::Optimizer) -> T) -> T {
    let Some(t) = threads else { return f(opt) };
    let before = opt.threads();
    opt.set_threads(t);
    let out = f(opt);
    opt.set_threads(before);
    out
}

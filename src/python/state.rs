//! An optimizer's [`Snapshot`] as Python values, both ways: a `state_dict` of plain values and
//! numpy arrays (pickles, and reads well), and flat arrays for JAX (one array per slot, what
//! a pytree of `jax.Array`s carries).

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};

use super::arrays::{self, quote, show_shape};
use crate::ir::op::Scalar;
use crate::ir::buffers::SlotLayout;
use crate::ir::{Kind, Layout};
use crate::runtime::snapshot::{SlotData, Snapshot, kind_name};

/// What a state dict says it is.
const FORMAT: &str = "optc-state";
const VERSION: u32 = 1;

fn scalar_to_py<'py>(py: Python<'py>, x: Scalar) -> PyResult<Bound<'py, PyAny>> {
    Ok(match x {
        Scalar::F32(v) => PyFloat::new(py, f64::from(v)).into_any(),
        Scalar::I32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::Bool(v) => PyBool::new(py, v).to_owned().into_any(),
    })
}

/// A Python number as a scalar of `kind`, exactly (a float must be a float32 value, an int an
/// int32), or the reason it is not one.
fn scalar_from_py(x: &Bound<'_, PyAny>, kind: Kind) -> Result<Scalar, String> {
    let found = || format!("found {} {}", arrays::type_name(x), x.repr().map(|r| r.to_string()).unwrap_or_default());
    match kind {
        Kind::Bool if x.is_instance_of::<PyBool>() => Ok(Scalar::Bool(x.extract::<bool>().map_err(|_| found())?)),
        Kind::I32 if x.is_instance_of::<PyInt>() && !x.is_instance_of::<PyBool>() => {
            x.extract::<i32>().map(Scalar::I32).map_err(|_| format!("an int32 is expected, {}", found()))
        }
        Kind::F32 if !x.is_instance_of::<PyBool>() => {
            let v = x.extract::<f64>().map_err(|_| found())?;
            let f = v as f32;
            if f64::from(f) != v && !v.is_nan() {
                return Err(format!("{v} is not a float32 value"));
            }
            Ok(Scalar::F32(f))
        }
        _ => Err(format!("a {} is expected, {}", kind_name(kind), found())),
    }
}

/// A state dict: `format`, `version`, what identifies the pipeline and layout, `steps`, and
/// `state`: each slot by name — a uniform as a Python number, a per-leaf slot as `{leaf:
/// float}`, a per-element slot as `{leaf: float32 array of the leaf's shape}` — for the leaves
/// the slot holds (`held`: a partition arm's state holds the arm's leaves). A bfloat16 slot's
/// arrays are float32 too, holding its values exactly (numpy has no bfloat16); loaded back,
/// they are rounded to bfloat16, and `slots` names the storage type, so a state dict of
/// another storage type is refused.
pub fn to_dict<'py>(py: Python<'py>, snapshot: &Snapshot, layout: &Layout, held: &SlotLayout) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("format", FORMAT)?;
    d.set_item("version", VERSION)?;
    d.set_item("pipeline", &snapshot.pipeline)?;
    d.set_item("fingerprint", &snapshot.fingerprint)?;
    d.set_item("slots", &snapshot.slots_key)?;
    d.set_item("layout", &snapshot.layout)?;
    d.set_item("steps", snapshot.steps)?;
    let state = PyDict::new(py);
    for (s, slot) in snapshot.slots.iter().enumerate() {
        let value = match &slot.data {
            SlotData::Uniform(x) => scalar_to_py(py, *x)?,
            SlotData::Leaf(v) => {
                let per_leaf = PyDict::new(py);
                for (_, (leaf, x)) in layout.leaves.iter().zip(v).enumerate().filter(|(l, _)| held.holds(s, *l)) {
                    per_leaf.set_item(&leaf.name, f64::from(*x))?;
                }
                per_leaf.into_any()
            }
            SlotData::Element(v) => {
                let per_leaf = PyDict::new(py);
                for (l, leaf) in layout.leaves.iter().enumerate() {
                    if let Some(range) = held.range(s, l) {
                        // State kept reduced over axes has size 1 on them (numpy's keepdims).
                        let shape = crate::ir::axes::stored_shape(&leaf.shape, held.collapsed(s, l));
                        let array = PyArray1::from_slice(py, &v[range]).reshape(shape)?;
                        per_leaf.set_item(&leaf.name, array)?;
                    }
                }
                per_leaf.into_any()
            }
        };
        state.set_item(&slot.name, value)?;
    }
    d.set_item("state", state)?;
    Ok(d)
}

/// Reads a state dict made by [`to_dict`] into a snapshot shaped like `like` (the optimizer's
/// own: its slots, levels and kinds). Whether it belongs to the optimizer is judged when the
/// snapshot is restored.
pub fn from_dict(d: &Bound<'_, PyAny>, like: &Snapshot, layout: &Layout, held: &SlotLayout) -> PyResult<Snapshot> {
    let d = d.cast::<PyDict>().map_err(|_| PyTypeError::new_err(format!("expected a state dict, found {}", arrays::type_name(d))))?;
    let field = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(k)?.ok_or_else(|| PyValueError::new_err(format!("not an optc state dict: it has no `{k}`")))
    };
    if field("format")?.extract::<String>().ok().as_deref() != Some(FORMAT) {
        return Err(PyValueError::new_err(format!("not an optc state dict: its `format` is not {FORMAT:?}")));
    }
    let version: u32 = field("version")?.extract().unwrap_or(0);
    if version != VERSION {
        return Err(PyValueError::new_err(format!("an optc state dict of version {version}; this optc reads version {VERSION}")));
    }
    let text = |k: &str| -> PyResult<String> { field(k)?.extract::<String>().map_err(|_| PyValueError::new_err(format!("the state dict's `{k}` is not a string"))) };
    let mut snapshot = Snapshot {
        pipeline: text("pipeline")?,
        // (State dicts before it lack it: their pipelines are then compared as written.)
        fingerprint: if d.contains("fingerprint")? { text("fingerprint")? } else { String::new() },
        slots_key: text("slots")?,
        layout: text("layout")?,
        steps: field("steps")?.extract().map_err(|_| PyValueError::new_err("the state dict's `steps` is not a count of steps"))?,
        slots: Vec::with_capacity(like.slots.len()),
    };
    // Another pipeline or layout is refused with the reason before its values are read.
    let same_step = snapshot.pipeline == like.pipeline || snapshot.fingerprint == like.fingerprint;
    if !same_step || snapshot.slots_key != like.slots_key || snapshot.layout != like.layout {
        return Ok(snapshot);
    }
    let state = field("state")?;
    let state = state.cast::<PyDict>().map_err(|_| PyValueError::new_err("the state dict's `state` is not a dict"))?;
    if state.len() != like.slots.len() {
        let names: Vec<String> = state.keys().iter().filter_map(|k| k.extract::<String>().ok()).filter(|k| !like.slots.iter().any(|s| &s.name == k)).collect();
        return Err(PyValueError::new_err(format!("the state dict has {} slots, the pipeline keeps {} (not its own: {names:?})", state.len(), like.slots.len())));
    }
    for (s, slot) in like.slots.iter().enumerate() {
        let name = &slot.name;
        let value = state.get_item(name)?.ok_or_else(|| PyValueError::new_err(format!("the state dict has no `{name}`")))?;
        let bad = |why: String| PyValueError::new_err(format!("the state `{name}`: {why}"));
        // The leaves the slot holds, by index.
        let mine: Vec<usize> = (0..layout.leaves.len()).filter(|&l| held.holds(s, l)).collect();
        let per_leaf = || -> PyResult<Bound<'_, PyDict>> {
            let dict = value.cast::<PyDict>().map_err(|_| bad(format!("expected a dict of its {} leaves", mine.len())))?;
            if dict.len() != mine.len() {
                return Err(bad(format!("has {} leaves; it holds {}", dict.len(), mine.len())));
            }
            Ok(dict.clone())
        };
        let data = match &slot.data {
            SlotData::Uniform(x) => SlotData::Uniform(scalar_from_py(&value, x.kind()).map_err(bad)?),
            SlotData::Leaf(own) => {
                let dict = per_leaf()?;
                // Leaves the slot does not hold keep the optimizer's own (unused) values.
                let mut v = own.clone();
                for &l in &mine {
                    let leaf = &layout.leaves[l];
                    let x = dict.get_item(&leaf.name)?.ok_or_else(|| bad(format!("no value for the leaf {}", quote(&leaf.name))))?;
                    match scalar_from_py(&x, Kind::F32).map_err(|e| bad(format!("leaf {}: {e}", quote(&leaf.name))))? {
                        Scalar::F32(f) => v[l] = f,
                        _ => return Err(bad(format!("leaf {}: expected a float", quote(&leaf.name)))),
                    }
                }
                SlotData::Leaf(v)
            }
            SlotData::Element(_) => {
                let dict = per_leaf()?;
                let mut v = Vec::with_capacity(held.lens()[s]);
                for (l, leaf) in mine.iter().map(|&l| (l, &layout.leaves[l])) {
                    let x = dict.get_item(&leaf.name)?.ok_or_else(|| bad(format!("no values for the leaf {}", quote(&leaf.name))))?;
                    let array = x.cast::<PyArrayDyn<f32>>().map_err(|_| bad(format!("leaf {}: expected a float32 numpy array, found {}", quote(&leaf.name), arrays::described(&x))))?;
                    let shape = crate::ir::axes::stored_shape(&leaf.shape, held.collapsed(s, l));
                    if array.shape() != shape.as_slice() {
                        return Err(bad(format!("leaf {} has shape {}; expected {}", quote(&leaf.name), show_shape(array.shape()), show_shape(&shape))));
                    }
                    // Any memory order: this is a copy.
                    v.extend(array.readonly().as_array().iter());
                }
                SlotData::Element(v)
            }
        };
        snapshot.slots.push(crate::runtime::snapshot::SlotValue { name: name.clone(), data });
    }
    Ok(snapshot)
}

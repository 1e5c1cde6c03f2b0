//! Mappings of numpy arrays as the leaves of a layout: flattened to dotted names (so `"*.bias"`
//! means what it says for Flax's nested dicts and PyTorch's `named_parameters()` alike), and
//! checked leaf by leaf — type, dtype, shape, memory order — with an error naming the leaf and
//! what was expected.

use std::collections::HashMap;

use numpy::{PyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString};

use crate::ir::{Layout, Leaf};

/// A mapping's entries with nested mappings flattened to dotted names, in the mapping's order.
/// `what` names the argument in errors (`params`, `grads`).
pub fn flatten<'py>(mapping: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    if !is_mapping(mapping) {
        let kind = type_name(mapping);
        return Err(PyTypeError::new_err(format!(
            "`{what}` must map leaf names to float32 numpy arrays (a dict), found {kind}"
        )));
    }
    let mut out = Vec::new();
    walk(mapping, "", what, &mut out)?;
    Ok(out)
}

fn is_mapping(x: &Bound<'_, PyAny>) -> bool {
    x.is_instance_of::<PyDict>() || x.cast::<PyMapping>().is_ok()
}

fn walk<'py>(mapping: &Bound<'py, PyAny>, prefix: &str, what: &str, out: &mut Vec<(String, Bound<'py, PyAny>)>) -> PyResult<()> {
    let items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = match mapping.cast::<PyDict>() {
        Ok(dict) => dict.iter().collect(),
        Err(_) => mapping.call_method0("items")?.try_iter()?.map(|kv| kv.and_then(|kv| kv.extract())).collect::<PyResult<_>>()?,
    };
    for (key, value) in items {
        let key = if let Ok(s) = key.cast::<PyString>() {
            s.to_string()
        } else if let Ok(i) = key.extract::<i64>() {
            i.to_string()
        } else {
            return Err(PyTypeError::new_err(format!(
                "`{what}` has a key of type {} under `{prefix}`: leaf names are strings (or integers, in nested mappings)",
                type_name(&key)
            )));
        };
        let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        if is_mapping(&value) && !value.is_instance_of::<PyUntypedArray>() {
            walk(&value, &name, what, out)?;
        } else {
            out.push((name, value));
        }
    }
    Ok(())
}

/// The Python type name of `x`, for messages.
pub fn type_name(x: &Bound<'_, PyAny>) -> String {
    x.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "an object".into())
}

/// What `x` is, for a message that expected an array: a numpy array's dtype, else its type.
pub fn described(x: &Bound<'_, PyAny>) -> String {
    match x.cast::<PyUntypedArray>() {
        Ok(array) => format!("a {} array", array.dtype()),
        Err(_) => type_name(x),
    }
}

/// A shape as Python prints it: `(3,)`, `(2, 3)`, `()`.
pub fn show_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// A name as Python writes a string: `'layers.0.bias'`.
pub fn quote(name: &str) -> String {
    format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `x` as a float32 array in C order, or the error saying what it is instead.
fn float32_array<'py>(x: &Bound<'py, PyAny>, what: &str, name: &str) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let quoted = quote(name);
    let Ok(array) = x.cast::<PyUntypedArray>() else {
        // A numpy scalar has a dtype but no memory of its own to update.
        let scalar = if x.hasattr("dtype").unwrap_or(false) { " (a scalar: make it np.array(x, np.float32))" } else { "" };
        return Err(PyTypeError::new_err(format!(
            "{what}[{quoted}] is {}{scalar}, not a numpy array (float32)",
            type_name(x)
        )));
    };
    let Ok(floats) = array.cast::<PyArrayDyn<f32>>() else {
        return Err(PyTypeError::new_err(format!(
            "{what}[{quoted}] has dtype {}; optc steps float32 arrays (convert with .astype(np.float32))",
            array.dtype()
        )));
    };
    // Fortran order, a transposed or strided view: its elements are not in the order of the
    // leaf's shape, and an update in place must write the caller's own memory.
    if !floats.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{what}[{quoted}] is not C-contiguous (a transposed, strided or Fortran-order array): optc reads and updates leaves in place, in row-major order"
        )));
    }
    if !floats.is_aligned() && floats.len() > 0 {
        return Err(PyValueError::new_err(format!("{what}[{quoted}] is not aligned for float32")));
    }
    Ok(floats.clone())
}

/// The layout of `params`: its leaves' dotted names and shapes.
pub fn layout_of(params: &Bound<'_, PyAny>) -> PyResult<Layout> {
    let entries = flatten(params, "params")?;
    let mut leaves = Vec::with_capacity(entries.len());
    for (name, value) in &entries {
        let array = float32_array(value, "params", name)?;
        leaves.push(Leaf { name: name.clone(), shape: array.shape().to_vec() });
    }
    Layout::new(leaves).map_err(|e| PyValueError::new_err(format!("`params`: {e}")))
}

/// Finds the leaves of a layout in mappings of arrays.
pub struct Leaves {
    pub layout: Layout,
    index: HashMap<String, usize>,
}

impl Leaves {
    pub fn new(layout: Layout) -> Leaves {
        let index = layout.leaves.iter().enumerate().map(|(i, l)| (l.name.clone(), i)).collect();
        Leaves { layout, index }
    }

    /// The arrays of `mapping`, one per leaf in layout order, each checked against its leaf;
    /// a missing or an extra leaf is an error naming it.
    pub fn gather<'py>(&self, mapping: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        self.gather_some(mapping, what, &[])?.into_iter().zip(&self.layout.leaves).map(|(a, leaf)| a.ok_or_else(|| self.missing(what, leaf))).collect()
    }

    /// The index of each name of `names` in the layout, or an error naming one that is not a
    /// leaf.
    pub fn indices(&self, names: &[String], what: &str) -> PyResult<Vec<usize>> {
        names
            .iter()
            .map(|name| {
                let quoted = quote(name);
                self.index.get(name).copied().ok_or_else(|| {
                    PyValueError::new_err(format!("{what}: {quoted} is not a leaf of this optimizer (it was initialised for {})", self.describe()))
                })
            })
            .collect()
    }

    fn missing(&self, what: &str, leaf: &Leaf) -> PyErr {
        PyValueError::new_err(format!("{what} has no leaf {} (a float32 array of shape {})", quote(&leaf.name), show_shape(&leaf.shape)))
    }

    /// As [`Leaves::gather`], where the leaves `optional` (layout indices) may be missing.
    pub fn gather_some<'py>(&self, mapping: &Bound<'py, PyAny>, what: &str, optional: &[usize]) -> PyResult<Vec<Option<Bound<'py, PyArrayDyn<f32>>>>> {
        let entries = flatten(mapping, what)?;
        let mut found: Vec<Option<Bound<'py, PyArrayDyn<f32>>>> = vec![None; self.layout.leaves.len()];
        for (name, value) in &entries {
            let quoted = quote(name);
            let Some(&l) = self.index.get(name) else {
                return Err(PyValueError::new_err(format!(
                    "{what}[{quoted}] is not a leaf of this optimizer (it was initialised for {})",
                    self.describe()
                )));
            };
            let array = float32_array(value, what, name)?;
            let leaf = &self.layout.leaves[l];
            if array.shape() != leaf.shape.as_slice() {
                return Err(PyValueError::new_err(format!(
                    "{what}[{quoted}] has shape {}; expected {}",
                    show_shape(array.shape()),
                    show_shape(&leaf.shape)
                )));
            }
            if found[l].replace(array).is_some() {
                return Err(PyValueError::new_err(format!("{what} names the leaf {quoted} twice")));
            }
        }
        if let Some((_, leaf)) = found.iter().zip(&self.layout.leaves).enumerate().find(|(l, (a, _))| a.is_none() && !optional.contains(l)).map(|(_, x)| x) {
            return Err(self.missing(what, leaf));
        }
        Ok(found)
    }

    /// The leaves, for messages: `a (3,), b (2, 3)`, shortened past a dozen.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.layout.leaves.iter().take(12).map(|l| format!("{} {}", quote(&l.name), show_shape(&l.shape))).collect();
        if self.layout.leaves.len() > 12 {
            parts.push(format!("and {} more", self.layout.leaves.len() - 12));
        }
        parts.join(", ")
    }
}

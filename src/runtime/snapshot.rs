//! An optimizer's state as plain values, for callers that keep state themselves (a Python
//! `state_dict`, a JAX pytree): what a state file holds, unpacked, and judged by the same rule
//! when it comes back ([`checkpoint::belongs`]).

use crate::interp::State;
use crate::ir::buffers::SlotLayout;
use crate::ir::op::{Kind, Scalar};
use crate::ir::{Level, StepIr};

use super::checkpoint::{self, LoadError};

/// The state of an optimizer, with what identifies the pipeline and layout it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The resolved pipeline on one line, as state files record it.
    pub pipeline: String,
    /// Its step IR's fingerprint ([`checkpoint::fingerprint`]; empty where none was recorded).
    pub fingerprint: String,
    /// The slots' names, levels and kinds ([`checkpoint::pipeline_key`]).
    pub slots_key: String,
    /// The layout (its display form: `name:4x3,...`).
    pub layout: String,
    /// Steps taken.
    pub steps: u64,
    /// One entry per slot of the step IR, in slot order.
    pub slots: Vec<SlotValue>,
}

impl Snapshot {
    /// What it records about the step it was taken from.
    pub fn owner(&self) -> checkpoint::Owner<'_> {
        checkpoint::Owner { pipeline: &self.pipeline, fingerprint: &self.fingerprint, slots: &self.slots_key, layout: &self.layout }
    }
}

/// The value of one state slot.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotValue {
    /// Its name, as `optc check` lists it (`adam.scale_by_adam.mu`).
    pub name: String,
    pub data: SlotData,
}

/// A slot's values, by level.
#[derive(Clone, Debug, PartialEq)]
pub enum SlotData {
    Uniform(Scalar),
    /// One value per leaf, in layout order.
    Leaf(Vec<f32>),
    /// One value per element of the leaves the slot holds ([`SlotLayout`]: those its
    /// transform applies to), one leaf after another in layout order. A bfloat16 slot's
    /// values are float32 copies (exact); written back, they are rounded to bfloat16.
    Element(Vec<f32>),
}

impl SlotData {
    pub fn level(&self) -> Level {
        match self {
            SlotData::Uniform(_) => Level::Uniform,
            SlotData::Leaf(_) => Level::Leaf,
            SlotData::Element(_) => Level::Element,
        }
    }
}

/// The snapshot of `state` after `steps` steps.
pub fn take(ir: &StepIr, state: &State, steps: u64, pipeline: &str) -> Snapshot {
    let held = SlotLayout::new(ir);
    let slots = ir
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let data = match s.level {
                Level::Uniform => SlotData::Uniform(state.uniform[i]),
                Level::Leaf => SlotData::Leaf(state.leaf[i].clone()),
                Level::Element => SlotData::Element(held.values(i, state.element.get(i).unwrap_or_default())),
            };
            SlotValue { name: s.name.clone(), data }
        })
        .collect();
    Snapshot {
        pipeline: pipeline.to_string(),
        fingerprint: checkpoint::fingerprint(ir),
        slots_key: checkpoint::pipeline_key(ir),
        layout: ir.layout.to_string(),
        steps,
        slots,
    }
}

/// Writes `snapshot` into `state` if it belongs to `ir` (and the pipeline `pipeline`), slot by
/// slot checked first, so that a refused snapshot changes nothing; returns its step count.
pub fn restore(ir: &StepIr, state: &mut State, pipeline: &str, snapshot: &Snapshot) -> Result<u64, LoadError> {
    let held = SlotLayout::new(ir);
    checkpoint::belongs(ir, pipeline, &snapshot.owner())?;
    if snapshot.slots.len() != ir.slots.len() {
        return Err(LoadError::Corrupt(format!("it has {} state slots, the pipeline keeps {}", snapshot.slots.len(), ir.slots.len())));
    }
    let n_leaves = ir.layout.leaves.len();
    for (s, (slot, value)) in ir.slots.iter().zip(&snapshot.slots).enumerate() {
        let wrong = |what: String| Err(LoadError::Corrupt(format!("the state `{}` {what}", slot.name)));
        if value.name != slot.name {
            return Err(LoadError::Corrupt(format!("the state `{}` comes where `{}` belongs", value.name, slot.name)));
        }
        match &value.data {
            d if d.level() != slot.level => return wrong(format!("is {}, but the pipeline keeps it {}", d.level(), slot.level)),
            SlotData::Uniform(x) if x.kind() != slot.kind => {
                return wrong(format!("is {}, but the pipeline keeps {}", kind_name(x.kind()), kind_name(slot.kind)));
            }
            SlotData::Leaf(v) if v.len() != n_leaves => return wrong(format!("has {} values for {n_leaves} leaves", v.len())),
            SlotData::Element(v) if v.len() != held.lens()[s] => {
                return wrong(format!("has {} values for the {} elements of the leaves it holds", v.len(), held.lens()[s]));
            }
            _ => {}
        }
    }
    for (i, value) in snapshot.slots.iter().enumerate() {
        match &value.data {
            SlotData::Uniform(x) => state.uniform[i] = *x,
            SlotData::Leaf(v) => state.leaf[i].clone_from(v),
            SlotData::Element(v) => {
                if let Some(buffer) = state.element.get_mut(i) {
                    held.storage(i).pack(buffer, 0, v);
                }
            }
        }
    }
    Ok(snapshot.steps)
}

/// Where a slot lives in the packed state ([`pack`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedSlot {
    pub name: String,
    /// `f32` (in the float vector); `i32`, or `bool` as 0 or 1 (in the int vector).
    pub kind: &'static str,
    pub offset: usize,
    pub len: usize,
    /// `[]` for a uniform slot, `[leaves]` per leaf, `[elements of the leaves it holds]` per
    /// element.
    pub shape: Vec<usize>,
}

/// Where each slot of `ir` lives in its packed state.
pub fn packed_layout(ir: &StepIr) -> Vec<PackedSlot> {
    let (mut floats, mut ints) = (0usize, 0usize);
    let n_leaves = ir.layout.leaves.len();
    let held = SlotLayout::new(ir);
    ir.slots
        .iter()
        .enumerate()
        .map(|(s, slot)| {
            let (kind, len) = match (slot.level, slot.kind) {
                (Level::Uniform, Kind::F32) => ("f32", 1),
                (Level::Uniform, Kind::I32) => ("i32", 1),
                (Level::Uniform, Kind::Bool) => ("bool", 1),
                (Level::Leaf, _) => ("f32", n_leaves),
                (Level::Element, _) => ("f32", held.lens()[s]),
            };
            let at = if kind == "f32" { &mut floats } else { &mut ints };
            let offset = *at;
            *at += len;
            let shape = if slot.level == Level::Uniform { vec![] } else { vec![len] };
            PackedSlot { name: slot.name.clone(), kind, offset, len, shape }
        })
        .collect()
}

/// The state packed into two flat vectors, slot after slot ([`packed_layout`] says where):
/// the float32 slots, and the int32 slots with bools as 0 or 1. For callers that carry state
/// through an interface that pays per array (a JAX host call).
pub fn pack(ir: &StepIr, state: &State) -> (Vec<f32>, Vec<i32>) {
    let held = SlotLayout::new(ir);
    let (mut f, mut i) = (Vec::new(), Vec::new());
    for (s, slot) in ir.slots.iter().enumerate() {
        match (slot.level, state.uniform[s]) {
            (Level::Uniform, Scalar::F32(x)) => f.push(x),
            (Level::Uniform, Scalar::I32(x)) => i.push(x),
            (Level::Uniform, Scalar::Bool(x)) => i.push(i32::from(x)),
            (Level::Leaf, _) => f.extend_from_slice(&state.leaf[s]),
            (Level::Element, _) => f.extend(held.values(s, state.element.get(s).unwrap_or_default())),
        }
    }
    (f, i)
}

/// Writes vectors packed by [`pack`] for `ir` into `state`; refused, with nothing changed, if
/// their lengths are not `ir`'s.
pub fn unpack(ir: &StepIr, state: &mut State, f: &[f32], i: &[i32]) -> Result<(), LoadError> {
    let layout = packed_layout(ir);
    let held = SlotLayout::new(ir);
    let floats: usize = layout.iter().filter(|s| s.kind == "f32").map(|s| s.len).sum();
    let ints = layout.iter().filter(|s| s.kind != "f32").count();
    if f.len() != floats || i.len() != ints {
        return Err(LoadError::Corrupt(format!(
            "the packed state has {} floats and {} ints; this pipeline keeps {floats} and {ints}",
            f.len(),
            i.len()
        )));
    }
    for (s, (slot, at)) in ir.slots.iter().zip(&layout).enumerate() {
        let range = at.offset..at.offset + at.len;
        match (slot.level, slot.kind) {
            (Level::Uniform, Kind::F32) => state.uniform[s] = Scalar::F32(f[at.offset]),
            (Level::Uniform, Kind::I32) => state.uniform[s] = Scalar::I32(i[at.offset]),
            (Level::Uniform, Kind::Bool) => state.uniform[s] = Scalar::Bool(i[at.offset] != 0),
            (Level::Leaf, _) => state.leaf[s].copy_from_slice(&f[range]),
            (Level::Element, _) => {
                if let Some(buffer) = state.element.get_mut(s) {
                    held.storage(s).pack(buffer, 0, &f[range]);
                }
            }
        }
    }
    Ok(())
}

/// A kind as a user reads it.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::F32 => "float",
        Kind::I32 => "int",
        Kind::Bool => "bool",
    }
}

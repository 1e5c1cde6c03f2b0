//! Optimizer state files: versioned, keyed by the pipeline and the layout they belong to,
//! checksummed, and written by [`crate::fsio`] so that a crash never leaves a half-written file.
//!
//! Format: the line `optc-state 3`, a JSON header line, then the state as little-endian bytes:
//! the step count (8 bytes), uniform slots (4 bytes each, f32/i32/bool as u32), per-leaf slots
//! (one f32 per leaf of the layout), per-element slots (one f32 per element of the leaves the
//! slot holds: a transform applied to some leaves keeps state for those only; version 2 kept
//! every slot for every leaf, and is refused with that reason; a bfloat16 slot keeps 2 bytes
//! per element, the bfloat16's own, and its storage type is part of the slots' key, so a state
//! saved in another storage type is refused with that reason). The header holds
//! the pipeline with every argument, a fingerprint of its step IR (so that the same call with
//! other definitions behind it is told apart), the state slots, the layout, and an FNV-1a
//! checksum of the bytes.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::interp::State;
use crate::ir::buffers::SlotLayout;
use crate::ir::op::{Kind, Scalar};
use crate::ir::{Level, StepIr, Storage};

const VERSION: u32 = 3;
const MAGIC: &str = "optc-state 3";

/// Why a state file was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadError {
    Io(String),
    /// Not a state file, or damaged.
    Corrupt(String),
    /// Saved for another pipeline.
    Pipeline { saved: String, now: String },
    /// Saved for another layout.
    Layout { saved: String, now: String },
    /// A state saved in another storage type than the pipeline keeps it in.
    Storage { slot: String, saved: Storage, now: Storage },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Corrupt(e) => write!(f, "not a valid optc state file: {e}"),
            LoadError::Pipeline { saved, now } => {
                write!(f, "this state belongs to another pipeline\n  saved with: {saved}\n  loading into: {now}")
            }
            LoadError::Layout { saved, now } => {
                write!(f, "this state belongs to another parameter layout\n  saved with: {saved}\n  loading into: {now}")
            }
            LoadError::Storage { slot, saved, now } => write!(
                f,
                "the state `{slot}` was saved as {}, but this pipeline stores it as {}: start the optimizer afresh, or load it with the storage type it was saved with",
                saved.name(),
                now.name()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// What identifies the pipeline a state belongs to: its slots, by name, level, kind and
/// storage type (written only when it is not float32, so float32 states read as before).
pub fn pipeline_key(ir: &StepIr) -> String {
    let slots: Vec<String> = ir
        .slots
        .iter()
        .map(|s| match s.storage {
            Storage::F32 => format!("{}:{}:{:?}", s.name, s.level, s.kind),
            other => format!("{}:{}:{:?}:{}", s.name, s.level, s.kind, other.name()),
        })
        .collect();
    slots.join(" ")
}

/// The entries of a key made by [`pipeline_key`], one per slot: `name:level:kind`, then
/// `:storage` where it is not float32. A slot's name may hold spaces (`partition[ndim ==
/// 2].scale_by_muon.mu`) but no colon, and the fields after it neither, so an entry ends at the
/// first space after a colon.
fn key_entries(key: &str) -> Vec<&str> {
    let (mut out, mut start, mut named) = (Vec::new(), 0, false);
    for (i, c) in key.char_indices() {
        match c {
            ':' => named = true,
            ' ' if named => {
                out.push(&key[start..i]);
                (start, named) = (i + 1, false);
            }
            _ => {}
        }
    }
    if !key.is_empty() {
        out.push(&key[start..]);
    }
    out
}

/// A slot of the key `saved` that has the storage type `saved_as`, where the same slot of
/// `ir` has `now`, if the keys differ only in that way.
fn storage_mismatch(ir: &StepIr, saved: &str) -> Option<(String, Storage, Storage)> {
    let split = |entry: &str| -> (String, Storage) {
        match entry.rsplit_once(':').and_then(|(base, name)| Some((base, Storage::parse(name)?))) {
            Some((base, storage)) => (base.to_string(), storage),
            None => (entry.to_string(), Storage::F32),
        }
    };
    let saved: Vec<(String, Storage)> = key_entries(saved).into_iter().map(split).collect();
    let now: Vec<(String, Storage)> = key_entries(&pipeline_key(ir)).into_iter().map(split).collect();
    if saved.len() != now.len() || saved.iter().zip(&now).any(|(a, b)| a.0 != b.0) {
        return None;
    }
    let (s, (a, b)) = saved.iter().zip(&now).enumerate().find(|(_, (a, b))| a.1 != b.1)?;
    Some((ir.slots.get(s)?.name.clone(), a.1, b.1))
}

/// What identifies the step a state belongs to, beyond the pipeline's text: a checksum of its
/// step IR (nodes, updates, slots), which changes with any definition behind the pipeline.
/// Source locations take no part, so comments and formatting do not matter.
pub fn fingerprint(ir: &StepIr) -> String {
    let slots: Vec<_> = ir.slots.iter().map(|s| (&s.name, s.level, s.kind, s.storage, &s.groups, s.init, s.next)).collect();
    let text = format!("{:?}", (&ir.graph.nodes, ir.updates, &ir.init.nodes, slots, &ir.groups));
    format!("{:016x}", crate::fsio::checksum(text.as_bytes()))
}

/// What a saved state records about the step it was saved from.
pub struct Owner<'a> {
    /// The resolved pipeline, on one line.
    pub pipeline: &'a str,
    /// Its step IR's [`fingerprint`] (empty where none was recorded).
    pub fingerprint: &'a str,
    /// Its slots ([`pipeline_key`]).
    pub slots: &'a str,
    /// Its layout (display form).
    pub layout: &'a str,
}

/// Whether a state saved from `owner` belongs to `ir`, instantiated from the pipeline `now`:
/// the one rule for state files and snapshots alike. The pipeline itself is compared
/// (hyperparameters included), not only its slots: `adam` and `adamw` keep the same slots. Two
/// spellings of one step (`adam(learning_rate=0.001, b1=0.9)` and `adam(learning_rate=0.001)`,
/// `mu_dtype="float32"` and `None`) have the same step IR, and share their state.
pub fn belongs(ir: &StepIr, now: &str, owner: &Owner) -> Result<(), LoadError> {
    let Owner { pipeline, slots, layout, .. } = *owner;
    if let Some((slot, saved, now)) = storage_mismatch(ir, slots) {
        return Err(LoadError::Storage { slot, saved, now });
    }
    let key = pipeline_key(ir);
    if pipeline != now && owner.fingerprint != fingerprint(ir) {
        return Err(LoadError::Pipeline { saved: pipeline.to_string(), now: now.to_string() });
    }
    if slots != key {
        // The same call with other definitions behind it (another optc, standard library or
        // `transform`): the state each keeps tells them apart.
        let names = |key: &str| key_entries(key).iter().map(|e| e.split(':').next().unwrap_or(e)).collect::<Vec<_>>().join(", ");
        let keeping = |key: &str| format!("{pipeline}, whose definitions keep [{}]", names(key));
        return Err(LoadError::Pipeline { saved: keeping(slots), now: keeping(&key) });
    }
    if layout != ir.layout.to_string() {
        return Err(LoadError::Layout { saved: layout.to_string(), now: ir.layout.to_string() });
    }
    Ok(())
}

fn scalar_bits(s: Scalar) -> u32 {
    match s {
        Scalar::F32(x) => x.to_bits(),
        Scalar::I32(n) => n as u32,
        Scalar::Bool(b) => u32::from(b),
    }
}

fn scalar_from(kind: Kind, bits: u32) -> Scalar {
    match kind {
        Kind::F32 => Scalar::F32(f32::from_bits(bits)),
        Kind::I32 => Scalar::I32(bits as i32),
        Kind::Bool => Scalar::Bool(bits != 0),
    }
}

fn payload(ir: &StepIr, state: &State, step: u64) -> Vec<u8> {
    let held = SlotLayout::new(ir);
    let mut out = Vec::new();
    out.extend_from_slice(&step.to_le_bytes());
    for (i, s) in ir.slots.iter().enumerate() {
        match s.level {
            Level::Uniform => out.extend_from_slice(&scalar_bits(state.uniform[i]).to_le_bytes()),
            Level::Leaf => state.leaf[i].iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Level::Element => {
                let values = held.values(i, state.element.get(i).unwrap_or_default());
                for x in values {
                    let bytes = x.to_bits().to_le_bytes();
                    // A bfloat16 is the top half of its float32.
                    out.extend_from_slice(&bytes[4 - s.storage.bytes()..]);
                }
            }
        }
    }
    out
}

/// Writes `state` (after `step` steps) to `path` atomically.
pub fn save(path: &Path, ir: &StepIr, state: &State, step: u64, pipeline: &str) -> std::io::Result<()> {
    let body = payload(ir, state, step);
    let header = json!({
        "pipeline": pipeline,
        "fingerprint": fingerprint(ir),
        "slots": pipeline_key(ir),
        "layout": ir.layout.to_string(),
        "bytes": body.len(),
        "checksum": format!("{:016x}", crate::fsio::checksum(&body)),
    });
    crate::fsio::write_with(path, |f| {
        writeln!(f, "{MAGIC}")?;
        writeln!(f, "{header}")?;
        f.write_all(&body)
    })
}

/// Reads a state saved for this `ir`; returns it and the step count it was saved at.
pub fn load(path: &Path, ir: &StepIr, pipeline: &str) -> Result<(State, u64), LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(format!("cannot read `{}`: {e}", path.display())))?;
    let corrupt = |m: &str| LoadError::Corrupt(m.to_string());
    let first = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| corrupt("no header"))?;
    if &bytes[..first] != MAGIC.as_bytes() {
        return Err(match bytes[..first].strip_prefix(b"optc-state ") {
            Some(old @ (b"1" | b"2")) => corrupt(&format!(
                "it was written by an earlier optc (format {}), which kept every state for every leaf; this optc keeps a transform's state only for the leaves it applies to (format {VERSION}): start the optimizer afresh",
                String::from_utf8_lossy(old)
            )),
            Some(version) => corrupt(&format!(
                "it is version {} of the format, and this optc reads version {VERSION}",
                String::from_utf8_lossy(version)
            )),
            None => corrupt(&format!("it does not start with `{MAGIC}`")),
        });
    }
    let rest = &bytes[first + 1..];
    let second = rest.iter().position(|b| *b == b'\n').ok_or_else(|| corrupt("no header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&rest[..second]).map_err(|_| corrupt("the header is not JSON"))?;
    let body = &rest[second + 1..];
    let field = |k: &str| header[k].as_str().unwrap_or("").to_string();
    if header["bytes"].as_u64() != Some(body.len() as u64) {
        return Err(corrupt("it is truncated or has extra bytes"));
    }
    if field("checksum") != format!("{:016x}", crate::fsio::checksum(body)) {
        return Err(corrupt("its checksum does not match its contents"));
    }
    let owner = Owner { pipeline: &field("pipeline"), fingerprint: &field("fingerprint"), slots: &field("slots"), layout: &field("layout") };
    belongs(ir, pipeline, &owner)?;
    if field("fingerprint") != fingerprint(ir) {
        return Err(LoadError::Pipeline {
            saved: format!("{} (as defined when the state was saved)", field("pipeline")),
            now: format!("{pipeline} (whose definitions, or optc's compilation of them, have changed)"),
        });
    }
    let held = SlotLayout::new(ir);
    let n_leaves = ir.layout.leaves.len();
    let expected: usize = 8 + ir
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| match s.level {
            Level::Uniform => 4,
            Level::Leaf => 4 * n_leaves,
            Level::Element => s.storage.bytes() * held.lens()[i],
        })
        .sum::<usize>();
    if body.len() != expected {
        return Err(corrupt(&format!("it holds {} bytes of state, and this pipeline keeps {expected}", body.len())));
    }
    // Values of `width` bytes, in order: the low bytes of a float32's bits (for a bfloat16,
    // its top half).
    let mut rest = body;
    let mut next = |width: usize| -> u32 {
        let (head, tail) = rest.split_at(width.min(rest.len()));
        rest = tail;
        let mut b = [0u8; 4];
        b[4 - width..4 - width + head.len()].copy_from_slice(head);
        u32::from_le_bytes(b)
    };
    let lo = u64::from(next(4));
    let hi = u64::from(next(4));
    let step = lo | (hi << 32);
    let n = ir.slots.len();
    let element = super::element_arena(&held);
    let mut state = State { uniform: vec![Scalar::F32(0.0); n], leaf: vec![Vec::new(); n], element };
    for (i, s) in ir.slots.iter().enumerate() {
        match s.level {
            Level::Uniform => state.uniform[i] = scalar_from(s.kind, next(4)),
            Level::Leaf => state.leaf[i] = (0..n_leaves).map(|_| f32::from_bits(next(4))).collect(),
            Level::Element => {
                let values: Vec<f32> = (0..held.lens()[i]).map(|_| f32::from_bits(next(s.storage.bytes()))).collect();
                s.storage.pack(state.element.get_mut(i).unwrap_or_default(), 0, &values);
            }
        }
    }
    Ok((state, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_entries_keep_names_with_spaces_whole() {
        let key = "partition[ndim == 2].scale_by_muon.mu:per-element:F32:bfloat16 partition[_].count:uniform:I32 lr:uniform:F32";
        assert_eq!(
            key_entries(key),
            vec!["partition[ndim == 2].scale_by_muon.mu:per-element:F32:bfloat16", "partition[_].count:uniform:I32", "lr:uniform:F32"]
        );
        assert!(key_entries("").is_empty());
    }
}

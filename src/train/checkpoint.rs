//! Training checkpoints: `DIR/step-00000100/` holds the parameters (`params.safetensors`), the
//! optimizer state (`optimizer.state`) and a manifest (`manifest.json`) that proves what they
//! are: the step, what the run was (model, data and its checksum, split, seed, batches, what
//! `value` is), and the size and checksum of every file, the manifest itself included.
//!
//! A checkpoint is written in a temporary folder (through [`crate::fsio`]) and renamed into
//! place, so a folder named `step-N` is complete unless something damaged it later. Resuming
//! takes the newest checkpoint whose files match their manifest, saying which newer ones were
//! passed over and why; one from another run is refused, never passed over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Trainer, weights};
use crate::fsio;

const FORMAT: &str = "optc-checkpoint 2";
const PARAMS: &str = "params.safetensors";
const STATE: &str = "optimizer.state";
const MANIFEST: &str = "manifest.json";

/// What must match for a checkpoint to continue a run (the optimizer state file checks the
/// pipeline and the layout itself).
fn identity(trainer: &Trainer) -> Vec<(&'static str, Value)> {
    let setup = &trainer.setup;
    let feeds_validation = setup.value == super::ValueSource::ValLoss && trainer.optimizer.needs_value();
    let mut fields = vec![
        ("model", json!(setup.model.describe())),
        ("data", json!(setup.data)),
        ("val_fraction", json!(setup.val_fraction)),
        ("data_checksum", json!(format!("{:016x}", setup.data_checksum()))),
        ("seed", json!(setup.seed)),
        ("batch_size", json!(setup.batch_size)),
        ("value", json!(setup.value.to_string())),
    ];
    if feeds_validation {
        fields.push(("eval_every", json!(setup.eval_every)));
    }
    fields
}

/// The folder of the checkpoint at `step`.
pub fn folder(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("step-{step:08}"))
}

/// Saves `trainer` as `dir/step-N`; returns that folder.
pub fn save(dir: &Path, trainer: &Trainer) -> Result<PathBuf, String> {
    if let Some(i) = trainer.params.iter().position(|p| !p.is_finite()) {
        return Err(format!("not saving a checkpoint: parameter element {i} is {}", trainer.params[i]));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let step = trainer.steps();
    let target = folder(dir, step);
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let failed = |e: std::io::Error| format!("cannot write the checkpoint `{}`: {}", target.display(), fsio::reason(&e));
    let temp = fsio::TempDir::create(dir, &name).map_err(failed)?;
    let params = weights::serialize(&trainer.layout, &trainer.params, HashMap::new())?;
    fsio::write(&temp.path().join(PARAMS), &params).map_err(failed)?;
    trainer.optimizer.save(&temp.path().join(STATE)).map_err(failed)?;
    let state = std::fs::read(temp.path().join(STATE)).map_err(failed)?;
    let mut files = serde_json::Map::new();
    for (file, bytes) in [(PARAMS, &params), (STATE, &state)] {
        files.insert(file.into(), json!({ "bytes": bytes.len(), "checksum": checksum(bytes) }));
    }
    let mut manifest: serde_json::Map<String, Value> =
        identity(trainer).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    manifest.insert("format".into(), json!(FORMAT));
    manifest.insert("step".into(), json!(step));
    // The validation loss a `--value val_loss` run feeds until its next evaluation.
    manifest.insert("held_validation".into(), json!(trainer.held_validation.map(f32::to_bits)));
    manifest.insert("files".into(), Value::Object(files));
    let text = serde_json::to_string_pretty(&seal(manifest)).map_err(|e| e.to_string())?;
    fsio::write(&temp.path().join(MANIFEST), text.as_bytes()).map_err(failed)?;
    temp.persist(&target).map_err(failed)?;
    Ok(target)
}

/// Checks, before a run, that checkpoints can be written to `dir`: it is a folder, or can be
/// made one, and, unless it is the folder the run resumes from (`resumed_from`, however the path
/// is spelt), it holds no checkpoint of another run, whose steps the new run's would overwrite
/// and be mixed with. Leftovers of checkpoints that were being written when a process was killed
/// are removed.
pub fn prepare(dir: &Path, resumed_from: Option<&Path>) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(format!("`{}` is a file, not a checkpoint folder", dir.display())),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?,
    }
    let resumed = resumed_from.is_some_and(|from| same_folder(from, dir));
    if !resumed && let Some((step, newest)) = checkpoints(dir)?.first() {
        return Err(format!(
            "`{}` holds the checkpoints of another run (the newest is `{}`, at step {step}); `--resume {}` continues that run, and a new one needs a folder of its own; nothing was changed",
            dir.display(),
            newest.display(),
            dir.display()
        ));
    }
    fsio::check(&dir.join(MANIFEST)).map_err(|e| e.to_string())?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".step-") && name.ends_with(".tmp") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` name one existing folder.
fn same_folder(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The checkpoints in `dir`, newest first.
fn checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{}`: no such checkpoint folder", dir.display()),
        std::io::ErrorKind::NotADirectory => format!("`{}` is a file, not a checkpoint folder", dir.display()),
        _ => format!("cannot read `{}`: {e}", dir.display()),
    })?;
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step: u64 = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    Ok(found)
}

/// A checkpoint whose files match its manifest.
pub struct Intact {
    pub dir: PathBuf,
    pub step: u64,
    manifest: Value,
}

/// The newest intact checkpoint in `dir`, and a line for each newer one passed over.
pub fn latest(dir: &Path) -> Result<(Intact, Vec<String>), String> {
    let mut passed = Vec::new();
    for (step, path) in checkpoints(dir)? {
        match verify(&path, step) {
            Ok(manifest) => return Ok((Intact { dir: path, step, manifest }, passed)),
            Err(why) => passed.push(format!("`{}` is damaged ({why}); passing over it", path.display())),
        }
    }
    match passed.first() {
        None => Err(format!("`{}` holds no checkpoint (folders named `step-N`)", dir.display())),
        Some(_) => Err(format!("`{}` holds no intact checkpoint:\n  {}", dir.display(), passed.join("\n  "))),
    }
}

/// The manifest of the checkpoint `dir` at `step`, if its files are all there and match it.
fn verify(dir: &Path, step: u64) -> Result<Value, String> {
    let text = std::fs::read(dir.join(MANIFEST)).map_err(|e| format!("no readable `{MANIFEST}`: {e}"))?;
    let manifest: Value = serde_json::from_slice(&text).map_err(|_| format!("`{MANIFEST}` is not JSON"))?;
    if manifest.get("format") != Some(&json!(FORMAT)) {
        let found = manifest.get("format").and_then(Value::as_str).unwrap_or("unknown");
        return Err(format!("its format is `{found}`; this optc reads `{FORMAT}`"));
    }
    let Value::Object(fields) = &manifest else { return Err(format!("`{MANIFEST}` is not an object")) };
    if seal(fields.clone()) != manifest {
        return Err(format!("`{MANIFEST}` does not match its checksum"));
    }
    if manifest.get("step").and_then(Value::as_u64) != Some(step) {
        return Err(format!("its manifest is for step {}, not {step}", manifest["step"]));
    }
    for file in [PARAMS, STATE] {
        let entry = &manifest["files"][file];
        let bytes = std::fs::read(dir.join(file)).map_err(|e| format!("`{file}` cannot be read: {e}"))?;
        if entry["bytes"].as_u64() != Some(bytes.len() as u64) || entry["checksum"].as_str() != Some(&checksum(&bytes)) {
            return Err(format!("`{file}` does not match the checksum in its manifest"));
        }
    }
    Ok(manifest)
}

/// Loads an intact checkpoint into `trainer`, refusing one from another model, data, split,
/// seed, batch size, `value`, pipeline or layout with a message saying which.
pub fn load(checkpoint: &Intact, trainer: &mut Trainer) -> Result<(), String> {
    let shown = checkpoint.dir.display();
    for (key, expected) in identity(trainer) {
        let found = checkpoint.manifest.get(key).cloned().unwrap_or(Value::Null);
        if found != expected {
            return Err(format!("`{shown}` is from another run: its {key} is {found}, but this run's is {expected}"));
        }
    }
    let params = weights::load(&checkpoint.dir.join(PARAMS), &trainer.layout)?;
    trainer.optimizer.load(&checkpoint.dir.join(STATE)).map_err(|e| format!("`{shown}`: {e}"))?;
    if trainer.steps() != checkpoint.step {
        return Err(format!("`{shown}` is damaged: its optimizer state is at step {}", trainer.steps()));
    }
    trainer.params = params;
    trainer.held_validation = checkpoint.manifest["held_validation"].as_u64().map(|b| f32::from_bits(b as u32));
    Ok(())
}

/// The manifest with its own checksum (of the manifest without one) added.
fn seal(mut fields: serde_json::Map<String, Value>) -> Value {
    fields.remove("checksum");
    let text = Value::Object(fields.clone()).to_string();
    fields.insert("checksum".into(), json!(checksum(text.as_bytes())));
    Value::Object(fields)
}

fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", fsio::checksum(bytes))
}

//! Training checkpoints: `DIR/step-00000100/` holds the parameters (`params.safetensors`), the
//! optimizer state (`optimizer.state`) and what the run was (`run.json`). A checkpoint is
//! written in a temporary folder and renamed into place, so a folder named `step-N` is always
//! complete; resuming takes the one with the highest step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Trainer, weights};

const FORMAT: &str = "optc-run 1";

/// What must match for a checkpoint to continue a run (the optimizer state file checks the
/// pipeline and the layout itself).
fn identity(trainer: &Trainer) -> Vec<(&'static str, Value)> {
    vec![
        ("model", json!(trainer.setup.model.describe())),
        ("data", json!(trainer.setup.data)),
        ("seed", json!(trainer.setup.seed)),
        ("batch_size", json!(trainer.setup.batch_size)),
    ]
}

/// Saves `trainer` as `dir/step-N`; returns that folder.
pub fn save(dir: &Path, trainer: &Trainer) -> Result<PathBuf, String> {
    if let Some(i) = trainer.params.iter().position(|p| !p.is_finite()) {
        return Err(format!("not saving a checkpoint: parameter element {i} is {}", trainer.params[i]));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let step = trainer.steps();
    let name = format!("step-{step:08}");
    let final_dir = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| format!("cannot create `{}`: {e}", tmp.display()))?;
    let written = (|| {
        weights::save(&tmp.join("params.safetensors"), &trainer.layout, &trainer.params, HashMap::new())?;
        trainer
            .optimizer
            .save(&tmp.join("optimizer.state"))
            .map_err(|e| format!("cannot write the optimizer state: {e}"))?;
        let mut run: serde_json::Map<String, Value> =
            identity(trainer).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        run.insert("format".into(), json!(FORMAT));
        run.insert("step".into(), json!(step));
        let text = serde_json::to_string_pretty(&Value::Object(run)).map_err(|e| e.to_string())?;
        super::write_atomically(&tmp.join("run.json"), text.as_bytes())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if final_dir.exists() {
        let old = dir.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(&final_dir, &old).map_err(|e| format!("cannot replace `{}`: {e}", final_dir.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| format!("cannot write `{}`: {e}", final_dir.display()))?;
    Ok(final_dir)
}

/// The newest complete checkpoint in `dir`.
pub fn latest(dir: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{}`: no such checkpoint folder", dir.display()),
        _ => format!("cannot read `{}`: {e}", dir.display()),
    })?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step: u64 = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .max_by_key(|(step, _)| *step)
        .map(|(_, path)| path)
        .ok_or_else(|| format!("`{}` holds no checkpoint (folders named `step-N`)", dir.display()))
}

/// Loads the checkpoint `dir/step-N` into `trainer`, refusing one from another model, data,
/// seed, batch size, pipeline or layout with a message saying which.
pub fn load(dir: &Path, trainer: &mut Trainer) -> Result<(), String> {
    let shown = dir.display();
    let run_path = dir.join("run.json");
    let text = std::fs::read_to_string(&run_path).map_err(|e| format!("cannot read `{}`: {e}", run_path.display()))?;
    let run: Value = serde_json::from_str(&text).map_err(|e| format!("`{}` is damaged: {e}", run_path.display()))?;
    if run.get("format") != Some(&json!(FORMAT)) {
        return Err(format!("`{shown}` is not an optc checkpoint of this version (format {FORMAT})"));
    }
    for (key, expected) in identity(trainer) {
        let found = run.get(key).cloned().unwrap_or(Value::Null);
        if found != expected {
            return Err(format!(
                "`{shown}` is from another run: its {key} is {found}, but this run's is {expected}"
            ));
        }
    }
    let params = weights::load(&dir.join("params.safetensors"), &trainer.layout)?;
    trainer.optimizer.load(&dir.join("optimizer.state")).map_err(|e| format!("`{shown}`: {e}"))?;
    trainer.params = params;
    Ok(())
}

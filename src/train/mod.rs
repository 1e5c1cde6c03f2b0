//! Training a built-in model with a compiled pipeline: each step computes the loss and its
//! gradient on a mini-batch, passes the loss as `value` when the pipeline reads it, and
//! updates the parameters in place. What the optimizer did (the loss, the validation loss and
//! every named uniform) is returned step by step for the caller to show and log.

pub mod checkpoint;
pub mod data;
pub mod log;
pub mod models;
pub mod weights;

use std::path::Path;

use crate::ir::Layout;
use crate::ir::op::Scalar;
use crate::runtime::Optimizer;
use data::{Batches, Dataset};
use models::{Model, Workspace};

/// What a run is made of, apart from the pipeline.
#[derive(Clone, Debug)]
pub struct Setup {
    pub model: Model,
    /// Training samples (`None` for the test functions).
    pub train: Option<Dataset>,
    pub validation: Option<Dataset>,
    /// Samples per step; 0 means the whole training set.
    pub batch_size: usize,
    pub seed: u64,
    /// A description of the data, recorded in checkpoints.
    pub data: String,
}

/// One step's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The step's number, from 1.
    pub step: u64,
    /// The training loss on this step's batch, before the update.
    pub loss: f32,
    /// The validation loss after the update, when it was measured.
    pub validation: Option<f32>,
    /// Every named uniform of the pipeline after the step.
    pub uniforms: Vec<(String, f64)>,
}

/// Why training stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// The loss or a gradient was not finite at this step; nothing was updated.
    Diverged { step: u64, what: String },
    /// The optimizer refused the step.
    Optimizer(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Diverged { step, what } => write!(f, "step {step}: {what}; the parameters were not updated"),
            Stop::Optimizer(e) => write!(f, "{e}"),
        }
    }
}

/// A model, its parameters and the optimizer that updates them.
pub struct Trainer {
    pub setup: Setup,
    pub layout: Layout,
    pub params: Vec<f32>,
    pub optimizer: Optimizer,
    batches: Option<Batches>,
    grads: Vec<f32>,
    /// The model's intermediate arrays, reused from step to step.
    workspace: Workspace<f32>,
}

impl Trainer {
    /// A trainer starting from `params` (in `layout` order), with a fresh optimizer.
    pub fn new(setup: Setup, layout: Layout, params: Vec<f32>, optimizer: Optimizer) -> Trainer {
        let batches = setup.train.as_ref().map(|t| Batches::new(t.len(), setup.batch_size, setup.seed));
        let grads = vec![0.0; params.len()];
        Trainer { setup, layout, params, optimizer, batches, grads, workspace: Workspace::default() }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// One step; `validate` also measures the validation loss after it.
    pub fn step(&mut self, validate: bool) -> Result<Record, Stop> {
        let step = self.optimizer.steps() + 1;
        let batch = match (&self.setup.train, &mut self.batches) {
            (Some(train), Some(batches)) => Some(train.select(batches.rows(step - 1))),
            _ => None,
        };
        let loss = self.setup.model.loss_and_grad_in(
            &mut self.workspace,
            &self.layout,
            &self.params,
            batch.as_ref().map(Dataset::batch).as_ref(),
            Some(&mut self.grads),
        );
        if !loss.is_finite() {
            return Err(Stop::Diverged { step, what: format!("the loss is {loss}") });
        }
        if let Some(i) = self.grads.iter().position(|g| !g.is_finite()) {
            let leaf = leaf_of(&self.layout, i);
            return Err(Stop::Diverged { step, what: format!("a gradient of `{leaf}` is {}", self.grads[i]) });
        }
        let value = self.optimizer.needs_value().then_some(loss);
        self.optimizer.step(&mut self.params, &self.grads, value).map_err(|e| Stop::Optimizer(e.to_string()))?;
        let validation = if validate { self.validation_loss() } else { None };
        let uniforms = self.optimizer.uniforms().into_iter().map(|(n, v)| (n, scalar(v))).collect();
        Ok(Record { step, loss, validation, uniforms })
    }

    /// The loss on the validation set, if there is one.
    pub fn validation_loss(&self) -> Option<f32> {
        let validation = self.setup.validation.as_ref()?;
        Some(self.setup.model.loss_and_grad(&self.layout, &self.params, Some(&validation.batch()), None))
    }

}

/// The name of the leaf holding element `i` of the flat parameters.
fn leaf_of(layout: &Layout, i: usize) -> &str {
    let mut offset = 0;
    for leaf in &layout.leaves {
        offset += leaf.len();
        if i < offset {
            return &leaf.name;
        }
    }
    "?"
}

fn scalar(v: Scalar) -> f64 {
    match v {
        // The shortest decimal that reads back as the float32, not its binary64 expansion.
        Scalar::F32(x) => x.to_string().parse().unwrap_or(f64::from(x)),
        Scalar::I32(x) => f64::from(x),
        Scalar::Bool(b) => f64::from(u8::from(b)),
    }
}

/// The learning rate a user would quote: the first learning-rate value of the pipeline
/// (`scale_by_learning_rate`'s, a constant or a schedule's current value), times every
/// `reduce_on_plateau` scale.
pub fn learning_rate(uniforms: &[(String, f64)]) -> Option<f64> {
    // A transform that is the whole pipeline names its values without a path (`lr`, `scale`).
    let lr = uniforms.iter().find(|(n, _)| n == "lr" || n.ends_with(".lr")).map(|(_, v)| v.abs())?;
    let lone_plateau = uniforms.iter().any(|(n, _)| n == "plateau_count");
    let scale: f64 = uniforms
        .iter()
        .filter(|(n, _)| n.ends_with("reduce_on_plateau.scale") || lone_plateau && n == "scale")
        .map(|(_, v)| *v)
        .product();
    Some(lr * scale)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash leaves either the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.display();
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write `{name}`: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write `{name}`: {e}")
    })
}

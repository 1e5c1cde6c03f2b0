//! Training a built-in model with a compiled pipeline: each step computes the loss and its
//! gradient on a mini-batch, passes the loss as `value` when the pipeline reads it, and
//! updates the parameters in place. What the optimizer did (the loss, the validation loss and
//! every named uniform) is returned step by step for the caller to show and log.

pub mod checkpoint;
pub mod data;
pub mod log;
pub mod models;
pub mod plot;
pub mod weights;

use crate::ir::Layout;
use crate::ir::op::Scalar;
use crate::runtime::{Optimizer, StepError};
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
    /// The fraction of the samples held out for validation.
    pub val_fraction: f64,
    /// What the pipeline gets as `value` when it reads one.
    pub value: ValueSource,
    /// Steps between evaluations; the validation loss fed as `value` changes only at them.
    pub eval_every: u64,
}

impl Setup {
    /// A checksum of the training and validation samples, so that a checkpoint is refused for
    /// other data under the same name.
    pub fn data_checksum(&self) -> u64 {
        let mut h = crate::fsio::CHECKSUM_START;
        for set in [&self.train, &self.validation].into_iter().flatten() {
            h = set.checksum_more(h);
            h = crate::fsio::checksum_more(h, b"|");
        }
        h
    }
}

/// What a pipeline that reads `value` is given at each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueSource {
    /// The training loss on the step's batch (the loss the gradient is of).
    #[default]
    Loss,
    /// The validation loss, measured every `eval_every` steps and held in between (as Keras
    /// and PyTorch users feed a plateau scheduler).
    ValLoss,
}

impl std::str::FromStr for ValueSource {
    type Err = String;
    fn from_str(s: &str) -> Result<ValueSource, String> {
        match s {
            "loss" => Ok(ValueSource::Loss),
            "val_loss" => Ok(ValueSource::ValLoss),
            _ => Err(format!("unknown value `{s}`: expected `loss` (the training loss) or `val_loss` (the validation loss)")),
        }
    }
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueSource::Loss => "loss",
            ValueSource::ValLoss => "val_loss",
        })
    }
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
    /// The fraction of validation samples classified right, when it was measured (classes).
    pub accuracy: Option<f32>,
    /// The state and hyperparameters a user can name, after the step (see [`logged`]).
    pub uniforms: Vec<(String, f64)>,
    /// The effective learning rate of each of [`Trainer::lr_columns`], after the step.
    pub lrs: Vec<Option<f64>>,
    /// What was not finite and was handed to a pipeline that checks for it, and what came of it.
    pub non_finite: Option<String>,
}

/// Why training stopped early.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// The loss or a gradient was not finite at this step, and the pipeline does not check for
    /// that; nothing was updated.
    Diverged { step: u64, what: String },
    /// The parameters are not finite after this step.
    Blown { step: u64, what: String },
    /// The optimizer refused the step.
    Optimizer(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Diverged { step, what } => write!(f, "step {step}: {what}; the parameters were not updated"),
            Stop::Blown { step, what } => write!(f, "step {step}: {what} after the update"),
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
    /// The validation loss last measured, fed as `value` with [`ValueSource::ValLoss`].
    pub held_validation: Option<f32>,
    /// Whether the pipeline tests its inputs for NaN or infinity (`apply_if_finite`,
    /// `zero_nans`, `skip_not_finite`), so that non-finite gradients are its to handle.
    handles_non_finite: bool,
    /// The learning-rate columns: a label, and where each one's value comes from.
    lr_columns: Vec<(String, LrSource)>,
    /// The evaluation weights last computed ([`Trainer::eval_weights`]).
    eval: Vec<f32>,
}

/// Where a learning-rate column's value comes from.
#[derive(Clone, Debug, PartialEq)]
enum LrSource {
    /// A named uniform of the step (`crate::ir::step_size`).
    Named(String),
    /// The step the leaves of a group took, measured: `-<dx, g> / <g, g>`, the learning rate of
    /// the SGD step that moves as far along the gradient.
    Measured(Vec<usize>),
}

impl Trainer {
    /// A trainer starting from `params` (in `layout` order), with a fresh optimizer.
    pub fn new(setup: Setup, layout: Layout, params: Vec<f32>, optimizer: Optimizer) -> Trainer {
        let batches = setup.train.as_ref().map(|t| Batches::new(t.len(), setup.batch_size, setup.seed));
        let grads = vec![0.0; params.len()];
        let handles_non_finite = optimizer
            .ir
            .graph
            .nodes
            .iter()
            .any(|n| matches!(n.node, crate::ir::Node::Op(crate::ir::Op::IsFinite | crate::ir::Op::IsNan, _)));
        let lr_columns = lr_columns(&optimizer);
        let mut trainer = Trainer {
            lr_columns,
            setup,
            layout,
            params,
            optimizer,
            batches,
            grads,
            workspace: Workspace::default(),
            held_validation: None,
            handles_non_finite,
            eval: Vec::new(),
        };
        trainer.held_validation = trainer.validation_loss();
        trainer
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// One step; `validate` also measures the validation loss after it.
    pub fn step(&mut self, validate: bool) -> Result<Record, Stop> {
        let step = self.optimizer.steps() + 1;
        let selected = match (&self.setup.train, &mut self.batches) {
            (Some(train), Some(batches)) => batches.rows(step - 1).map(|rows| train.select(rows)),
            _ => None,
        };
        let batch = selected.as_ref().or(self.setup.train.as_ref()).map(Dataset::batch);
        let loss =
            self.setup.model.loss_and_grad_in(&mut self.workspace, &self.layout, &self.params, batch.as_ref(), Some(&mut self.grads));
        let problem = if !loss.is_finite() {
            Some(format!("the loss is {loss}"))
        } else {
            self.grads
                .iter()
                .position(|g| !g.is_finite())
                .map(|i| format!("a gradient of `{}` is {}", leaf_of(&self.layout, i), self.grads[i]))
        };
        if let Some(what) = &problem
            && !self.handles_non_finite
        {
            return Err(Stop::Diverged { step, what: what.clone() });
        }
        let measured = self.lr_columns.iter().any(|(_, s)| matches!(s, LrSource::Measured(_)));
        let before = (problem.is_some() || measured).then(|| self.params.clone());
        let value = match self.setup.value {
            ValueSource::Loss => loss,
            ValueSource::ValLoss => self.held_validation.unwrap_or(f32::NAN),
        };
        let value = self.optimizer.needs_value().then_some(value);
        self.optimizer.step(&mut self.params, &self.grads, value).map_err(|e| Stop::Optimizer(e.to_string()))?;
        if let Some(i) = self.params.iter().position(|p| !p.is_finite()) {
            let what = format!("a parameter of `{}` is {}", leaf_of(&self.layout, i), self.params[i]);
            return Err(Stop::Blown { step, what });
        }
        let lrs = self.lrs(before.as_deref());
        let non_finite = problem.zip(before).map(|(what, before)| {
            let kept = before.iter().zip(&self.params).all(|(a, b)| a.to_bits() == b.to_bits());
            let outcome = if kept { "the pipeline left the parameters unchanged" } else { "the pipeline updated the parameters with finite values" };
            format!("{what}; {outcome}")
        });
        let (validation, accuracy) = if validate { self.evaluate().map_err(|e| Stop::Optimizer(e.to_string()))? } else { (None, None) };
        if validation.is_some() && step.is_multiple_of(self.setup.eval_every.max(1)) {
            self.held_validation = validation;
        }
        let uniforms = logged(&self.optimizer);
        Ok(Record { step, loss, validation, accuracy, uniforms, lrs, non_finite })
    }

    /// The names of the learning-rate columns: `lr` when the whole model has one, else
    /// `lr[LABEL]` for each group that differs.
    pub fn lr_columns(&self) -> Vec<String> {
        self.lr_columns.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The value of each learning-rate column after a step that started from `before`.
    fn lrs(&self, before: Option<&[f32]>) -> Vec<Option<f64>> {
        let uniforms = self.optimizer.uniforms();
        let offsets = crate::interp::offsets(&self.layout);
        self.lr_columns
            .iter()
            .map(|(_, source)| match source {
                LrSource::Named(name) => uniforms.iter().find(|(n, _)| n == name).map(|(_, v)| scalar(*v)),
                LrSource::Measured(leaves) => {
                    let before = before?;
                    let (mut along, mut norm) = (0.0f64, 0.0f64);
                    for &l in leaves {
                        let range = offsets[l]..offsets[l] + self.layout.leaves[l].len();
                        for i in range {
                            let g = f64::from(self.grads[i]);
                            along += (f64::from(self.params[i]) - f64::from(before[i])) * g;
                            norm += g * g;
                        }
                    }
                    (norm > 0.0).then(|| log::widen((-along / norm) as f32))
                }
            })
            .collect()
    }

    /// The loss on the validation set, if there is one, with the evaluation weights.
    pub fn validation_loss(&mut self) -> Option<f32> {
        self.evaluate().ok()?.0
    }

    /// The validation loss and, for classes, the accuracy, with the evaluation weights.
    fn evaluate(&mut self) -> Result<(Option<f32>, Option<f32>), StepError> {
        if self.setup.validation.is_none() {
            return Ok((None, None));
        }
        self.compute_eval_weights()?;
        let weights = self.last_eval_weights();
        let Some(validation) = self.setup.validation.as_ref() else { return Ok((None, None)) };
        let batch = validation.batch();
        let loss = self.setup.model.loss_and_grad(&self.layout, weights, Some(&batch), None);
        Ok((Some(loss), self.setup.model.accuracy(&self.layout, weights, &batch)))
    }

    /// The weights to evaluate the model with: the pipeline's evaluation weights (its
    /// transforms' `eval_params`, such as Schedule-Free's average or Lookahead's slow
    /// weights), or the parameters when it defines none.
    pub fn eval_weights(&mut self) -> Result<&[f32], StepError> {
        self.compute_eval_weights()?;
        Ok(self.last_eval_weights())
    }

    /// The loss on the whole training set (or the test function) at the evaluation weights,
    /// for pipelines that define them.
    pub fn eval_loss(&mut self) -> Result<Option<f32>, StepError> {
        if !self.optimizer.has_eval_params() {
            return Ok(None);
        }
        self.compute_eval_weights()?;
        let batch = self.setup.train.as_ref().map(Dataset::batch);
        Ok(Some(self.setup.model.loss_and_grad(&self.layout, &self.eval, batch.as_ref(), None)))
    }

    /// Computes the evaluation weights into `self.eval`, when the pipeline defines them.
    fn compute_eval_weights(&mut self) -> Result<(), StepError> {
        if self.optimizer.has_eval_params() {
            self.eval.resize(self.params.len(), 0.0);
            self.optimizer.eval_params(&self.params, &mut self.eval)?;
        }
        Ok(())
    }

    /// What [`Trainer::compute_eval_weights`] made, or the parameters.
    fn last_eval_weights(&self) -> &[f32] {
        if self.optimizer.has_eval_params() { &self.eval } else { &self.params }
    }
}

/// The learning-rate columns of `optimizer`'s groups (see [`lr_groups`]).
fn lr_columns(optimizer: &Optimizer) -> Vec<(String, LrSource)> {
    use crate::ir::step_size::StepSize;
    lr_groups(optimizer)
        .into_iter()
        .map(|g| match g.size {
            StepSize::Named(name) => (g.name, LrSource::Named(name)),
            StepSize::Measured => (g.name, LrSource::Measured(g.leaves)),
        })
        .collect()
}

/// Leaves that share a learning rate: a partition arm, a mask's inside or outside, or the
/// whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct LrGroup {
    /// The labels of its leaf groups ([`crate::ir::Groups::labels`]), joined (`*.bias|*norm*`,
    /// `_`).
    pub label: String,
    /// The name its learning rate is known by: `lr` when the whole model has one, else
    /// `lr[LABEL]` (the named uniform's name, for a named one).
    pub name: String,
    /// Its leaves, in layout order.
    pub leaves: Vec<usize>,
    /// How its learning rate is known: a named uniform, or measured from the step taken.
    pub size: crate::ir::step_size::StepSize,
}

/// `optimizer`'s leaf groups gathered by learning rate: groups with the same named learning
/// rate share one; each group measured from its step is its own.
pub fn lr_groups(optimizer: &Optimizer) -> Vec<LrGroup> {
    use crate::ir::step_size::StepSize;
    let groups = &optimizer.ir.groups;
    let mut out: Vec<(Vec<String>, Vec<usize>, StepSize)> = Vec::new();
    for (g, size) in optimizer.step_sizes().iter().enumerate() {
        let label = groups.labels.get(g).cloned().unwrap_or_else(|| format!("group {g}"));
        let shared = match size {
            StepSize::Named(_) => out.iter_mut().find(|(_, _, s)| s == size),
            StepSize::Measured => None,
        };
        match shared {
            Some((labels, leaves, _)) => {
                if !labels.contains(&label) {
                    labels.push(label);
                }
                leaves.extend(&groups.leaves[g]);
                leaves.sort_unstable();
            }
            None => out.push((vec![label], groups.leaves[g].clone(), size.clone())),
        }
    }
    let alone = out.len() == 1;
    out.into_iter()
        .map(|(labels, leaves, size)| {
            // Groups sharing a rate are listed as the rate's name lists them; a rate that
            // every leaf shares is the whole model's, whatever cut its leaves into groups.
            // (A named rate's name says which groups it holds, by shape where that tells them apart.)
            let named = match &size {
                StepSize::Named(name) => crate::ir::step_size::lr_label(name),
                StepSize::Measured => None,
            };
            let label = match named {
                Some(label) => label.to_string(),
                None if alone && labels.len() > 1 => "*".to_string(),
                None => labels.join("; "),
            };
            let name = match &size {
                StepSize::Named(name) => name.clone(),
                StepSize::Measured => crate::ir::step_size::lr_name(alone, &label),
            };
            LrGroup { label, name, leaves, size }
        })
        .collect()
}

/// The uniforms a run logs: the pipeline's uniform state, its injected hyperparameters and
/// the values of its schedules, under the names `optc check` prints (see [`logged_names`]).
pub fn logged(optimizer: &Optimizer) -> Vec<(String, f64)> {
    let names = logged_names(optimizer);
    let mut out: Vec<(String, f64)> = Vec::with_capacity(names.len());
    for (name, v) in optimizer.uniforms() {
        if names.contains(&name) && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, scalar(v)));
        }
    }
    out
}

/// The names [`logged`] gives values for after each step, known before the first: every name
/// of each uniform slot (merged slots have several), then [`value_names`].
pub fn logged_names(optimizer: &Optimizer) -> Vec<String> {
    let state = optimizer.ir.slots.iter().filter(|s| s.level == crate::ir::Level::Uniform).flat_map(|s| std::iter::once(&s.name).chain(&s.aliases));
    let mut out: Vec<String> = Vec::new();
    for name in state.chain(value_names(optimizer)) {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// The injected hyperparameters and schedule values of `optimizer`: its named uniforms other
/// than the learning rates, which have columns of their own.
pub fn value_names(optimizer: &Optimizer) -> impl Iterator<Item = &String> {
    use crate::ir::step_size::StepSize;
    let rates: Vec<&String> = optimizer.step_sizes().iter().filter_map(|s| if let StepSize::Named(n) = s { Some(n) } else { None }).collect();
    optimizer.ir.named.iter().map(|n| &n.name).filter(move |n| !rates.contains(n))
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
        Scalar::F32(x) => log::widen(x),
        Scalar::I32(x) => f64::from(x),
        Scalar::Bool(b) => f64::from(u8::from(b)),
    }
}

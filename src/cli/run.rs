//! `optc run`: trains a built-in model with a pipeline and shows what the optimizer does: a
//! progress bar with loss, validation loss and learning rate, a line whenever the plateau scale
//! (or another piecewise-constant rate) changes, a summary, and optionally a log, a plot,
//! checkpoints and saved weights.
//!
//! Nothing is lost to a mistake or an interruption: every output path is checked before the
//! first step; Ctrl-C or SIGTERM stops at the end of a step and still writes the log, a final
//! checkpoint and the plot; a resumed run continues its log; a divergence keeps the last good
//! checkpoint and draws the plot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::interrupt;
use crate::check::Expect;
use crate::diagnostic;
use crate::ir::Layout;
use crate::runtime::{Backend, Optimizer};
use crate::train::data::{Dataset, Synthetic};
use crate::train::log::{Log, widen};
use crate::train::models::{Activation, Loss, Model};
use crate::train::plot::{Figure, Point, plot};
use crate::train::{self, Record, Setup, Stop, Trainer, ValueSource, checkpoint, weights};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `.opt` file whose pipeline trains the model.
    pub file: PathBuf,
    /// mlp, linear, logistic, rosenbrock, quadratic or rastrigin.
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Hidden layer widths of the MLP, comma-separated.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    pub hidden: Vec<usize>,
    /// relu, tanh or gelu.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// mse or xent (softmax cross-entropy); by default xent for classes, mse for values.
    #[arg(long)]
    pub loss: Option<String>,
    /// Dimensions of a test function.
    #[arg(long, default_value_t = 2)]
    pub dim: usize,
    /// Condition number of the quadratic.
    #[arg(long, default_value_t = 100.0)]
    pub condition: f64,
    /// regression (the article's 2 → 3 set), moons, spirals, blobs, or a CSV file.
    #[arg(long, default_value = "regression")]
    pub data: String,
    /// The target column(s) of a CSV file; every other column is an input.
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Samples of a synthetic set.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Fraction of the samples held out for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Samples per step; 0, the default, takes the whole training set every step.
    #[arg(long, default_value_t = 0)]
    pub batch_size: usize,
    /// Steps to train for (in all, counting those of a resumed checkpoint).
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Seeds the data, the split, the batches and the initial weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Measure the validation loss (and accuracy) every N steps.
    #[arg(long, default_value_t = 10)]
    pub eval_every: u64,
    /// What a pipeline that reads `value` is given: `loss` (the step's training loss) or
    /// `val_loss` (the validation loss of the last evaluation, held between evaluations).
    #[arg(long, value_name = "WHAT", default_value = "loss")]
    pub value: ValueSource,
    /// Write a row per step (CSV, or JSON lines for `.jsonl`); a resumed run appends to it.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Write a log row every N steps (and at the last step).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub log_every: u64,
    /// Draw loss and learning rate against step (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Smooth the plotted training loss (TensorBoard's weight, in [0, 1); by default 0.6 with
    /// mini-batches, 0 with full batches).
    #[arg(long, value_name = "W")]
    pub smooth: Option<f64>,
    /// Save checkpoints in DIR (every `--every` steps, at the end, and when interrupted).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 500)]
    pub every: u64,
    /// Continue from the newest checkpoint in DIR.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Start from the weights in a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Save the final weights to a safetensors file: the evaluation weights when the pipeline
    /// defines them (`schedule_free`, `lookahead`, `ema_params`), else the parameters.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// With `--save`, save the trained parameters even when the pipeline defines evaluation
    /// weights.
    #[arg(long, requires = "save")]
    pub save_trained: bool,
    /// No progress bar or change messages; only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// What runs the optimizer's steps: `jit` (machine code) or `interp` (the reference).
    #[arg(long, value_name = "BACKEND", default_value = "jit")]
    pub backend: Backend,
    /// Threads a step is split over (by default every core; small models use one anyway).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

pub fn run(args: &Args, stdlib_dir: Option<&Path>) -> ExitCode {
    match train_and_report(args, stdlib_dir) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        Err(message) => super::exit_code(Err(message)),
    }
}

/// Why Muon's defaults do not fit `optc run`'s MLP, and what does.
const MUON_ON_OUT_IN: &str = "warning: the MLP keeps each layer's weight as [out, in] (PyTorch's order), while Muon's \
default dimension numbers read axis 0 as the input (Optax's and Flax's [in, out]), so its shape scale \
sqrt(max(1, out / in)) is the transposed matrix's\n  \
= help: give it the MLP's order: muon(..., muon_weight_dimension_numbers=[(ndim == 2, MuonDimensionNumbers(1, 0))])";

/// Whether the pipeline orthogonalizes a leaf with Muon's default dimension numbers.
fn muon_with_default_dimensions(program: &crate::check::program::Program) -> bool {
    use crate::check::program::{Tx, Value};
    let mut found = false;
    if let Some(tx) = &program.pipeline {
        crate::ir::groups::visit(tx, &mut |t| {
            if let Tx::Instance { def, args, .. } = t {
                let d = program.def(*def);
                let at = d.params.iter().position(|p| p.name == "weight_dimension_numbers");
                found |= d.name == "scale_by_muon" && at.and_then(|i| args.get(i)).is_some_and(|v| *v == Value::None);
            }
        });
    }
    found
}

/// Trains and reports; returns the signal that interrupted the run, if one did.
fn train_and_report(args: &Args, stdlib_dir: Option<&Path>) -> Result<Option<i32>, String> {
    check_flags(args)?;
    check_outputs(args)?;
    let (name, text) = super::read_input(&args.file)?;
    if args.backend == Backend::Jit {
        crate::jit::prepare();
    }
    let super::Loaded { name, sources, checked, .. } = super::check_text(name, text, stdlib_dir, Expect::Pipeline)?;
    if checked.program.pipeline.is_none() {
        return Err(format!("`{name}` has no pipeline to train with (its last line should be one)"));
    }
    let setup = setup(args)?;
    let layout = Layout::new(setup.model.leaves())?;
    let params = match &args.init {
        Some(path) => weights::load(path, &layout)?,
        None => setup.model.init(&layout, args.seed),
    };
    let mut optimizer = Optimizer::with_backend(&checked.program, &layout, &params, args.backend).map_err(|diagnostics| {
        diagnostic::emit_to_stderr(&diagnostics, &sources);
        format!("`{name}` does not fit the model's parameters ({})", layout_summary(&layout))
    })?;
    diagnostic::emit_to_stderr(optimizer.warnings(), &sources);
    if matches!(setup.model, Model::Mlp { .. }) && muon_with_default_dimensions(&checked.program) {
        eprintln!("{}", MUON_ON_OUT_IN);
    }
    if let Some(threads) = args.threads {
        optimizer.set_threads(threads.into());
    }
    if args.value == ValueSource::ValLoss && optimizer.needs_value() && setup.validation.is_none() {
        return Err("`--value val_loss` needs a validation set (`--val-fraction` above 0, and data)".into());
    }
    let mut trainer = Trainer::new(setup, layout, params, optimizer);

    // Resuming reads; nothing is written before the step count is known to be right.
    if let Some(dir) = &args.resume {
        let (latest, passed) = checkpoint::latest(dir)?;
        for line in passed {
            eprintln!("warning: {line}");
        }
        if args.steps <= latest.step {
            return Err(format!(
                "`{}` is at step {}, and `--steps {}` asks for no more (it counts every step of the run, those of the checkpoint too); nothing was changed",
                latest.dir.display(),
                latest.step,
                args.steps
            ));
        }
        checkpoint::load(&latest, &mut trainer)?;
        eprintln!("resuming from `{}` at step {}", latest.dir.display(), trainer.steps());
    }
    let checkpoints = args.checkpoint.clone().or_else(|| args.resume.clone());
    if let Some(dir) = &checkpoints {
        checkpoint::prepare(dir, args.resume.as_deref())?;
    }
    let columns = columns(&trainer);
    // A resumed log's rows are the run so far: the plot and the summary show them too.
    let mut earlier = Vec::new();
    let mut log = match &args.log {
        None => None,
        Some(path) if args.resume.is_some() => {
            let resumed = Log::resume(path, trainer.steps(), columns.clone())?;
            if let Some(w) = resumed.warning {
                eprintln!("warning: {w}");
            }
            earlier = resumed.rows;
            Some(resumed.log)
        }
        Some(path) => Some(Log::create(path, columns.clone())?),
    };
    interrupt::listen()?;

    let description = format!("{} on {}", trainer.setup.model.describe(), trainer.setup.data);
    let lr_names = trainer.lr_columns();
    let bar = progress_bar(args, trainer.steps());
    let mut run = Progress::new(trainer.held_validation, &trainer.optimizer);
    run.replay(&earlier, &columns);
    let start = Instant::now();
    let first_step = trainer.steps();
    let mut last_saved: Option<PathBuf> = None;
    let mut stop: Option<Stop> = None;

    let mut unlogged: Option<Record> = None;
    while trainer.steps() < args.steps && interrupt::requested().is_none() {
        let step = trainer.steps() + 1;
        let record = match trainer.step(step.is_multiple_of(args.eval_every) || step == args.steps) {
            Ok(r) => r,
            Err(s) => {
                stop = Some(s);
                break;
            }
        };
        run.add(&record);
        for message in run.watch.changes(&record, &lr_names) {
            if !args.quiet {
                bar.suspend(|| eprintln!("{message}"));
            }
        }
        if let Some(what) = &record.non_finite
            && !args.quiet
        {
            bar.suspend(|| eprintln!("step {step}: {what}"));
        }
        let lr = record.lrs.first().copied().flatten();
        bar.set_position(step);
        bar.set_message(status(record.loss, run.validation, lr));
        if bar.is_hidden() && !args.quiet && step.is_multiple_of((args.steps / 10).max(1)) {
            eprintln!("step {step}/{}: {}", args.steps, status(record.loss, run.validation, lr));
        }
        unlogged = Some(record);
        if let Some(log) = &mut log
            && let Some(record) = unlogged.take_if(|_| step.is_multiple_of(args.log_every))
        {
            log.write(&row(&record, &columns))?;
        }
        if let Some(dir) = &checkpoints
            && step.is_multiple_of(args.every)
        {
            if let Some(log) = &mut log {
                log.flush()?;
            }
            last_saved = Some(checkpoint::save(dir, &trainer)?);
        }
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();

    // However the run ended, what it did is written down: the last step's row, a final
    // checkpoint (unless the parameters are not finite), the plot.
    if let Some(log) = &mut log {
        if let Some(record) = unlogged {
            log.write(&row(&record, &columns))?;
        }
        log.flush()?;
    }
    if let Some(dir) = &checkpoints
        && trainer.steps() > first_step
        && !matches!(stop, Some(Stop::Blown { .. } | Stop::Optimizer(_)))
        && last_saved.as_deref() != Some(checkpoint::folder(dir, trainer.steps()).as_path())
    {
        last_saved = Some(checkpoint::save(dir, &trainer)?);
    }
    if let Some(path) = &args.plot {
        let smoothing = args.smooth.unwrap_or(if trainer.setup.batch_size > 0 { 0.6 } else { 0.0 });
        let figure = Figure::Training { points: &run.points, groups: &lr_names, smoothing };
        plot(path, &format!("{name}: {description}"), figure)?;
    }
    let saved = match &last_saved {
        Some(dir) => format!("the last checkpoint is `{}`", dir.display()),
        None => "no checkpoint was saved".to_string(),
    };
    if let Some(stop) = stop {
        return Err(format!("training stopped at {stop}; {saved}"));
    }
    if let Some(signal) = interrupt::requested() {
        let resume = match &last_saved {
            Some(dir) => format!("checkpoint `{}`; resume with `--resume {}`", dir.display(), checkpoints.as_deref().unwrap_or(dir).display()),
            None => "no checkpoint (`--checkpoint DIR` makes one to resume from)".to_string(),
        };
        eprintln!("interrupted by {} at step {}; {resume}", interrupt::name(signal), trainer.steps());
        if args.save.is_some() {
            eprintln!("the weights were not saved to `--save`, since the run did not finish");
        }
        report(args, &name, &description, &mut trainer, &run, first_step, elapsed, &last_saved, &lr_names);
        return Ok(Some(signal));
    }
    if let Some(path) = &args.save {
        let layout = trainer.layout.clone();
        let saved = if args.save_trained { &trainer.params } else { trainer.eval_weights().map_err(|e| e.to_string())? };
        weights::save(path, &layout, saved, Default::default())?;
    }
    report(args, &name, &description, &mut trainer, &run, first_step, elapsed, &last_saved, &lr_names);
    Ok(None)
}

/// Flags that make no sense, refused before anything is read.
fn check_flags(args: &Args) -> Result<(), String> {
    if args.every == 0 && (args.checkpoint.is_some() || args.resume.is_some()) {
        return Err("`--every` must be at least 1".into());
    }
    if args.eval_every == 0 {
        return Err("`--eval-every` must be at least 1".into());
    }
    if args.log_every == 0 {
        return Err("`--log-every` must be at least 1".into());
    }
    if let Some(w) = args.smooth
        && !(0.0..1.0).contains(&w)
    {
        return Err(format!("`--smooth {w}` must be in [0, 1)"));
    }
    Ok(())
}

/// Every file the run will write, checked before it starts, so that a typo costs nothing.
fn check_outputs(args: &Args) -> Result<(), String> {
    if let Some(path) = &args.plot {
        crate::train::plot::check_path(path)?;
    }
    for path in [&args.save, &args.log].into_iter().flatten() {
        crate::fsio::check(path).map_err(|e| e.to_string())?;
    }
    if let Some(dir) = &args.checkpoint
        && let Ok(meta) = std::fs::metadata(dir)
        && !meta.is_dir()
    {
        return Err(format!("`{}` is a file, not a checkpoint folder", dir.display()));
    }
    Ok(())
}

/// The columns of the log.
fn columns(trainer: &Trainer) -> Vec<String> {
    let mut columns: Vec<String> = ["step", "wall_time", "loss", "val_loss"].iter().map(|s| s.to_string()).collect();
    if trainer.setup.validation.as_ref().is_some_and(Dataset::is_classification) {
        columns.push("val_accuracy".into());
    }
    columns.extend(trainer.lr_columns());
    columns.extend(train::logged_names(&trainer.optimizer));
    columns
}

/// A record as a row of `columns`.
fn row(record: &Record, columns: &[String]) -> Vec<Option<f64>> {
    let wall_time = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
    let mut lrs = record.lrs.iter();
    columns
        .iter()
        .map(|c| match c.as_str() {
            "step" => Some(record.step as f64),
            "wall_time" => Some(wall_time),
            "loss" => Some(widen(record.loss)),
            "val_loss" => record.validation.map(widen),
            "val_accuracy" => record.accuracy.map(widen),
            lr if lr == "lr" || lr.starts_with("lr[") => lrs.next().copied().flatten(),
            name => record.uniforms.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
        })
        .collect()
}

/// What the run has seen so far, for the plot, the messages and the summary.
struct Progress {
    points: Vec<Point>,
    watch: Watch,
    /// The validation loss last measured.
    validation: Option<f32>,
    best_validation: Option<(f32, u64)>,
    accuracy: Option<f32>,
}

impl Progress {
    fn new(validation: Option<f32>, optimizer: &crate::runtime::Optimizer) -> Progress {
        let watch = Watch { watched: watched(optimizer), last: Vec::new() };
        Progress { points: Vec::new(), watch, validation, best_validation: None, accuracy: None }
    }

    fn add(&mut self, record: &Record) {
        if let Some(v) = record.validation {
            self.validation = Some(v);
            if self.best_validation.is_none_or(|(best, _)| v < best) {
                self.best_validation = Some((v, record.step));
            }
        }
        if record.accuracy.is_some() {
            self.accuracy = record.accuracy;
        }
        self.points.push(Point { step: record.step, loss: record.loss, validation: record.validation, lrs: record.lrs.clone() });
    }

    /// Takes in the rows of a resumed log (of `columns`), as if their steps had been run now.
    fn replay(&mut self, rows: &[Vec<Option<f64>>], columns: &[String]) {
        let at = |name: &str| columns.iter().position(|c| c == name);
        let lr_columns: Vec<usize> = (0..columns.len()).filter(|&i| columns[i] == "lr" || columns[i].starts_with("lr[")).collect();
        let (step, loss, validation, accuracy) = (at("step"), at("loss"), at("val_loss"), at("val_accuracy"));
        for row in rows {
            let get = |i: Option<usize>| i.and_then(|i| row.get(i).copied().flatten());
            let (Some(step), Some(loss)) = (get(step), get(loss)) else { continue };
            let record = Record {
                step: step as u64,
                loss: loss as f32,
                validation: get(validation).map(|v| v as f32),
                accuracy: get(accuracy).map(|v| v as f32),
                uniforms: Vec::new(),
                lrs: lr_columns.iter().map(|&i| get(Some(i))).collect(),
                non_finite: None,
            };
            self.add(&record);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    name: &str,
    description: &str,
    trainer: &mut Trainer,
    run: &Progress,
    first_step: u64,
    elapsed: f64,
    last_saved: &Option<PathBuf>,
    lr_names: &[String],
) {
    let steps = trainer.steps() - first_step;
    outln!("{name}: trained {description}");
    outln!("  steps          {} ({steps} this run) in {elapsed:.2} s, {:.0} steps/s", trainer.steps(), steps as f64 / elapsed.max(1e-9));
    if let Some(last) = run.points.last() {
        // One mini-batch's loss is noise: the mean over the last epoch's batches (at most 100).
        let batches = trainer.setup.batch_size;
        let per_epoch = trainer.setup.train.as_ref().map_or(1, |t| if batches == 0 { 1 } else { t.len().div_ceil(batches) });
        let k = per_epoch.clamp(1, 100).min(run.points.len());
        if k > 1 {
            let recent = &run.points[run.points.len() - k..];
            let mean = recent.iter().map(|p| f64::from(p.loss)).sum::<f64>() / k as f64;
            outln!("  training loss  {mean:.6} (mean of the last {k} batches)");
        } else {
            outln!("  training loss  {:.6}", last.loss);
        }
    }
    let evaluated = trainer.optimizer.has_eval_params();
    if evaluated {
        outln!("  evaluated on   the pipeline's evaluation weights (`eval_params`), not the trained parameters");
        if trainer.setup.validation.is_none()
            && let Ok(Some(loss)) = trainer.eval_loss()
        {
            outln!("  eval loss      {loss:.6} (training loss at the evaluation weights)");
        }
    }
    if let Some(v) = run.validation {
        outln!("  validation     {v:.6}");
    }
    if let Some((best, step)) = run.best_validation {
        outln!("  best val loss  {best:.6} (step {step})");
    }
    if let Some(accuracy) = run.accuracy {
        outln!("  accuracy       {:.1}% (validation)", 100.0 * accuracy);
    }
    if let Some(last) = run.points.last() {
        let rates: Vec<String> = lr_names
            .iter()
            .zip(&last.lrs)
            .filter_map(|(n, v)| v.map(|v| if lr_names.len() == 1 { format!("{v:.3e}") } else { format!("{n} {v:.3e}") }))
            .collect();
        if !rates.is_empty() {
            outln!("  learning rate  {}", rates.join(", "));
        }
    }
    for (what, path) in [("log", &args.log), ("plot", &args.plot)] {
        if let Some(path) = path {
            outln!("  {what:<14} {}", path.display());
        }
    }
    // An interrupted run does not write `--save` (it said so above).
    if let Some(path) = args.save.as_ref().filter(|_| interrupt::requested().is_none()) {
        let which = match (evaluated, args.save_trained) {
            (true, false) => " (the evaluation weights; `--save-trained` saves the trained parameters)",
            (true, true) => " (the trained parameters)",
            (false, _) => "",
        };
        outln!("  weights        {}{which}", path.display());
    }
    if let Some(dir) = last_saved {
        outln!("  checkpoint     {}", dir.display());
    }
}

/// The model and data the flags describe.
fn setup(args: &Args) -> Result<Setup, String> {
    let activation = match args.activation.as_str() {
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "gelu" => Activation::Gelu,
        other => return Err(format!("`--activation {other}`: expected relu, tanh or gelu")),
    };
    let loss = match args.loss.as_deref() {
        None => None,
        Some("mse") => Some(Loss::Mse),
        Some("xent") => Some(Loss::CrossEntropy),
        Some(other) => return Err(format!("`--loss {other}`: expected mse or xent")),
    };
    let test_function = match args.model.as_str() {
        "mlp" | "linear" | "logistic" => None,
        "rosenbrock" => Some(Model::Rosenbrock { dim: args.dim }),
        "quadratic" => Some(Model::Quadratic { dim: args.dim, condition: args.condition }),
        "rastrigin" => Some(Model::Rastrigin { dim: args.dim }),
        other => {
            return Err(format!(
                "`--model {other}`: expected mlp, linear, logistic, rosenbrock, quadratic or rastrigin"
            ));
        }
    };
    if let Some(model) = test_function {
        if args.dim == 0 {
            return Err("`--dim` must be at least 1".into());
        }
        let data = model.describe();
        let (batch_size, seed, val_fraction, value, eval_every) = (0, args.seed, 0.0, args.value, args.eval_every);
        return Ok(Setup { model, train: None, validation: None, batch_size, seed, data, val_fraction, value, eval_every });
    }

    let classes = loss == Some(Loss::CrossEntropy) || args.model == "logistic";
    let (dataset, data) = match Synthetic::from_name(&args.data) {
        Some(kind) => {
            if args.samples < 2 {
                return Err("`--samples` must be at least 2".into());
            }
            (Dataset::synthetic(kind, args.samples, args.seed), format!("{} ({} samples)", args.data, args.samples))
        }
        None if args.data.ends_with(".csv") || Path::new(&args.data).exists() => {
            let d = Dataset::from_csv(Path::new(&args.data), &args.target, classes)?;
            let shown = format!("{} (target {}, {} rows)", args.data, args.target.join(","), d.len());
            (d, shown)
        }
        None => {
            return Err(format!(
                "`--data {}`: expected {} or a CSV file",
                args.data,
                Synthetic::NAMES.join(", ")
            ));
        }
    };
    if !(0.0..1.0).contains(&args.val_fraction) {
        return Err(format!("`--val-fraction {}` must be in [0, 1)", args.val_fraction));
    }
    // Logistic regression is a classifier: on numbers to predict it would quietly be linear.
    if args.model == "logistic" && (!dataset.is_classification() || loss == Some(Loss::Mse)) {
        let why = if loss == Some(Loss::Mse) { "`--loss mse`".to_string() } else { format!("`--data {}`, which has numbers to predict, not classes", args.data) };
        return Err(format!("`--model logistic` classifies, with cross-entropy: it cannot train on {why}; use `--model linear`"));
    }
    let loss = loss.unwrap_or(if dataset.is_classification() { Loss::CrossEntropy } else { Loss::Mse });
    let hidden: &[usize] = if args.model == "mlp" { &args.hidden } else { &[] };
    if hidden.contains(&0) {
        return Err("`--hidden` widths must be at least 1".into());
    }
    let sizes: Vec<usize> =
        std::iter::once(dataset.inputs()).chain(hidden.iter().copied()).chain(std::iter::once(dataset.outputs())).collect();
    let model = Model::Mlp { sizes, activation, loss };
    let (train, validation) = dataset.split(args.val_fraction, args.seed);
    let (batch_size, seed, val_fraction, value, eval_every) = (args.batch_size, args.seed, args.val_fraction, args.value, args.eval_every);
    Ok(Setup { model, train: Some(train), validation, batch_size, seed, data, val_fraction, value, eval_every })
}

fn layout_summary(layout: &Layout) -> String {
    let leaves: Vec<String> = layout.leaves.iter().map(|l| format!("{}{:?}", l.name, l.shape)).collect();
    leaves.join(", ")
}

fn status(loss: f32, validation: Option<f32>, lr: Option<f64>) -> String {
    let mut s = format!("loss {loss:.5}");
    if let Some(v) = validation {
        s.push_str(&format!("  val {v:.5}"));
    }
    if let Some(lr) = lr {
        s.push_str(&format!("  lr {lr:.3e}"));
    }
    s
}

fn progress_bar(args: &Args, position: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(args.steps), ProgressDrawTarget::stderr());
    if args.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>6}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_position(position);
    bar
}

/// Reports the uniforms that move in steps (a plateau scale, a piecewise-constant learning
/// rate or other schedule, an injected hyperparameter) when they change after holding still;
/// values that move every step (a decaying schedule) would only be noise.
struct Watch {
    /// The names of the uniforms watched, besides the learning rates.
    watched: Vec<String>,
    last: Vec<(String, f64, bool)>,
}

impl Watch {
    fn changes(&mut self, record: &Record, lr_names: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let rates = lr_names.iter().zip(&record.lrs).filter_map(|(n, v)| v.map(|v| (n.clone(), v)));
        let watched: Vec<(String, f64)> = record.uniforms.iter().filter(|(n, _)| self.watched.contains(n)).cloned().chain(rates).collect();
        for (name, value) in &watched {
            match self.last.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, old, held)) => {
                    if *value != *old {
                        if *held {
                            out.push(format!("step {}: {name} {} → {}", record.step, short(*old), short(*value)));
                        }
                        *old = *value;
                        *held = false;
                    } else {
                        *held = true;
                    }
                }
                None => self.last.push((name.clone(), *value, false)),
            }
        }
        out
    }
}

/// What [`Watch`] reports: scales held in the state (`reduce_on_plateau.scale`), injected
/// hyperparameters and schedule values.
fn watched(optimizer: &crate::runtime::Optimizer) -> Vec<String> {
    let scales = train::logged_names(optimizer).into_iter().filter(|n| n.rsplit('.').next() == Some("scale"));
    scales.chain(train::value_names(optimizer).cloned()).collect()
}

fn short(v: f64) -> String {
    let s = format!("{v}");
    if s.len() <= 10 { s } else { format!("{v:.4e}") }
}

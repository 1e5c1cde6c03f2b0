//! `optc run`: trains a built-in model with a pipeline and shows what the optimizer does: a
//! progress bar with loss, validation loss and learning rate, a line whenever the plateau scale
//! (or another piecewise-constant rate) changes, a summary, and optionally a log, a plot,
//! checkpoints and saved weights.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::check::Expect;
use crate::diagnostic;
use crate::ir::Layout;
use crate::runtime::{Backend, Optimizer};
use crate::train::data::{Dataset, Synthetic};
use crate::train::log::{Figure, Log, Point, check_plot_path, plot};
use crate::train::models::{Activation, Loss, Model};
use crate::train::{self, Record, Setup, Stop, Trainer, checkpoint, weights};

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
    /// Measure the validation loss every N steps.
    #[arg(long, default_value_t = 10)]
    pub eval_every: u64,
    /// Write one row per step (CSV, or JSON lines for `.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Draw loss and learning rate against step (`.svg`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Save checkpoints in DIR (every `--every` steps, and at the end).
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
    /// Save the final weights to a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
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
    super::exit_code(train_and_report(args, stdlib_dir))
}

fn train_and_report(args: &Args, stdlib_dir: Option<&Path>) -> Result<(), String> {
    let (name, text) = super::read_input(&args.file)?;
    if args.backend == Backend::Jit {
        crate::jit::prepare();
    }
    let super::Loaded { name, sources, checked, .. } = super::check_text(name, text, stdlib_dir, Expect::Pipeline)?;
    if checked.program.pipeline.is_none() {
        return Err(format!("`{name}` has no pipeline to train with (its last line should be one)"));
    }

    if let Some(path) = &args.plot {
        check_plot_path(path)?;
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
    if let Some(threads) = args.threads {
        optimizer.set_threads(threads.into());
    }
    let mut trainer = Trainer::new(setup, layout, params, optimizer);
    if let Some(dir) = &args.resume {
        let latest = checkpoint::latest(dir)?;
        checkpoint::load(&latest, &mut trainer)?;
        eprintln!("resuming from `{}` at step {}", latest.display(), trainer.steps());
    }
    let checkpoints = args.checkpoint.clone().or_else(|| args.resume.clone());
    if args.every == 0 && checkpoints.is_some() {
        return Err("`--every` must be at least 1".into());
    }
    if args.eval_every == 0 {
        return Err("`--eval-every` must be at least 1".into());
    }

    let description = format!("{} on {}", trainer.setup.model.describe(), trainer.setup.data);
    let mut log = args.log.as_deref().map(Log::create).transpose()?;
    let bar = progress_bar(args, trainer.steps());
    let mut watch = Watch::default();
    let mut points: Vec<Point> = Vec::new();
    let mut best = (f32::INFINITY, 0u64);
    let mut last_saved: Option<PathBuf> = None;
    let mut last_validation = trainer.validation_loss();
    let start = Instant::now();
    let first_step = trainer.steps();
    let mut stop: Option<Stop> = None;

    while trainer.steps() < args.steps {
        let validate = (trainer.steps() + 1).is_multiple_of(args.eval_every) || trainer.steps() + 1 == args.steps;
        let record = match trainer.step(validate) {
            Ok(r) => r,
            Err(s) => {
                stop = Some(s);
                break;
            }
        };
        if record.validation.is_some() {
            last_validation = record.validation;
        }
        if record.loss < best.0 {
            best = (record.loss, record.step);
        }
        for message in watch.changes(&record) {
            if !args.quiet {
                bar.suspend(|| eprintln!("{message}"));
            }
        }
        let lr = train::learning_rate(&record.uniforms);
        bar.set_position(record.step);
        bar.set_message(status(record.loss, last_validation, lr));
        if bar.is_hidden() && !args.quiet && record.step % (args.steps / 10).max(1) == 0 {
            eprintln!("step {}/{}: {}", record.step, args.steps, status(record.loss, last_validation, lr));
        }
        if let Some(log) = &mut log {
            log.write(&record)?;
        }
        points.push(Point { step: record.step, loss: record.loss, validation: record.validation, lr });
        if let Some(dir) = &checkpoints
            && (record.step % args.every == 0 || record.step == args.steps)
        {
            last_saved = Some(checkpoint::save(dir, &trainer)?);
        }
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();

    if let Some(log) = log {
        log.finish()?;
    }
    if let Some(path) = &args.plot {
        plot(path, &format!("{name}: {description}"), Figure::Training(&points))?;
    }
    if let Some(stop) = stop {
        let saved = match &last_saved {
            Some(dir) => format!("the last checkpoint is `{}`", dir.display()),
            None => "no checkpoint was saved".to_string(),
        };
        return Err(format!("training stopped at {stop}; {saved}"));
    }
    if let Some(path) = &args.save {
        weights::save(path, &trainer.layout, &trainer.params, Default::default())?;
    }

    let steps = trainer.steps() - first_step;
    outln!("{name}: trained {description}");
    outln!("  steps          {} ({steps} this run) in {elapsed:.2} s, {:.0} steps/s", trainer.steps(), steps as f64 / elapsed.max(1e-9));
    if let Some(last) = points.last() {
        outln!("  final loss     {:.6}", last.loss);
        outln!("  best loss      {:.6} (step {})", best.0, best.1);
    }
    if let Some(v) = last_validation {
        outln!("  validation     {v:.6}");
    }
    if let Some(lr) = points.last().and_then(|p| p.lr) {
        outln!("  learning rate  {lr:.3e}");
    }
    for (what, path) in [("log", &args.log), ("plot", &args.plot), ("weights", &args.save)] {
        if let Some(path) = path {
            outln!("  {what:<14} {}", path.display());
        }
    }
    if let Some(dir) = last_saved {
        outln!("  checkpoint     {}", dir.display());
    }
    Ok(())
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
        return Ok(Setup { model, train: None, validation: None, batch_size: 0, seed: args.seed, data });
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
    let loss = loss.unwrap_or(if dataset.is_classification() { Loss::CrossEntropy } else { Loss::Mse });
    let hidden: &[usize] = if args.model == "mlp" { &args.hidden } else { &[] };
    if hidden.contains(&0) {
        return Err("`--hidden` widths must be at least 1".into());
    }
    let sizes: Vec<usize> =
        std::iter::once(dataset.inputs()).chain(hidden.iter().copied()).chain(std::iter::once(dataset.outputs())).collect();
    let model = Model::Mlp { sizes, activation, loss };
    let (train, validation) = dataset.split(args.val_fraction, args.seed);
    Ok(Setup { model, train: Some(train), validation, batch_size: args.batch_size, seed: args.seed, data })
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
/// rate, an injected hyperparameter) when they change after holding still; values that move
/// every step (a decaying schedule) would only be noise.
#[derive(Default)]
struct Watch {
    last: Vec<(String, f64, bool)>,
}

impl Watch {
    fn changes(&mut self, record: &Record) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &record.uniforms {
            if !watched(name) {
                continue;
            }
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

fn watched(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last == "scale" || last == "lr" || name.starts_with("inject_hyperparams.")
}

fn short(v: f64) -> String {
    let s = format!("{v}");
    if s.len() <= 10 { s } else { format!("{v:.4e}") }
}

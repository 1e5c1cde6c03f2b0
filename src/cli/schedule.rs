//! `optc schedule`: a schedule's values step by step, computed exactly as a pipeline would
//! (float32, by the compiled step), printed or plotted, to look at a warmup-cosine curve
//! before training with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::check::{Expect, Program, Tx, Value};
use crate::diagnostic;
use crate::ir::Layout;
use crate::runtime::Optimizer;
use crate::source::Span;
use crate::train::plot::{Figure, check_path, plot};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A schedule expression, e.g. `warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000)`, or a
    /// `.opt` file whose last line is one.
    pub schedule: String,
    /// Steps to evaluate, from 0.
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// Print every K-th step (by default about 20 rows; the first and last always).
    #[arg(long)]
    pub every: Option<u64>,
    /// Draw the values against step (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

pub fn run(args: &Args, stdlib_dir: Option<&Path>) -> ExitCode {
    super::exit_code(evaluate(args, stdlib_dir))
}

fn evaluate(args: &Args, stdlib_dir: Option<&Path>) -> Result<(), String> {
    if let Some(path) = &args.plot {
        check_path(path)?;
    }
    let path = PathBuf::from(&args.schedule);
    let is_file = args.schedule.ends_with(".opt") || path.is_file() || args.schedule == "-";
    let (name, text) = if is_file { super::read_input(&path)? } else { ("<schedule>".to_string(), args.schedule.clone()) };
    crate::jit::prepare();
    let super::Loaded { name, sources, id, checked } = super::check_text(name, text, stdlib_dir, Expect::Schedule)?;
    let Some(schedule) = checked.program.schedule.clone() else {
        return Err(format!("`{name}` has no schedule (its last line should be one)"));
    };

    // The schedule drives `scale_by_schedule` on one scalar parameter with a gradient of 1:
    // starting each step from 0, the parameter becomes exactly the schedule's float32 value.
    let def = checked
        .program
        .defs
        .iter()
        .position(|d| d.name == "scale_by_schedule")
        .ok_or("the standard library has no `scale_by_schedule`")?;
    let tx = Tx::Instance { def, args: vec![Value::Schedule(schedule)], span: Span::new(id, 0..0), call: Span::new(id, 0..0), lists: Vec::new() };
    let program = Program { defs: checked.program.defs, pipeline: Some(Arc::new(tx)), schedule: None };
    let layout = Layout::parse("x:")?;
    let mut optimizer = Optimizer::new(&program, &layout, &[0.0]).map_err(|diagnostics| {
        diagnostic::emit_to_stderr(&diagnostics, &sources);
        format!("`{name}` cannot be evaluated")
    })?;
    let mut values = Vec::with_capacity(args.steps as usize);
    for step in 0..args.steps {
        let mut param = [0.0f32];
        optimizer.step(&mut param, &[1.0], None).map_err(|e| e.to_string())?;
        values.push((step, param[0]));
    }

    let every = args.every.unwrap_or((args.steps / 20).max(1)).max(1);
    outln!("{:>8}  value", "step");
    for (step, value) in &values {
        if step % every == 0 || *step + 1 == args.steps {
            outln!("{step:>8}  {value}");
        }
    }
    if let Some(path) = &args.plot {
        let points: Vec<(u64, f64)> = values.iter().map(|(s, v)| (*s, f64::from(*v))).collect();
        let title = if is_file { name } else { args.schedule.clone() };
        plot(path, &title, Figure::Schedule(&points))?;
        outln!("plot: {}", path.display());
    }
    Ok(())
}

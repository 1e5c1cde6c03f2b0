//! `optc conform`: replays reference cases (the format of `../shared/conformance/README.md`)
//! and reports, per case, pass or fail with the largest error relative to its tolerance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value as Json;

use crate::check;
use crate::diagnostic;
use crate::ir::{Layout, Leaf};
use crate::runtime::{Backend, Optimizer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Case files, or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// What runs the steps: compiled code (`jit`) or the reference interpreter (`interp`).
    #[arg(long, value_name = "BACKEND", default_value = "jit")]
    pub backend: Backend,
}

/// How one case went.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    /// Largest |actual - expected| / (atol + rtol |expected|) over all steps and elements.
    pub worst: f64,
    /// Why it failed.
    pub reason: Option<String>,
}

pub fn run(args: &Args, stdlib_dir: Option<&Path>) -> ExitCode {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "json"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let outcome = run_case_with(&file, stdlib_dir, args.backend);
        if outcome.passed {
            passed += 1;
            outln!("{:<45} pass  max error {:.3} of tolerance", outcome.name, outcome.worst);
        } else {
            failed += 1;
            outln!("{:<45} FAIL  {}", outcome.name, outcome.reason.as_deref().unwrap_or(""));
        }
    }
    outln!("{passed} passed, {failed} failed");
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn fail(name: &str, reason: impl Into<String>) -> Outcome {
    Outcome { name: name.to_string(), passed: false, worst: f64::INFINITY, reason: Some(reason.into()) }
}

/// A number of a case: a float, or "NaN" / "Infinity" / "-Infinity".
fn number(v: &Json) -> Option<f32> {
    match v {
        Json::Number(n) => n.as_f64().map(|x| x as f32),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f32::NAN),
            "Infinity" => Some(f32::INFINITY),
            "-Infinity" => Some(f32::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The leaves of `tree` (a map of name → list of numbers), flattened in layout order.
fn flat(layout: &Layout, tree: &Json, what: &str) -> Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(layout.total());
    for leaf in &layout.leaves {
        let data = tree.get(&leaf.name).ok_or_else(|| format!("{what} has no leaf `{}`", leaf.name))?;
        let data = data.get("data").unwrap_or(data);
        let values = data.as_array().ok_or_else(|| format!("{what}.{} is not a list", leaf.name))?;
        if values.len() != leaf.len() {
            return Err(format!("{what}.{} has {} values, expected {}", leaf.name, values.len(), leaf.len()));
        }
        for v in values {
            out.push(number(v).ok_or_else(|| format!("{what}.{} holds a non-number", leaf.name))?);
        }
    }
    Ok(out)
}

/// Replays one case file with the default backend.
pub fn run_case(path: &Path, stdlib_dir: Option<&Path>) -> Outcome {
    run_case_with(path, stdlib_dir, Backend::default())
}

/// Replays one case file, its steps run by `backend`.
pub fn run_case_with(path: &Path, stdlib_dir: Option<&Path>, backend: Backend) -> Outcome {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(&name, format!("cannot read: {e}")),
    };
    let case: Json = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => return fail(&name, format!("not a case: {e}")),
    };
    let Some(pipeline) = case["pipeline"].as_str() else { return fail(&name, "no `pipeline`") };
    // The layout and the initial parameters.
    let Some(params_json) = case["params"].as_object() else { return fail(&name, "no `params`") };
    let mut leaves = Vec::new();
    for (leaf_name, leaf) in params_json {
        let Some(dims) = leaf["shape"].as_array() else { return fail(&name, format!("params.{leaf_name} has no shape")) };
        let shape: Option<Vec<usize>> = dims.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect();
        let Some(shape) = shape else {
            return fail(&name, format!("params.{leaf_name}.shape holds something other than a size (an integer, 0 or more)"));
        };
        leaves.push(Leaf { name: leaf_name.clone(), shape });
    }
    if leaves.is_empty() || leaves.iter().all(|l| l.is_empty()) {
        return fail(&name, "checks nothing: `params` has no values");
    }
    let layout = match Layout::new(leaves) {
        Ok(l) => l,
        Err(e) => return fail(&name, e),
    };
    let mut params = match flat(&layout, &case["params"], "params") {
        Ok(p) => p,
        Err(e) => return fail(&name, e),
    };
    // Compile.
    let mut sources = match super::sources_with_stdlib(stdlib_dir) {
        Ok(s) => s,
        Err(e) => return fail(&name, e),
    };
    let id = sources.add(format!("{name}.pipeline"), pipeline.to_string(), false);
    let checked = check::check_needed(&sources, id, check::Expect::Pipeline);
    if let Some(first) = checked.diagnostics.iter().find(|d| d.is_error()) {
        // A family the standard library does not have yet says why, as `optc check` does.
        if first.code == "not-supported" {
            return fail(&name, format!("not supported yet: {}", first.notes.join("; ")));
        }
        return fail(&name, format!("does not check: {}", first.message));
    }
    let mut optimizer = match Optimizer::with_backend(&checked.program, &layout, &params, backend) {
        Ok(o) => o,
        Err(diags) => {
            let text = diagnostic::render(&diags, &sources);
            return fail(&name, format!("cannot instantiate: {}", text.lines().next().unwrap_or("")));
        }
    };
    let (rtol, atol) = match (tolerance(&case, "rtol"), tolerance(&case, "atol")) {
        (Ok(r), Ok(a)) => (r, a),
        (Err(e), _) | (_, Err(e)) => return fail(&name, e),
    };
    let steps = case["steps"].as_array().cloned().unwrap_or_default();
    let expected = case["expected"].as_array().cloned().unwrap_or_default();
    // A case that checks nothing must not pass.
    if steps.is_empty() || expected.len() != steps.len() {
        return fail(&name, format!("checks nothing: {} steps and {} expected states (both must be the same, and not 0)", steps.len(), expected.len()));
    }
    let mut worst = 0.0f64;
    for (t, (step, want)) in steps.iter().zip(&expected).enumerate() {
        let grads = match flat(&layout, &step["grads"], "grads") {
            Ok(g) => g,
            Err(e) => return fail(&name, format!("step {t}: {e}")),
        };
        let value = step.get("value").and_then(number);
        if let Err(e) = optimizer.step(&mut params, &grads, value) {
            return fail(&name, format!("step {t}: {e}"));
        }
        let want = match flat(&layout, want, "expected") {
            Ok(w) => w,
            Err(e) => return fail(&name, format!("step {t}: {e}")),
        };
        for (i, (&a, &e)) in params.iter().zip(&want).enumerate() {
            let ok_special = (e.is_nan() && a.is_nan()) || (e.is_infinite() && a == e);
            let ratio = if ok_special {
                0.0
            } else if e.is_nan() || e.is_infinite() || a.is_nan() || a.is_infinite() {
                f64::INFINITY
            } else {
                let err = (f64::from(a) - f64::from(e)).abs();
                let tol = atol + rtol * f64::from(e).abs();
                if tol == 0.0 { if err == 0.0 { 0.0 } else { f64::INFINITY } } else { err / tol }
            };
            if ratio > 1.0 {
                let (leaf, index) = locate(&layout, i);
                return Outcome {
                    name: name.clone(),
                    passed: false,
                    worst: ratio,
                    reason: Some(format!("step {t}, {leaf}[{index}]: expected {e:e}, got {a:e} ({ratio:.1}x the tolerance)")),
                };
            }
            worst = worst.max(ratio);
        }
    }
    Outcome { name, passed: true, worst, reason: None }
}

/// The case's `tolerance.<key>`: 0 when absent, else a finite number, 0 or more (a negative
/// one would pass any result).
fn tolerance(case: &Json, key: &str) -> Result<f64, String> {
    match &case["tolerance"][key] {
        Json::Null => Ok(0.0),
        v => v.as_f64().filter(|t| t.is_finite() && *t >= 0.0).ok_or_else(|| format!("tolerance.{key} is {v}: it must be a number, 0 or more")),
    }
}

/// The leaf and index within it of flat element `i`.
fn locate(layout: &Layout, mut i: usize) -> (String, usize) {
    for leaf in &layout.leaves {
        if i < leaf.len() {
            return (leaf.name.clone(), i);
        }
        i -= leaf.len();
    }
    (String::from("?"), i)
}

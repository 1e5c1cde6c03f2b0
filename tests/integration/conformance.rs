//! Every conformance pipeline outside the shape-aware families checks clean, and the checker
//! agrees with Optax on whether it needs a value at every step.

use optc::check::summary;

use crate::support::{conformance_dir, files_with_extension, not_supported_yet, with_main_stack};

#[test]
fn every_conformance_pipeline_checks_clean() {
    let cases = files_with_extension(&conformance_dir(), "json");
    assert!(cases.len() > 200, "expected the conformance cases in {}", conformance_dir().display());
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &cases {
        let text = std::fs::read_to_string(path).expect("readable case");
        let case: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let pipeline = case["pipeline"].as_str().expect("a pipeline string");
        if not_supported_yet(pipeline) {
            continue;
        }
        checked += 1;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (sources, result) = optc::check_str(&name, pipeline);
        if result.has_errors() {
            failures.push(format!("{name}:\n{}", optc::diagnostic::render(&result.diagnostics, &sources)));
            continue;
        }
        let Some(tx) = &result.program.pipeline else {
            failures.push(format!("{name}: no pipeline"));
            continue;
        };
        let needs = summary::needs_value(&result.program, tx);
        if Some(needs) != case["needs_value"].as_bool() {
            failures.push(format!("{name}: needs_value is {needs}, Optax says {}", case["needs_value"]));
        }
    }
    assert!(checked > 180, "only {checked} cases checked");
    assert!(failures.is_empty(), "{} of {checked} pipelines fail:\n{}", failures.len(), failures.join("\n"));
}

/// Replays every case numerically: the ones outside the shape-aware families must match Optax
/// at their stated tolerance; the shape-aware ones must fail with "not supported yet", not crash.
#[test]
fn every_conformance_case_replays_within_tolerance() {
    let cases = files_with_extension(&conformance_dir(), "json");
    assert!(cases.len() > 200, "expected the conformance cases in {}", conformance_dir().display());
    let total = cases.len();
    let mut failures = Vec::new();
    let mut passed = 0;
    for path in cases {
        let text = std::fs::read_to_string(&path).expect("readable case");
        let case: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let shape_aware = not_supported_yet(case["pipeline"].as_str().unwrap_or(""));
        let outcome = with_main_stack(move || optc::cli::conform::run_case(&path, None));
        match (shape_aware, outcome.passed) {
            (false, true) => passed += 1,
            (false, false) => failures.push(format!("{}: {}", outcome.name, outcome.reason.unwrap_or_default())),
            (true, _) => {
                let reason = outcome.reason.unwrap_or_default();
                if !reason.starts_with("not supported yet") {
                    failures.push(format!("{} (shape-aware) should say it is not supported yet: {reason}", outcome.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{passed} passed; {} failed:\n{}", failures.len(), failures.join("\n"));
    // Every family is supported: one that goes back to "not supported yet" must not pass
    // unnoticed.
    assert!(passed == total, "only {passed} of {total} cases passed");
}

/// L-BFGS's four reference cases replay within tolerance through both backends (the test
/// above runs the compiled code only).
#[test]
fn lbfgs_cases_replay_within_tolerance_on_both_backends() {
    let mut failures = Vec::new();
    for name in ["lbfgs_default", "lbfgs_custom", "scale_by_lbfgs_default", "scale_by_lbfgs_custom"] {
        for backend in [optc::runtime::Backend::Jit, optc::runtime::Backend::Interp] {
            let path = conformance_dir().join(format!("{name}.json"));
            let outcome = with_main_stack(move || optc::cli::conform::run_case_with(&path, None, backend));
            if !outcome.passed {
                failures.push(format!("{name} ({backend:?}): {}", outcome.reason.unwrap_or_default()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The project's own reference cases (`tests/conformance/`, made by its `make_cases.py` with
/// the real Optax) replay within tolerance through both backends: NaN and infinity in the
/// gradients of `multi_steps`, whose handling Optax's source decides.
#[test]
fn the_projects_own_cases_replay_within_tolerance() {
    let cases = files_with_extension(&crate::support::root().join("tests/conformance"), "json");
    assert!(cases.len() >= 5, "expected the project's own cases in tests/conformance");
    let mut failures = Vec::new();
    for path in cases {
        for backend in [optc::runtime::Backend::Jit, optc::runtime::Backend::Interp] {
            let path = path.clone();
            let outcome = with_main_stack(move || optc::cli::conform::run_case_with(&path, None, backend));
            if !outcome.passed {
                failures.push(format!("{} ({backend:?}): {}", outcome.name, outcome.reason.unwrap_or_default()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The Python package's tests (`python/test.sh`: a local environment, the extension built as a
//! user installs it, pytest), run with the reference steps they compare with bit for bit: for
//! every example and a sample of the conformance cases, what the Rust runtime makes of seeded
//! gradients, written here by the runtime itself.
//!
//! `OPTC_SKIP_PYTHON=1` skips them (for a quick Rust-only run; the suite is not complete then).

use std::path::Path;
use std::process::Command;

use optc::ir::op::Scalar;
use optc::ir::{Layout, Leaf};
use optc::runtime::Optimizer;
use serde_json::{Value as Json, json};

use crate::support::{Rng, conformance_dir, files_with_extension, not_supported_yet, root, text};

/// A leaf's floats as their bits, so nothing is lost on the way through JSON.
fn bits(xs: &[f32]) -> Json {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Per-leaf values of a flat buffer, as bits.
fn tree(layout: &Layout, flat: &[f32]) -> Json {
    let mut out = serde_json::Map::new();
    let mut at = 0;
    for leaf in &layout.leaves {
        out.insert(leaf.name.clone(), bits(&flat[at..at + leaf.len()]));
        at += leaf.len();
    }
    Json::Object(out)
}

fn scalar(s: Scalar) -> Json {
    match s {
        Scalar::F32(x) => json!(["f32", x.to_bits()]),
        Scalar::I32(n) => json!(["i32", n]),
        Scalar::Bool(b) => json!(["bool", b]),
    }
}

/// Steps `pipeline` from `params` through `grads` (with a loss if it reads one) and writes what
/// the runtime made of each step to `path`; false if the pipeline does not instantiate.
fn write_reference(path: &Path, name: &str, pipeline: &str, layout: &Layout, params: &[f32], grads: &[Vec<f32>]) -> bool {
    let (_, checked) = optc::check_str("pipeline.opt", pipeline);
    if checked.has_errors() {
        return false;
    }
    let Ok(mut opt) = Optimizer::new(&checked.program, layout, params) else { return false };
    let mut p = params.to_vec();
    let mut steps = Vec::new();
    let mut expected = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let value = opt.needs_value().then(|| 1.0 / (1.0 + t as f32 % 3.0));
        if opt.step(&mut p, g, value).is_err() {
            return false;
        }
        steps.push(json!({"grads": tree(layout, g), "value": value.map(f32::to_bits)}));
        expected.push(tree(layout, &p));
    }
    // What a user can name (the Python package's `hyperparams`): the first value of each name.
    let names = optc::train::logged_names(&opt);
    let mut uniforms = serde_json::Map::new();
    for (name, v) in opt.uniforms() {
        if names.contains(&name) && !uniforms.contains_key(&name) {
            uniforms.insert(name, scalar(v));
        }
    }
    let case = json!({
        "name": name,
        "pipeline": pipeline,
        "layout": layout.leaves.iter().map(|l| json!([l.name, l.shape])).collect::<Vec<_>>(),
        "params": tree(layout, params),
        "steps": steps,
        "expected": expected,
        "uniforms": uniforms,
    });
    std::fs::write(path, serde_json::to_string(&case).expect("json")).expect("write a reference");
    true
}

/// Writes the references into `dir`: each example on a model-like layout (PyTorch's names, a
/// norm and a scalar leaf), and every sixth conformance case on its own inputs.
fn write_references(dir: &Path) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("a reference folder");
    let mut written = 0;
    let layout = Layout::parse("layers.0.weight:16x5,layers.0.bias:16,norm.scale:16,layers.2.weight:3x16,layers.2.bias:3,temperature:").expect("layout");
    let mut rng = Rng(0x5eed);
    let params = rng.floats(layout.total());
    let grads: Vec<Vec<f32>> = (0..6).map(|_| rng.floats(layout.total())).collect();
    for path in files_with_extension(&root().join("examples"), "opt") {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path).expect("an example");
        assert!(write_reference(&dir.join(format!("example_{name}.json")), &name, &text, &layout, &params, &grads), "{name}");
        written += 1;
    }
    for path in files_with_extension(&conformance_dir(), "json").into_iter().step_by(6) {
        let case: Json = serde_json::from_str(&std::fs::read_to_string(&path).expect("a case")).expect("json");
        let pipeline = case["pipeline"].as_str().unwrap_or("");
        let Some(tree) = case["params"].as_object().filter(|_| !not_supported_yet(pipeline)) else { continue };
        let leaves = tree.iter().map(|(n, l)| Leaf { name: n.clone(), shape: serde_json::from_value(l["shape"].clone()).unwrap_or_default() }).collect();
        let layout = Layout::new(leaves).expect("a case's layout");
        let number = |v: &Json| v.as_f64().map(|x| x as f32).unwrap_or(f32::NAN);
        let flat = |t: &Json| -> Vec<f32> {
            layout.leaves.iter().flat_map(|l| t[&l.name].get("data").unwrap_or(&t[&l.name]).as_array().cloned().unwrap_or_default()).map(|v| number(&v)).collect()
        };
        let params = flat(&case["params"]);
        let grads: Vec<Vec<f32>> = case["steps"].as_array().cloned().unwrap_or_default().iter().map(|s| flat(&s["grads"])).collect();
        let name = case["name"].as_str().unwrap_or("case").to_string();
        written += usize::from(write_reference(&dir.join(format!("case_{name}.json")), &name, pipeline, &layout, &params, &grads));
    }
    written
}

#[test]
fn the_python_package_passes_its_tests() {
    if std::env::var_os("OPTC_SKIP_PYTHON").is_some() {
        eprintln!("OPTC_SKIP_PYTHON is set: the Python package's tests are skipped");
        return;
    }
    let dir = root().join("target/python-references");
    let written = write_references(&dir);
    assert!(written >= 30, "only {written} references written");
    let out = Command::new("bash")
        .arg("python/test.sh")
        .current_dir(root())
        .env("OPTC_REFERENCES", &dir)
        .env("OPTC_BIN", env!("CARGO_BIN_EXE_optc"))
        .output()
        .expect("bash runs python/test.sh");
    assert!(out.status.success(), "the Python tests failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
}

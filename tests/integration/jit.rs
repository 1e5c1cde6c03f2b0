//! The JIT against the interpreter, bit for bit: every conformance case and every example, an
//! op table on edge values (±0, ±inf, NaN, subnormals) in the vector body and the scalar tail,
//! reductions, and layouts with odd, empty and scalar leaves and lengths around the vector and
//! block sizes.
//!
//! Every bit must agree, except the sign and payload of a NaN: IEEE 754 does not say which
//! NaN operand an operation passes on, and x86 passes on its first, so the payload depends on
//! the operand order a compiler picks for `a + b` (rustc, compiling the interpreter, commutes
//! `param + update` where Cranelift does not). A NaN must still be a NaN on both sides.

use std::path::Path;

use optc::arena::Arena;
use optc::interp::{self, Env, State};
use optc::ir::op::{Kind, Op, Scalar};
use optc::ir::buffers::{self, Leaves, Params, SlotLayout};
use optc::ir::plan::{self, BLOCK, Outputs, Target};
use optc::ir::{Graph, GroupSet, Groups, Layout, Leaf, Level, Node, NodeId, Reduce};
use optc::runtime::{Backend, Optimizer, Options, blocks};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

use crate::support::{Rng, conformance_dir, files_with_extension, not_supported_yet, root, with_main_stack};

/// The bits of a float, with every NaN the same (see the module doc).
fn bits(x: f32) -> u32 {
    if x.is_nan() { f32::NAN.to_bits() } else { x.to_bits() }
}

/// Where two float slices differ in bits (NaN payloads aside), if they do.
fn first_difference(a: &[f32], b: &[f32]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("lengths {} and {}", a.len(), b.len()));
    }
    a.iter().zip(b).enumerate().find(|(_, (x, y))| bits(**x) != bits(**y)).map(|(i, (x, y))| {
        format!("element {i}: {x:e} ({:#010x}) against {y:e} ({:#010x})", x.to_bits(), y.to_bits())
    })
}

fn scalar_bits(s: Scalar) -> (u8, u32) {
    match s {
        Scalar::F32(x) => (0, bits(x)),
        Scalar::I32(n) => (1, n as u32),
        Scalar::Bool(b) => (2, u32::from(b)),
    }
}

fn uniforms_bits(opt: &Optimizer) -> Vec<(String, (u8, u32))> {
    opt.uniforms().into_iter().map(|(n, v)| (n, scalar_bits(v))).collect()
}

/// Both backends of one pipeline on one layout, stepped together; and both again built to
/// write the updates apart ([`Options::separate_updates`]) into one buffer per leaf, whose
/// `params + updates` must be the in-place step's params.
struct Pair {
    jit: Optimizer,
    interp: Optimizer,
    params_jit: Vec<f32>,
    params_interp: Vec<f32>,
    apart: [Optimizer; 2],
    /// The parameters of `apart`, one buffer per leaf.
    params_apart: Vec<Vec<f32>>,
}

impl Pair {
    fn new(text: &str, layout: &Layout, params: &[f32]) -> Result<Pair, String> {
        let (sources, checked) = optc::check_str("pipeline.opt", text);
        if checked.has_errors() {
            return Err(optc::diagnostic::render(&checked.diagnostics, &sources));
        }
        let make = |backend, separate_updates| {
            let options = Options { backend, separate_updates };
            Optimizer::with_options(&checked.program, layout, &buffers::split(layout, params), options)
                .map_err(|d| optc::diagnostic::render(&d, &sources))
        };
        let (mut jit, interp) = (make(Backend::Jit, false)?, make(Backend::Interp, false)?);
        // One thread, against which `agree` compares two.
        jit.set_threads(1);
        assert_eq!(jit.backend(), Backend::Jit);
        assert_eq!(interp.backend(), Backend::Interp);
        let apart = [make(Backend::Jit, true)?, make(Backend::Interp, true)?];
        let params_apart = buffers::split(layout, params).into_iter().map(<[f32]>::to_vec).collect();
        Ok(Pair { jit, interp, params_jit: params.to_vec(), params_interp: params.to_vec(), apart, params_apart })
    }

    /// One step of both; an error if they disagree in any bit of the params or the uniforms.
    fn step(&mut self, grads: &[f32], value: Option<f32>) -> Result<(), String> {
        let a = self.jit.step(&mut self.params_jit, grads, value);
        let b = self.interp.step(&mut self.params_interp, grads, value);
        if a != b {
            return Err(format!("step results differ: jit {a:?}, interp {b:?}"));
        }
        if let Some(d) = first_difference(&self.params_jit, &self.params_interp) {
            return Err(format!("params differ at {d}"));
        }
        let (ua, ub) = (uniforms_bits(&self.jit), uniforms_bits(&self.interp));
        if ua != ub {
            return Err(format!("uniforms differ:\n jit    {ua:?}\n interp {ub:?}"));
        }
        // Written apart, by each backend: the same updates, and params + updates as in place.
        let layout = self.jit.ir.layout.clone();
        let params: Vec<&[f32]> = self.params_apart.iter().map(Vec::as_slice).collect();
        let grads = buffers::split(&layout, grads);
        let mut updates: [Vec<Vec<f32>>; 2] = Default::default();
        for (opt, out) in self.apart.iter_mut().zip(&mut updates) {
            *out = layout.leaves.iter().map(|l| vec![f32::NAN; l.len()]).collect();
            let mut slices: Vec<&mut [f32]> = out.iter_mut().map(Vec::as_mut_slice).collect();
            let c = opt.step_updates(&params, &grads, value, &mut slices);
            if c != a {
                return Err(format!("step results differ: in place {a:?}, apart ({}) {c:?}", opt.backend()));
            }
        }
        if let Some(d) = first_difference(&updates[0].concat(), &updates[1].concat()) {
            return Err(format!("updates written apart differ between the backends at {d}"));
        }
        for (p, u) in self.params_apart.iter_mut().zip(&updates[0]) {
            p.iter_mut().zip(u).for_each(|(p, u)| *p += u);
        }
        if let Some(d) = first_difference(&self.params_jit, &self.params_apart.concat()) {
            return Err(format!("params + updates written apart differ from the step in place at {d}"));
        }
        if uniforms_bits(&self.apart[0]) != ua {
            return Err("uniforms differ between the step in place and apart".into());
        }
        self.same_eval_params()
    }

    /// The evaluation weights (`eval_params`) of both backends: the same bits.
    fn same_eval_params(&mut self) -> Result<(), String> {
        let n = self.params_jit.len();
        let (mut a, mut b) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        self.jit.eval_params(&self.params_jit, &mut a).map_err(|e| format!("jit eval_params: {e}"))?;
        self.interp.eval_params(&self.params_interp, &mut b).map_err(|e| format!("interp eval_params: {e}"))?;
        match first_difference(&a, &b) {
            Some(d) => Err(format!("evaluation weights differ at {d}")),
            None => Ok(()),
        }
    }

    /// Both states, saved, must be the same bytes.
    fn same_state(&self, tag: &str) -> Result<(), String> {
        // Tests run in parallel and may share a tag: every call gets its own files.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("optc-jit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (a, b) = (dir.join(format!("{tag}-{call}.jit")), dir.join(format!("{tag}-{call}.interp")));
        self.jit.save(&a).map_err(|e| e.to_string())?;
        self.interp.save(&b).map_err(|e| e.to_string())?;
        let (a_bytes, b_bytes) = (std::fs::read(&a).map_err(|e| e.to_string())?, std::fs::read(&b).map_err(|e| e.to_string())?);
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
        if a_bytes == b_bytes {
            return Ok(());
        }
        // Equal but for NaN signs and payloads (which the backends may differ in) is equal: the
        // body after the two header lines, word by word, as `bits` compares floats.
        let body = |bytes: &[u8]| -> Vec<u32> {
            let start = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(1).map_or(bytes.len(), |(i, _)| i + 1);
            bytes[start..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        let (x, y) = (body(&a_bytes), body(&b_bytes));
        let same = x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| bits(f32::from_bits(*p)) == bits(f32::from_bits(*q)));
        if same { Ok(()) } else { Err("the saved states differ".into()) }
    }
}

/// A conformance number: a float, or "NaN" / "Infinity" / "-Infinity".
fn number(v: &serde_json::Value) -> Option<f32> {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map(|x| x as f32),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f32::NAN),
            "Infinity" => Some(f32::INFINITY),
            "-Infinity" => Some(f32::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn flat(layout: &Layout, tree: &serde_json::Value) -> Option<Vec<f32>> {
    let mut out = Vec::new();
    for leaf in &layout.leaves {
        let data = &tree[&leaf.name];
        let data = data.get("data").unwrap_or(data);
        for v in data.as_array()? {
            out.push(number(v)?);
        }
    }
    Some(out)
}

/// Replays one conformance case on both backends; `Ok(false)` if the interpreter cannot run it.
fn replay_case(path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let pipeline = case["pipeline"].as_str().unwrap_or("");
    if not_supported_yet(pipeline) {
        return Ok(false);
    }
    let Some(tree) = case["params"].as_object() else { return Ok(false) };
    let leaves = tree
        .iter()
        .map(|(name, leaf)| {
            let shape = leaf["shape"].as_array().map(|d| d.iter().filter_map(|x| x.as_u64()).map(|x| x as usize).collect());
            Leaf { name: name.clone(), shape: shape.unwrap_or_default() }
        })
        .collect();
    let layout = Layout::new(leaves)?;
    let Some(params) = flat(&layout, &case["params"]) else { return Ok(false) };
    let mut pair = match Pair::new(pipeline, &layout, &params) {
        Ok(p) => p,
        Err(_) => return Ok(false),
    };
    let steps = case["steps"].as_array().cloned().unwrap_or_default();
    for (t, step) in steps.iter().enumerate() {
        let Some(grads) = flat(&layout, &step["grads"]) else { return Ok(false) };
        let value = step.get("value").and_then(number);
        pair.step(&grads, value).map_err(|e| format!("step {t}: {e}"))?;
    }
    let tag = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    pair.same_state(&tag)?;
    Ok(true)
}

#[test]
fn every_conformance_case_runs_bit_identically_on_both_backends() {
    let cases = files_with_extension(&conformance_dir(), "json");
    assert!(cases.len() > 200, "expected the conformance cases in {}", conformance_dir().display());
    let total = cases.len();
    let (replayed, failures) = with_main_stack(move || {
        let mut failures = Vec::new();
        let mut replayed = 0;
        for path in &cases {
            match replay_case(path) {
                Ok(true) => replayed += 1,
                Ok(false) => {}
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        (replayed, failures)
    });
    assert!(replayed == total, "only {replayed} of {total} cases replayed");
    assert!(failures.is_empty(), "{} of {replayed} differ:\n{}", failures.len(), failures.join("\n"));
}

/// A layout with leaves of every awkward length: empty, scalar, around the vector width (4),
/// the unrolled steps (16 with `fmath` functions, 32 without) and the block (4096).
fn awkward_layout() -> Layout {
    let mut spec: Vec<String> = vec!["empty.weight:0".into(), "scalar.bias:".into(), "norm.scale:3x0".into()];
    for n in [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 65, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 17] {
        spec.push(format!("l{n}.weight:{n}"));
        spec.push(format!("l{n}.bias:{}", n % 7 + 1));
    }
    spec.push("odd.weight:13x7".into());
    Layout::parse(&spec.join(",")).expect("a valid layout")
}

/// Runs `text` for a few steps on both backends (and the JIT on two threads) on `layout`, with
/// a very large gradient in step 1 and a NaN in step 2.
fn agree(text: &str, layout: &Layout, steps: usize, seed: u64) -> Result<(), String> {
    agree_with(text, layout, steps, seed, true).map(drop)
}

/// [`agree`], or with gradients in [-1, 1) in every step when not `spiked`; gives the
/// parameters after the last step.
fn agree_with(text: &str, layout: &Layout, steps: usize, seed: u64, spiked: bool) -> Result<Vec<f32>, String> {
    let mut rng = Rng(seed);
    let params = rng.floats(layout.total());
    let mut pair = Pair::new(text, layout, &params)?;
    let mut threaded = Pair::new(text, layout, &params)?;
    threaded.jit.set_threads(2);
    threaded.jit.set_min_per_thread(1);
    for t in 0..steps {
        let mut grads = rng.floats(layout.total());
        // A very large and a non-finite gradient in some steps.
        if spiked && t == 1 && !grads.is_empty() {
            grads[0] = 1e30;
        }
        if spiked && t == 2 && grads.len() > 5 {
            grads[5] = f32::NAN;
        }
        let value = pair.jit.needs_value().then(|| 1.0 / (t as f32 + 1.0));
        pair.step(&grads, value).map_err(|e| format!("step {t}: {e}"))?;
        threaded.step(&grads, value).map_err(|e| format!("step {t}, two threads: {e}"))?;
        if let Some(d) = first_difference(&pair.params_jit, &threaded.params_jit) {
            return Err(format!("step {t}: one and two threads differ at {d}"));
        }
    }
    pair.same_state("agree")?;
    Ok(pair.params_jit)
}

#[test]
fn every_example_runs_bit_identically_on_both_backends() {
    let examples = files_with_extension(&root().join("examples"), "opt");
    assert!(examples.len() >= 4);
    for path in examples {
        let text = std::fs::read_to_string(&path).expect("readable example");
        let name = path.display().to_string();
        with_main_stack(move || agree(&text, &awkward_layout(), 4, 7)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn pipelines_with_reductions_agree_on_awkward_layouts() {
    let pipelines = [
        "adam(learning_rate=1e-3)",
        "chain(clip_by_global_norm(max_norm=1.0), adamw(learning_rate=1e-3, weight_decay=0.1))",
        "lamb(learning_rate=1e-3)",
        "lars(learning_rate=0.1)",
        "novograd(learning_rate=1e-2)",
        "chain(clip(max_delta=0.5), sgd(learning_rate=0.1, momentum=0.9, nesterov=True))",
        "apply_if_finite(adam(learning_rate=1e-2), max_consecutive_errors=2)",
        "chain(zero_nans(), lion(learning_rate=1e-4))",
        "partition { \"*.bias\" | \"*norm*\" => sgd(learning_rate=0.1), _ => adabelief(learning_rate=1e-3) }",
        "masked(adagrad(learning_rate=0.1), mask=\"*.weight\")",
        "chain(adam(learning_rate=1e-3), reduce_on_plateau(patience=1, factor=0.5))",
        // bfloat16 state: loads and stores of 2-byte streams at every leaf offset, odd or even.
        "adam(learning_rate=1e-3, mu_dtype=\"bfloat16\", nu_dtype=\"bfloat16\")",
        "chain(clip_by_global_norm(max_norm=1.0), adamw(learning_rate=1e-3, mu_dtype=\"bfloat16\"))",
        "partition { \"*.bias\" => sgd(learning_rate=0.1, momentum=0.9, accumulator_dtype=\"bfloat16\"), _ => lion(learning_rate=1e-4, mu_dtype=\"bfloat16\") }",
        "masked(adam(learning_rate=1e-3, nu_dtype=\"bfloat16\"), mask=\"*.weight\")",
    ];
    for text in pipelines {
        with_main_stack(move || agree(text, &awkward_layout(), 4, 11)).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

/// L-BFGS: a chain of global dot products, each reading the one before, over history entries
/// shifted every step. Finite gradients for more steps than the memory holds (a NaN would make
/// every later number NaN on both sides), then the spiked ones.
#[test]
fn lbfgs_agrees_on_awkward_layouts() {
    let pipelines = [
        "lbfgs(learning_rate=0.5, memory_size=3, linesearch=None)",
        "lbfgs(learning_rate=0.1, memory_size=2, scale_init_precond=False, linesearch=None)",
        "partition { \"*.bias\" => sgd(learning_rate=0.1), _ => lbfgs(learning_rate=cosine_decay_schedule(0.5, 10), memory_size=2, linesearch=None) }",
        "chain(masked(scale_by_lbfgs(memory_size=1), mask=\"*.weight\"), scale(step_size=-0.2))",
        // A history stored in bfloat16: 2-byte streams for every entry.
        "transform h(n: int = 3) {
             state last: list[tensor[bfloat16]] = [0.0 for i in range(n)]
             update(g) {
                 for i in range(n - 1) { last[i] = last[i + 1] }
                 last[n - 1] = g
                 (last[0] + last[1] + last[2]) / n + dot(last[0], g)
             }
         }
         chain(h(), sgd(learning_rate=0.1))",
    ];
    for text in pipelines {
        with_main_stack(move || {
            let params = agree_with(text, &awkward_layout(), 7, 13, false)?;
            // Agreeing on NaNs would prove little.
            if let Some(i) = params.iter().position(|x| !x.is_finite()) {
                return Err(format!("parameter {i} is {} after 7 steps", params[i]));
            }
            agree(text, &awkward_layout(), 4, 17)
        })
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn evaluation_weights_agree_on_awkward_layouts() {
    let pipelines = [
        "schedule_free_adamw(learning_rate=1e-2, warmup_steps=2, weight_decay=1e-3)",
        "schedule_free_sgd(learning_rate=0.1, b1=0.5)",
        "lookahead(adam(learning_rate=1e-2), sync_period=3, slow_step_size=0.5)",
        "chain(ema_params(decay=0.9), adam(learning_rate=1e-2))",
        "chain(masked(ema_params(decay=0.5), mask=\"*.weight\"), sgd(learning_rate=0.1))",
        "partition { \"*.bias\" => lookahead(sgd(learning_rate=0.1), sync_period=2, slow_step_size=0.5), _ => schedule_free_sgd(learning_rate=0.1) }",
        "inject_hyperparams(schedule_free)(base_optimizer=sgd(learning_rate=0.1), learning_rate=0.1, b1=linear_schedule(0.9, 0.5, 3))",
    ];
    for text in pipelines {
        with_main_stack(move || {
            let layout = awkward_layout();
            let pair = Pair::new(text, &layout, &Rng(3).floats(layout.total()))?;
            if !pair.jit.has_eval_params() {
                return Err("no evaluation weights".to_string());
            }
            agree(text, &layout, 5, 13)
        })
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

// ---- The op table ----

/// Edge values: zeros, infinities, NaNs of both signs, subnormals, extremes, integers near the
/// limits of i32, ordinary values.
const EDGES: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    3.0,
    1e-3,
    100.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    -f32::NAN,
    f32::MIN_POSITIVE,
    1e-40,
    -1e-40,
    1e-45,
    f32::MAX,
    f32::MIN,
    2147483648.0,
    -2147483904.0,
    16777217.0,
];

fn kind_of(op: Op) -> Kind {
    match op {
        Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::IsFinite | Op::IsNan | Op::SignBit | Op::And | Op::Or | Op::Not => Kind::Bool,
        Op::ToI32 => Kind::I32,
        _ => Kind::F32,
    }
}

const ALL_OPS: &[Op] = &[
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::Rem,
    Op::Pow,
    Op::Neg,
    Op::Sqrt,
    Op::Rsqrt,
    Op::Cbrt,
    Op::Abs,
    Op::Sign,
    Op::Exp,
    Op::Log,
    Op::Cos,
    Op::Sin,
    Op::Tanh,
    Op::Floor,
    Op::Ceil,
    Op::Min,
    Op::Max,
    Op::Eq,
    Op::Ne,
    Op::Lt,
    Op::Le,
    Op::Gt,
    Op::Ge,
    Op::IsFinite,
    Op::IsNan,
    Op::SignBit,
    Op::And,
    Op::Or,
    Op::Not,
    Op::Select,
    Op::ToF32,
    Op::ToI32,
];

/// One graph run on both backends: the element slot `out` after the step, from each.
pub(crate) struct Run {
    pub(crate) layout: Layout,
    pub(crate) graph: Graph,
    pub(crate) outputs: Outputs,
    pub(crate) grads: Vec<f32>,
    pub(crate) params: Vec<f32>,
    /// Element slots: 0 and 1 are inputs, 2 the output.
    pub(crate) slots: Vec<Vec<f32>>,
    pub(crate) value: f32,
}

/// What a run gives: params, the output slot, and uniform and per-leaf results by node.
#[derive(Debug)]
struct Ran {
    params: Vec<f32>,
    out: Vec<f32>,
    uniform: Vec<(NodeId, (u8, u32))>,
    leaf: Vec<(NodeId, Vec<(u8, u32)>)>,
}

impl Run {
    fn groups(&self) -> Groups {
        let n = self.layout.leaves.len();
        Groups { leaves: vec![(0..n).collect()], of_leaf: vec![0; n], labels: vec!["all".into()] }
    }

    fn go(&self, backend: Backend, threads: usize) -> Ran {
        let groups = self.groups();
        let plan = plan::plan(&self.graph, 1, self.outputs.clone());
        let offsets = interp::offsets(&self.layout);
        let mut params = self.params.clone();
        let slots: Vec<&[f32]> = self.slots.iter().map(Vec::as_slice).collect();
        let mut state = State { uniform: vec![Scalar::F32(0.0); 3], leaf: vec![Vec::new(); 3], element: Arena::from_slices(&slots, 0) };
        // The compiled passes update element state in place, outside the state the step reads.
        let mut compiled = (backend == Backend::Jit).then(|| {
            let step = optc::jit::compile(&self.graph, &plan).expect("the JIT compiles the graph");
            blocks::Runner::new(step, &groups, &self.layout, &offsets)
        });
        let mut element = if compiled.is_some() { std::mem::take(&mut state.element) } else { Arena::default() };
        let lens: Vec<usize> = self.layout.leaves.iter().map(Leaf::len).collect();
        let slot_layout = SlotLayout::all_leaves(&lens, self.slots.len());
        let mut env = Env {
            graph: &self.graph,
            layout: &self.layout,
            groups: &groups,
            offsets: &offsets,
            slots: &slot_layout,
            leaves: Leaves {
                params: Params::Mut(buffers::split_mut(&self.layout, &mut params)),
                grads: buffers::split(&self.layout, &self.grads),
                updates: Vec::new(),
            },
            value: self.value,
            state: &state,
        };
        let results = match &mut compiled {
            None => interp::run(&plan, &mut env),
            Some(runner) => {
                let mut passes = blocks::Compiled { runner, slots: &mut element, threads: blocks::Threads { count: threads, min_elements: 1 }, error: None };
                let results = interp::run_with(&plan, &mut env, &mut passes);
                assert_eq!(passes.error, None);
                results
            }
        };
        let out = match (results.element.get(&2), compiled.is_some()) {
            (Some(v), _) => v.clone(),
            (None, false) => state.element.get(2).map(<[f32]>::to_vec).unwrap_or_default(),
            (None, true) => element.get(2).map(<[f32]>::to_vec).unwrap_or_default(),
        };
        let mut uniform: Vec<(NodeId, (u8, u32))> = results.uniform.iter().map(|(n, v)| (*n, scalar_bits(*v))).collect();
        uniform.sort_unstable();
        let mut leaf: Vec<(NodeId, Vec<(u8, u32)>)> =
            results.leaf.iter().map(|(n, v)| (*n, v.iter().map(|s| scalar_bits(*s)).collect())).collect();
        leaf.sort_unstable();
        Ran { params, out, uniform, leaf }
    }

    /// Runs both backends (and the JIT on three threads) and says where they differ.
    pub(crate) fn compare(&self, what: &str) {
        let a = self.go(Backend::Interp, 1);
        for threads in [1, 3] {
            let b = self.go(Backend::Jit, threads);
            let inputs = |i: usize| -> String {
                let g = self.grads.get(i).copied().unwrap_or(0.0);
                let p = self.params.get(i).copied().unwrap_or(0.0);
                let s = self.slots[0].get(i).copied().unwrap_or(0.0);
                format!("inputs grad {g:e} param {p:e} state {s:e} value {:e}", self.value)
            };
            if let Some(d) = first_difference(&b.out, &a.out) {
                let i: usize = d.split(':').next().and_then(|s| s.trim_start_matches("element ").parse().ok()).unwrap_or(0);
                panic!("{what} ({threads} threads): jit against interp differ at {d}; {}", inputs(i));
            }
            if let Some(d) = first_difference(&b.params, &a.params) {
                panic!("{what} ({threads} threads): params differ at {d}");
            }
            assert_eq!(b.uniform, a.uniform, "{what} ({threads} threads): uniform results differ");
            assert_eq!(b.leaf, a.leaf, "{what} ({threads} threads): per-leaf results differ");
        }
    }
}

/// Layouts over `n` elements: one leaf (mostly the vector body), and leaves of 1 to 15
/// elements (the scalar tail only, with every start lane).
pub(crate) fn layouts(n: usize) -> Vec<Layout> {
    let one = Layout::parse(&format!("all:{n}")).expect("layout");
    let mut leaves = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < n {
        let len = (k % 15 + 1).min(n - at);
        leaves.push(Leaf { name: format!("t{k:05}"), shape: vec![len] });
        at += len;
        k += 1;
    }
    vec![one, Layout::new(leaves).expect("layout")]
}

/// A graph computing `op` on `args` (as nodes), written to element slot 2.
pub(crate) fn op_graph(op: Op, args: &[Node]) -> (Graph, Outputs) {
    let mut graph = Graph::default();
    let ids: Vec<NodeId> = args
        .iter()
        .map(|a| {
            let level = match a {
                Node::Value | Node::Const(_) => Level::Uniform,
                _ => Level::Element,
            };
            let kind = match a {
                Node::Const(c) => c.scalar().kind(),
                _ => Kind::F32,
            };
            graph.add(a.clone(), level, kind)
        })
        .collect();
    let out = graph.add(Node::Op(op, ids), Level::Element, kind_of(op));
    let mut outputs = Outputs::default();
    outputs.element.push((Target::Slot(2), out, GroupSet::all(1)));
    // The params get the same value, through the `param +=` write.
    outputs.element.push((Target::Params, out, GroupSet::all(1)));
    (graph, outputs)
}

#[test]
fn every_op_agrees_on_edge_values_in_vector_body_and_scalar_tail() {
    let e = EDGES.len();
    // Every pair (a, b) of edge values as (grad, param), with a third operand (state #0)
    // cycling through the edge values, and the whole table shifted so every value meets every
    // lane.
    let mut grads = Vec::new();
    let mut params = Vec::new();
    let mut third = Vec::new();
    for shift in 0..2 {
        for i in 0..e {
            for j in 0..e {
                grads.push(EDGES[i]);
                params.push(EDGES[j]);
                third.push(EDGES[(i + j + shift) % e]);
            }
        }
        grads.push(EDGES[shift]);
        params.push(EDGES[shift]);
        third.push(EDGES[shift]);
    }
    let n = grads.len();
    for &op in ALL_OPS {
        let element_args = [Node::Grad, Node::Param, Node::State(0)];
        let mut variants: Vec<(String, Vec<Node>, f32)> =
            vec![(format!("{} on elements", op.name()), element_args[..op.arity()].to_vec(), 0.0)];
        if op.arity() >= 2 {
            // A uniform operand (an input of the kernel), and a constant one, on either side.
            for &v in &[0.0, -0.0, 2.0, f32::INFINITY, f32::NAN, 1e-40] {
                let mut args = element_args[..op.arity()].to_vec();
                args[1] = Node::Value;
                variants.push((format!("{} with value {v:e} second", op.name()), args.clone(), v));
                args.swap(0, 1);
                variants.push((format!("{} with value {v:e} first", op.name()), args, v));
                let mut args = element_args[..op.arity()].to_vec();
                args[1] = Node::Const(optc::ir::ConstBits::F32(v.to_bits()));
                variants.push((format!("{} with constant {v:e}", op.name()), args, 0.0));
            }
        }
        for (what, args, value) in variants {
            let (graph, outputs) = op_graph(op, &args);
            for layout in layouts(n) {
                let run = Run {
                    layout,
                    graph: graph.clone(),
                    outputs: outputs.clone(),
                    grads: grads.clone(),
                    params: params.clone(),
                    slots: vec![third.clone(), vec![0.0; n], vec![0.0; n]],
                    value,
                };
                run.compare(&what);
            }
        }
    }
}

/// A transform whose updates are its bfloat16 state of the step before: the parameters show
/// what was stored, on both backends.
const STORED: &str = "transform t() {\n    state s: tensor[bfloat16] = param\n    update(g) {\n        let before = s\n        s = g\n        before\n    }\n}\nt()\n";

#[test]
fn bfloat16_state_rounds_the_same_on_both_backends_and_as_numpy_does() {
    // Ties to even both ways, just above and below a tie, the largest finite values (which
    // round to infinity), NaNs, subnormals, and the edge values of the op table.
    let mut values: Vec<f32> = [0x3F80_8000_u32, 0x3F81_8000, 0x3F80_8001, 0x3F80_7FFF, 0xBF80_8000, 0x7F7F_FFFF, 0x7F7F_8000, 0x0000_8000, 0x0001_8000, 0x7FA0_0001, 0xFFC1_2345]
        .iter()
        .map(|&b| f32::from_bits(b))
        .chain(EDGES.iter().copied())
        .collect();
    // Every leaf length of the awkward layout: element `i` at every offset of a vector and
    // of a 4-byte word.
    let layout = awkward_layout();
    let mut rng = Rng(5);
    while values.len() < layout.total() {
        values.push(rng.float() * 1e3);
    }
    let zeros = vec![0.0; layout.total()];
    let mut pair = Pair::new(STORED, &layout, &zeros).expect("checks");
    pair.step(&values, None).expect("step 1");
    pair.step(&zeros, None).expect("step 2");
    pair.same_state("bfloat16").expect("same state");
    // After two steps the parameters have moved by what the first step stored.
    let stored = |x: f32| optc::ir::Storage::Bf16.round(x);
    for (i, (&p, &x)) in pair.params_jit.iter().zip(&values).enumerate() {
        assert!(bits(p) == bits(0.0 + stored(x)), "element {i}: {x:e} stored as {p:e}, expected {:e}", stored(x));
    }
    // The initial state is stored the same way.
    let mut pair = Pair::new(STORED, &layout, &values).expect("checks");
    pair.step(&zeros, None).expect("a step");
    for (i, (&p, &x)) in pair.params_jit.iter().zip(&values).enumerate() {
        assert!(bits(p) == bits(x + stored(x)), "element {i}: {x:e} started as {:e}", p - x);
    }
    assert_eq!(optc::ir::Storage::Bf16.round(f32::from_bits(0x7F7F_FFFF)), f32::INFINITY);
}

#[test]
fn every_reduction_agrees_per_leaf_and_over_the_layout() {
    let layout = awkward_layout();
    let n = layout.total();
    let mut rng = Rng(3);
    // Ordinary values, then the same with edge values sprinkled in.
    let plain = rng.floats(n);
    let mut edgy = plain.clone();
    for (i, x) in edgy.iter_mut().enumerate() {
        if rng.next().is_multiple_of(5) {
            *x = EDGES[i % EDGES.len()];
        }
    }
    let finite: Vec<f32> = edgy.iter().map(|x| if x.is_finite() { *x } else { 0.25 }).collect();
    for (name, grads) in [("plain", plain), ("edge values", edgy), ("finite edge values", finite)] {
        for kind in [Reduce::Sum, Reduce::Max, Reduce::Min, Reduce::All, Reduce::Any] {
            let mut graph = Graph::default();
            let g = graph.add(Node::Grad, Level::Element, Kind::F32);
            let bool_kind = matches!(kind, Reduce::All | Reduce::Any);
            let arg = if bool_kind {
                let zero = graph.constant(Scalar::F32(0.0));
                graph.add(Node::Op(Op::Gt, vec![g, zero]), Level::Element, Kind::Bool)
            } else {
                g
            };
            let value_kind = if bool_kind { Kind::Bool } else { Kind::F32 };
            let total = graph.add(Node::Reduce { kind, arg, groups: GroupSet::all(1) }, Level::Uniform, value_kind);
            let per_leaf = graph.add(Node::LeafReduce { kind, arg }, Level::Leaf, value_kind);
            // Per-element use of both after the barrier: g * total + per_leaf, in a second pass.
            let tf = graph.add(Node::Op(Op::ToF32, vec![total]), Level::Uniform, Kind::F32);
            let lf = graph.add(Node::Op(Op::ToF32, vec![per_leaf]), Level::Leaf, Kind::F32);
            let scaled = graph.add(Node::Op(Op::Mul, vec![g, tf]), Level::Element, Kind::F32);
            let out = graph.add(Node::Op(Op::Add, vec![scaled, lf]), Level::Element, Kind::F32);
            let mut outputs = Outputs::default();
            outputs.element.push((Target::Slot(2), out, GroupSet::all(1)));
            outputs.uniform.push((None, total));
            outputs.leaf.push((0, per_leaf, GroupSet::all(1)));
            let run = Run {
                layout: layout.clone(),
                graph,
                outputs,
                grads: grads.clone(),
                params: vec![0.0; n],
                slots: vec![vec![0.0; n], vec![0.0; n], vec![0.0; n]],
                value: 0.0,
            };
            run.compare(&format!("{kind:?} of {name}"));
        }
    }
}

#[test]
fn emit_clif_shows_the_annotated_kernel() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_optc"))
        .args(["emit", "--clif", "--layout", "w:4x3,b:3", "tests/ir/adam.opt"])
        .current_dir(root())
        .output()
        .expect("optc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["; optc_pass0", "; group 0: inputs [%", "vector body", "scalar tail", "load.f32x4", "; param += %", "; state #1 = %"] {
        assert!(stdout.contains(needle), "`{needle}` missing from:\n{stdout}");
    }
    // Each step IR node is named above its instructions: `; %N = sqrt %M : per-element f32`
    // over a `sqrt` instruction.
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let annotated = lines.windows(2).any(|w| w[0].starts_with("; %") && w[0].contains("= sqrt %") && w[1].contains("= sqrt v"));
    assert!(annotated, "no annotated sqrt in:\n{stdout}");
    // Runs of nodes are headed by the `.opt` line they come from: Adam's denominator, with its
    // square root, is written in stdlib/adam.opt.
    let quoted = lines.windows(3).any(|w| w[0].starts_with("; stdlib/adam.opt:") && w[0].contains("sqrt(") && w[1].starts_with("; %"));
    assert!(quoted, "no quoted `.opt` statement in:\n{stdout}");
}

// ---- Random pipelines ----

/// Random user transforms (proptest strategies, so a failure shrinks to a small case):
/// element expressions over the gradient, the parameters, tensor, per-leaf and int state,
/// constants and reductions (so plans of one to several passes), with every kind of op, inside
/// the combinators that make leaf groups.
fn expr() -> BoxedStrategy<String> {
    let atom = select(vec!["g", "g", "s", "param", "k", "lm", "0.0", "1.0", "-1.5", "2.0", "0.5", "1e-3", "3.0", "1e-8"]).prop_map(String::from);
    atom.prop_recursive(4, 48, 3, |e| {
        let unary = select(vec!["sqrt", "rsqrt", "cbrt", "abs", "sign", "exp", "log", "cos", "sin", "tanh", "floor", "ceil", "float"]);
        let reduction = select(vec!["sum", "norm", "mean", "max", "min", "leaf_sum", "leaf_norm", "leaf_max", "leaf_min", "leaf_mean"]);
        prop_oneof![
            2 => (e.clone(), select(vec!["+", "-", "*", "/", "^"]), e.clone()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            1 => (unary, e.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            1 => (select(vec!["min", "max", "pow"]), e.clone(), e.clone()).prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            1 => e.clone().prop_map(|a| format!("clip({a}, -1.0, 1.0)")),
            1 => (cond(e.clone()), e.clone(), e.clone()).prop_map(|(c, a, b)| format!("(if {c} {{ {a} }} else {{ {b} }})")),
            1 => (reduction, e.clone()).prop_map(|(r, a)| format!("{r}({a} * g)")),
            1 => e.prop_map(|a| format!("(g * {a})")),
        ]
    })
    .boxed()
}

/// Conditions over expressions `e`: tests, comparisons, and `not`/`and`/`or` of them.
fn cond(e: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let comparison = select(vec!["<", "<=", ">", ">=", "==", "!="]);
    let test = prop_oneof![
        1 => e.clone().prop_map(|a| format!("isfinite({a})")),
        1 => e.clone().prop_map(|a| format!("isnan({a})")),
        3 => (e.clone(), comparison, e).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
    ];
    test.prop_recursive(2, 8, 2, |c| {
        prop_oneof![
            c.clone().prop_map(|c| format!("not {c}")),
            (c.clone(), select(vec!["and", "or"]), c).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        ]
    })
    .boxed()
}

/// A user transform with tensor, int and per-leaf state, inside one of the combinators.
fn program() -> impl Strategy<Value = String> {
    let pipeline = select(vec![
        "t()",
        "chain(t(), clip_by_global_norm(max_norm=1.0))",
        "masked(t(), mask=\"*.weight\")",
        "partition { \"*.bias\" => t(), _ => chain(t(), sgd(learning_rate=0.1)) }",
    ]);
    let storage = select(vec!["tensor", "tensor[bfloat16]"]);
    (expr(), expr(), expr(), select(vec!["leaf_max", "leaf_norm", "leaf_mean"]), pipeline, storage).prop_map(|(s, lm, update, leaf, pipeline, storage)| {
        format!(
            "transform t() {{\n    state s: {storage} = 0\n    state k: int = 0\n    state lm: leaf = 0\n    update(g) {{\n        k = k + 1\n        s = {s}\n        lm = lm + {leaf}(abs({lm}) * g)\n        {update}\n    }}\n}}\n{pipeline}\n"
        )
    })
}

/// One to four leaves named `l{i}.weight` and `l{i}.bias` in turn: empty, scalar, shorter than
/// a vector, around a block, or enough blocks that a pass is split over two threads.
fn layout() -> impl Strategy<Value = String> {
    let len = prop_oneof![
        1 => Just(0usize),
        1 => Just(1usize),
        2 => 0..16usize,
        2 => BLOCK - 20..BLOCK + 40,
        3 => 0..200usize,
        1 => 16 * BLOCK..16 * BLOCK + 9,
    ];
    prop::collection::vec(len, 1..=4).prop_map(|lens| {
        let leaf = |(i, n): (usize, &usize)| format!("l{i}.{}:{n}", if i % 2 == 0 { "weight" } else { "bias" });
        lens.iter().enumerate().map(leaf).collect::<Vec<_>>().join(",")
    })
}

#[test]
fn random_pipelines_agree_on_random_layouts() {
    let (ran, result) = with_main_stack(|| {
        let config = ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() };
        // A fixed seed, so CI sees the same cases every run; shrinking still works on a failure.
        let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let ran = std::cell::Cell::new(0);
        let result = runner.run(&(program(), layout(), any::<u64>()), |(text, spec, seed)| {
            let layout = Layout::parse(&spec).expect("a layout");
            match agree(&text, &layout, 3, seed | 1) {
                Ok(()) => ran.set(ran.get() + 1),
                // Pipelines that do not check (a glob matching no leaf, a constant division by
                // zero) are skipped; about one in twenty.
                Err(e) if e.contains("error[") || e.contains("error:") => {}
                Err(e) => return Err(TestCaseError::fail(format!("on {spec}:\n{text}{e}"))),
            }
            Ok(())
        });
        (ran.get(), result.map_err(|e| e.to_string()))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(ran >= 150, "only {ran} of 200 random pipelines checked and ran");
}

#[test]
fn an_optimizer_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let (_, checked) = optc::check_str("adam.opt", "adam(learning_rate=1e-3)");
    let layout = Layout::parse("w:4x3,b:3").expect("layout");
    let optimizer = Optimizer::new(&checked.program, &layout, &[0.0; 15]).expect("instantiates");
    assert_eq!(optimizer.backend(), Backend::Jit);
    send(&optimizer);
    let mut params = vec![0.0; 15];
    let moved = std::thread::spawn(move || {
        let mut optimizer = optimizer;
        optimizer.step(&mut params, &[1.0; 15], None).map(|()| params)
    });
    let params = moved.join().expect("the thread finishes").expect("the step runs");
    assert!(params.iter().all(|p| (*p + 1e-3).abs() < 1e-6), "{params:?}");
}

#[test]
fn emit_asm_shows_vector_machine_code() {
    let emit = |file: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_optc"))
            .args(["emit", "--asm", "--layout", "w:4x3,b:3", file])
            .current_dir(root())
            .output()
            .expect("optc runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let adam = emit("tests/ir/adam.opt");
    for needle in ["; optc_pass0", "sqrtps", "divps", "sqrtss"] {
        assert!(adam.contains(needle), "`{needle}` missing from:\n{adam}");
    }
    // Every pass has its code, not only the first.
    let clipped = emit("tests/ir/clip_adamw.opt");
    let (first, second) = clipped.split_once("; optc_pass1").expect("two passes");
    assert!(first.contains("mulps"), "pass 0 has no vector code:\n{first}");
    assert!(second.contains("sqrtps"), "pass 1 has no vector code:\n{second}");
    // Runs of instructions are headed by the `.opt` line they come from: Adam's square root
    // under the line of stdlib/adam.opt that takes it.
    let lines: Vec<&str> = adam.lines().map(str::trim).collect();
    let quoted = lines.iter().enumerate().any(|(i, l)| {
        l.starts_with("; stdlib/adam.opt:") && l.contains("sqrt(") && lines[i + 1..].iter().take_while(|n| !n.starts_with(';')).any(|n| n.contains("sqrtps"))
    });
    assert!(quoted, "no vector square root under its `.opt` line in:\n{adam}");
}

#[test]
fn half_powers_are_square_roots_with_the_special_values_of_pow() {
    // `g ^ 0.5` is a square root and `g ^ -0.5` its reciprocal: correctly rounded (the
    // reciprocal within an ulp), with powf's values at -inf, -0, +0, +inf, negatives and NaN,
    // the same bits on both backends (`Pair::step`).
    let specials = [f32::NEG_INFINITY, -4.0, -1e-45, -0.0, 0.0, 1e-45, 1e-40, 1.17e-38, 0.25, 2.0, 1e30, f32::MAX, f32::INFINITY, f32::NAN];
    let mut grads: Vec<f32> = specials.to_vec();
    grads.extend((0..4000u32).map(|i| f32::from_bits(i.wrapping_mul(1_048_573) & 0x7FFF_FFFF)));
    let ulps = |a: f32, b: f32| (i64::from(a.to_bits() as i32) - i64::from(b.to_bits() as i32)).abs();
    for (e, within) in [(0.5f32, 0), (-0.5, 1)] {
        let text = format!("transform p() {{\n    update(g) {{\n        g ^ {e}\n    }}\n}}\np()\n");
        let layout = Layout::parse(&format!("w:{}", grads.len())).expect("layout");
        // Params of -0, so that the update's own zero sign survives `param + update`.
        let mut pair = Pair::new(&text, &layout, &vec![-0.0; grads.len()]).expect("builds");
        pair.step(&grads, None).expect("the backends agree");
        for (&x, &y) in grads.iter().zip(&pair.params_jit) {
            let pow = x.powf(e);
            let exact = if e > 0.0 { f64::from(x).sqrt() } else { 1.0 / f64::from(x).sqrt() } as f32;
            if !pow.is_finite() || pow == 0.0 || x <= 0.0 {
                assert!(y.to_bits() == pow.to_bits() || (y.is_nan() && pow.is_nan()), "{x} ^ {e}: {y:e}, powf gives {pow:e}");
            } else {
                assert!(ulps(y, exact) <= within, "{x:e} ^ {e}: {y:e}, correctly rounded {exact:e}");
            }
        }
    }
}

/// The machine code `optc emit --asm` lists for `rule` on `layout`, without its comments.
fn machine_code(rule: &str, layout: &str) -> Vec<String> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_optc"))
        .args(["emit", "--asm", "--layout", layout, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("optc runs");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(rule.as_bytes()).expect("writes the rule");
    let out = child.wait_with_output().expect("optc finishes");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim_start().starts_with(';')).map(str::to_string).collect()
}

#[test]
fn unrolled_copies_of_math_stay_interleaved_in_machine_code() {
    // A kernel with `exp` computes its four unrolled vectors side by side, so their long chains
    // overlap. Cranelift's optimizer would place each instruction next to its first use, one
    // copy after the other; such kernels are compiled without it. So the four copies' clamps
    // (`maxps`, one per copy) come together.
    let rule = "transform r() {\n    state m: tensor = 0\n    update(g) {\n        m = 0.9 * m + g\n        g * exp(-abs(m))\n    }\n}\nr()\n";
    let lines = machine_code(rule, "w:64");
    let clamps: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.contains("maxps")).map(|(i, _)| i).collect();
    assert!(clamps.len() >= 4, "no four vector clamps in:\n{}", lines.join("\n"));
    assert!(clamps[3] - clamps[0] <= 6, "the copies' clamps are {:?} lines apart in:\n{}", clamps[3] - clamps[0], lines.join("\n"));
}

#[test]
fn each_unrolled_copy_is_loaded_where_it_is_used() {
    // A stream the kernel never stores to is loaded as read-only memory, which Cranelift's
    // optimizer places next to its use: copy by copy, a vector is loaded, squared and summed
    // before the next is loaded. As ordinary loads, all eight copies' came first and their
    // arithmetic after, which spilled once a pass read two streams.
    let rule = "transform r() {\n    update(g) {\n        g * sqrt(leaf_mean(g ^ 2))\n    }\n}\nr()\n";
    let lines = machine_code(rule, "w:256");
    let body = lines.iter().position(|l| l.contains("vmovups") && l.contains("),%xmm") && !l.contains("rsp"));
    let body = body.unwrap_or_else(|| panic!("no vector load in:\n{}", lines.join("\n")));
    for (k, line) in lines[body..].iter().take(12).enumerate().filter(|(k, _)| k % 3 == 0) {
        assert!(line.contains("vmovups"), "line {k} of the vector body is not a load:\n{}", lines[body..body + 12].join("\n"));
        assert!(lines[body + k + 1].contains("vmulps"), "a load is not followed by its use:\n{}", lines[body..body + 12].join("\n"));
    }
}

#[test]
fn transforms_reading_each_leafs_shape_agree_on_awkward_layouts() {
    // `ndim` and `size` are each leaf's own numbers: per group, with scalars, vectors and
    // matrices side by side, inside a mask and a partition, in state initialisers too.
    let defs = r#"
transform by_shape(lr: float = 0.1) {
    state m: tensor = ndim * 0.25
    update(g) {
        m = 0.9 * m + g / size
        let k = if ndim >= 2 { 1.0 } else { 0.5 }
        -lr * k * m
    }
}
"#;
    let layout = Layout::parse("w:13x7,b:7,s:,cube:3x2x5,row:1x9").expect("layout");
    for pipeline in ["by_shape()", "chain(by_shape(), masked(by_shape(0.2), ndim > 1))", "partition { ndim == 2 => by_shape(), _ => sgd(0.1) }"] {
        let text = format!("{defs}\n{pipeline}\n");
        with_main_stack(move || agree(&text, &awkward_layout(), 4, 5)).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
        let text = format!("{defs}\n{pipeline}\n");
        let layout = layout.clone();
        with_main_stack(move || agree(&text, &layout, 4, 9)).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    }
}

#[test]
fn transforms_reducing_over_axes_agree_on_awkward_layouts() {
    // Axis reductions and state kept reduced over axes run row by row, compiled or interpreted;
    // matrix operations over whole leaves in both backends. Shapes: empty, scalar, 1×n, n×1,
    // 3-D and 5-D, matrices around the vector width, rows longer than a block, a matrix whose
    // column sums are split into runs of rows (`big`), and leaves of one shape (one group,
    // whose passes that accumulate split over threads between leaves and runs).
    let layout = Layout::parse("e:0x3,s:,row:1x9,col:9x1,cube:3x2x5,five:2x3x1x4x5,w:13x7,v:7,big:65x70,sq:4x4,long:3x4099,m0:20x130,m1:20x130,m2:20x130").expect("layout");
    for pipeline in [
        "adafactor(learning_rate=0.01, min_dim_size_to_factor=2)",
        "adafactor(learning_rate=0.01, min_dim_size_to_factor=4, momentum=0.9, weight_decay_rate=0.01)",
        "scale_by_factored_rms(factored=False)",
        "sm3(learning_rate=0.1)",
        "chain(centralize(), adam(learning_rate=0.01))",
        "chain(adaptive_grad_clip(clipping=0.1), sgd(learning_rate=0.1))",
        "chain(masked(adaptive_grad_clip(clipping=0.05, axis=-1), ndim >= 1), clip_by_global_norm(1.0), sgd(learning_rate=0.1))",
        "partition { ndim == 2 => adafactor(learning_rate=0.01, min_dim_size_to_factor=2), _ => adam(learning_rate=0.01) }",
        "muon(learning_rate=0.01)",
        "muon(learning_rate=0.01, ns_coeffs=\"dion\", preconditioning=\"aol\", adaptive=True, weight_decay=0.01)",
        "muon(learning_rate=0.01, ns_steps=2, preconditioning=\"schatten\", consistent_rms=0.2, mu_dtype=\"bfloat16\")",
        "muon(learning_rate=0.01, ns_steps=3, preconditioning=\"spectral\", nesterov=False)",
        // Leaves of more axes as batches of matrices: every axis order, empty and 1-wide sides.
        "muon(learning_rate=0.01, muon_weight_dimension_numbers=[(ndim == 3, MuonDimensionNumbers(2, 0)), (ndim == 5, MuonDimensionNumbers([0, -1], [1, 3])), (ndim == 2, MuonDimensionNumbers())])",
        "muon(learning_rate=0.01, preconditioning=\"aol\", adaptive=True, muon_weight_dimension_numbers=[(\"cube\", MuonDimensionNumbers(1, 2)), (ndim == 5 and not \"cube\", MuonDimensionNumbers([2, 3], 4))])",
    ] {
        let text = format!("{pipeline}\n");
        let layout = layout.clone();
        with_main_stack(move || agree(&text, &layout, 4, 11)).unwrap_or_else(|e| panic!("{pipeline}: {e}"));
    }
}

#[test]
fn state_reduced_over_axes_that_only_state_needs_agrees_on_both_backends() {
    // The update reads the old `r` and `c`: the pass that applies it accumulates the sums, and
    // their new values are computed after it (`tests/ir/row_stats.opt` shows such a plan).
    let text = r#"
transform stats() {
    state r: tensor = 0
    state c: tensor = 1
    update(g) {
        let u = g * 0.1 / (1.0 + sqrt(r)) + 0.01 * c
        if ndim == 2 {
            r = 0.9 * r + 0.1 * mean(g * g, axis=1)
            c = 0.5 * max(c, max(abs(g), axis=0))
        }
        u
    }
}
chain(stats(), sgd(0.1))
"#;
    let layout = Layout::parse("w:13x7,b:7,big:65x70,long:3x4099,m0:20x130,m1:20x130").expect("layout");
    with_main_stack(move || agree(text, &layout, 4, 13)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn else_if_statements_agree_on_both_backends() {
    let text = std::fs::read_to_string(root().join("tests/diagnostics/ok/else_if_statements.opt")).expect("fixture");
    with_main_stack(move || agree(&text, &awkward_layout(), 12, 3)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn rules_of_a_few_values_give_the_bits_of_the_rules_they_replace() {
    // Every (grad, param, state) triple of edge values, so each sign meets every other.
    let (mut grads, mut params, mut third) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &a) in EDGES.iter().enumerate() {
        for (j, &b) in EDGES.iter().enumerate() {
            grads.push(a);
            params.push(b);
            third.push(EDGES[(i * 7 + j) % EDGES.len()]);
        }
    }
    let n = grads.len();
    let f = |x: f32| Node::Const(optc::ir::ConstBits::F32(x.to_bits()));
    type Rule = fn(&mut Graph, [NodeId; 4], &dyn Fn(&mut Graph, f32) -> NodeId) -> NodeId;
    let rules: [(&str, Rule); 4] = [
        // PowerSign: the product of signs regrouped out of `value * sign(g) * sign(p)`.
        ("e ^ (value * sign(g) * sign(p))", |g, [grad, param, _, value], c| {
            let (sg, sp) = (g.add(Node::Op(Op::Sign, vec![grad]), Level::Element, Kind::F32), g.add(Node::Op(Op::Sign, vec![param]), Level::Element, Kind::F32));
            let scaled = g.add(Node::Op(Op::Mul, vec![value, sg]), Level::Element, Kind::F32);
            let exponent = g.add(Node::Op(Op::Mul, vec![scaled, sp]), Level::Element, Kind::F32);
            let e = c(g, std::f32::consts::E);
            g.add(Node::Op(Op::Pow, vec![e, exponent]), Level::Element, Kind::F32)
        }),
        // ±0 apart: 1 / ±0 is ±inf, and 2 ^ ±inf is inf or 0.
        ("2 ^ (1 / (sign(g) * sign(p)))", |g, [grad, param, _, _], c| {
            let (sg, sp) = (g.add(Node::Op(Op::Sign, vec![grad]), Level::Element, Kind::F32), g.add(Node::Op(Op::Sign, vec![param]), Level::Element, Kind::F32));
            let t = g.add(Node::Op(Op::Mul, vec![sg, sp]), Level::Element, Kind::F32);
            let (one, two) = (c(g, 1.0), c(g, 2.0));
            let inverse = g.add(Node::Op(Op::Div, vec![one, t]), Level::Element, Kind::F32);
            g.add(Node::Op(Op::Pow, vec![two, inverse]), Level::Element, Kind::F32)
        }),
        ("exp(value * sign(state) + 0.5)", |g, [_, _, state, value], c| {
            let s = g.add(Node::Op(Op::Sign, vec![state]), Level::Element, Kind::F32);
            let scaled = g.add(Node::Op(Op::Mul, vec![value, s]), Level::Element, Kind::F32);
            let half = c(g, 0.5);
            let shifted = g.add(Node::Op(Op::Add, vec![scaled, half]), Level::Element, Kind::F32);
            g.add(Node::Op(Op::Exp, vec![shifted]), Level::Element, Kind::F32)
        }),
        ("log(|sign(g) - sign(state)|)", |g, [grad, _, state, _], _| {
            let (sg, ss) = (g.add(Node::Op(Op::Sign, vec![grad]), Level::Element, Kind::F32), g.add(Node::Op(Op::Sign, vec![state]), Level::Element, Kind::F32));
            let d = g.add(Node::Op(Op::Sub, vec![sg, ss]), Level::Element, Kind::F32);
            let a = g.add(Node::Op(Op::Abs, vec![d]), Level::Element, Kind::F32);
            g.add(Node::Op(Op::Log, vec![a]), Level::Element, Kind::F32)
        }),
    ];
    for (what, rule) in rules {
        let mut graph = Graph::default();
        let inputs = [
            graph.add(Node::Grad, Level::Element, Kind::F32),
            graph.add(Node::Param, Level::Element, Kind::F32),
            graph.add(Node::State(0), Level::Element, Kind::F32),
            graph.add(Node::Value, Level::Uniform, Kind::F32),
        ];
        let constant = |g: &mut Graph, x: f32| g.add(f(x), Level::Uniform, Kind::F32);
        let costly = rule(&mut graph, inputs, &constant);
        let out = graph.add(Node::Op(Op::Mul, vec![costly, inputs[0]]), Level::Element, Kind::F32);
        let outputs = |out: NodeId| {
            let mut o = Outputs::default();
            o.element.push((Target::Slot(2), out, GroupSet::all(1)));
            o
        };
        let (rewritten, map) = optc::ir::finite::specialize(&graph, &[out]).unwrap_or_else(|| panic!("{what}: not rewritten"));
        let left = rewritten.nodes.iter().filter(|i| i.level == Level::Element).filter_map(|i| match i.node {
            Node::Op(op, _) if op.is_math() || op == Op::Div => Some(op.name()),
            _ => None,
        });
        let kept: Vec<&str> = left.collect();
        assert!(kept.is_empty(), "{what}: still computed per element: {kept:?}");
        for value in [0.7, -0.0, f32::INFINITY, f32::NAN] {
            for layout in layouts(n) {
                let run = |graph: &Graph, out: NodeId| Run {
                    layout: layout.clone(),
                    graph: graph.clone(),
                    outputs: outputs(out),
                    grads: grads.clone(),
                    params: params.clone(),
                    slots: vec![third.clone(), vec![0.0; n], vec![0.0; n]],
                    value,
                };
                let before = run(&graph, out).go(Backend::Interp, 1);
                let after = run(&rewritten, map[out as usize]);
                for (backend, threads) in [(Backend::Interp, 1), (Backend::Jit, 1), (Backend::Jit, 3)] {
                    let got = after.go(backend, threads);
                    if let Some(d) = first_difference(&got.out, &before.out) {
                        panic!("{what}, value {value:e}, {backend:?} on {threads} threads: the rewrite differs at {d}");
                    }
                }
            }
        }
    }
}

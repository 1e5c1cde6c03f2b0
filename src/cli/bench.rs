//! `optc bench`: the time of one step of a pipeline, in ns per parameter and GB/s (from the
//! plan's bytes per element), beside three references run in the same rounds on buffers placed
//! as the runtime places state (an [`Arena`], params and grads at 0 and 1): a hand-written Rust
//! Adam loop compiled for this CPU, a streaming probe shaped like the pipeline's passes (the
//! memory floor for the bytes the pipeline must move), and one shaped like Adam's seven streams.
//! Also the compile time from source to callable machine code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::arena::Arena;
use crate::check::Expect;
use crate::diagnostic;
use crate::ir::layout::Leaf;
use crate::ir::buffers::SlotLayout;
use crate::ir::{Layout, MatOp, Node, instantiate, plan, shapes};
use crate::jit;
use crate::native::{self, Adam, Isa, ProbePlan};
use crate::runtime::{self, Backend, Optimizer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `.opt` file (`-` reads standard input).
    pub file: PathBuf,
    /// Parameters in all (not with `--layout`).
    #[arg(long, value_name = "N", default_value_t = 1 << 22, conflicts_with = "layout")]
    pub params: usize,
    /// Split the parameters into K leaves of nearly equal sizes, `bench.layer{i}.weight` (not
    /// with `--layout`).
    #[arg(long, value_name = "K", default_value_t = 1, conflicts_with = "layout")]
    pub leaves: usize,
    /// A parameter layout instead of `--params` and `--leaves`: `name:4x3,other:3`.
    #[arg(long, value_name = "SPEC")]
    pub layout: Option<String>,
    /// Threads the pipeline, the Adam loop and the probes are split over (at least 1) [default:
    /// all cores].
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// What runs the steps: `jit` or `interp`.
    #[arg(long, value_name = "BACKEND", default_value = "jit")]
    pub backend: Backend,
    /// The instruction set of the Rust loops: `avx512f`, `avx2` or `plain` (SSE2, the width
    /// of the JIT's vectors) [default: the widest this CPU runs].
    #[arg(long, value_name = "ISA")]
    pub isa: Option<Isa>,
    /// Print one JSON object with every number instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Rounds of interleaved timing; each figure is the median over them.
const ROUNDS: usize = 7;
/// How long each loop runs in one round.
const ROUND_TIME: Duration = Duration::from_millis(30);
/// Times the compile is repeated; its median is reported (and the first, cold one).
const COMPILES: usize = 5;

/// What is timed in each round, in this order.
const PIPELINE: usize = 0;
const ADAM: usize = 1;
const PROBE: usize = 2;
const ADAM_PROBE: usize = 3;
/// The pipeline's matrix products alone, by ndarray's `dot` (when it has any).
const PRODUCTS: usize = 4;
const TIMED: usize = 5;
/// Bytes Adam moves per parameter: read p, g, m, v; write p, m, v.
const ADAM_BYTES: usize = 28;

pub fn run(args: &Args, stdlib_dir: Option<&std::path::Path>) -> ExitCode {
    super::exit_code(bench(args, stdlib_dir))
}

/// Runs the benchmark and prints it; an error is a message (empty when the diagnostics that
/// explain it were printed already).
fn bench(args: &Args, stdlib_dir: Option<&std::path::Path>) -> Result<(), String> {
    // Standard input is read first, so a writer into it never sees a closed pipe.
    let (name, text) = super::read_input(&args.file)?;
    let threads = match args.threads {
        Some(0) => return Err("--threads must be at least 1".into()),
        Some(t) => t,
        None => runtime::default_threads(),
    };
    let layout = layout(args)?;
    let n = layout.total();
    if n == 0 {
        return Err("the layout has no parameters".into());
    }
    let compile = time_compile(name.clone(), text, stdlib_dir, &layout, args.backend)?;
    check_memory(n, compile.floats_per_param, args.layout.is_some())?;

    // The pipeline's buffers, placed as the runtime places state (which takes indices 2..).
    let mut buffers = Arena::new(&[n, n], 0);
    if let [p, g] = buffers.slices_mut().as_mut_slice() {
        native::pseudo_random(p, 1);
        native::pseudo_random(g, 2);
    }
    let setup_start = Instant::now();
    let params = buffers.get(0).unwrap_or_default();
    let built = Optimizer::with_backend(&compile.program, &layout, params, args.backend);
    let setup = setup_start.elapsed();
    let mut optimizer = built.map_err(|diags| {
        diagnostic::emit_to_stderr(&diags, &compile.sources);
        String::new()
    })?;
    diagnostic::emit_to_stderr(optimizer.warnings(), &compile.sources);
    optimizer.set_threads(threads);
    let step_plan = &optimizer.step_plan;
    // Each element moves its own group's streams (an average over groups that differ).
    let bytes = step_plan.bytes_per_element(&optimizer.ir.group_elements()).round() as usize;
    let passes = step_plan.passes.len();
    let probe_plan = ProbePlan::new(step_plan.passes.iter().map(|p| (p.reads.as_slice(), p.writes.as_slice())));
    let adam_shaped = passes == 1 && probe_plan.buffers() == 4 && bytes == ADAM_BYTES;

    // The references' buffers: p and g at 0 and 1, then m, v or the pipeline's other streams.
    let mut refs = Arena::new(&vec![n; probe_plan.buffers().max(4)], 0);
    if let [p, g, ..] = refs.slices_mut().as_mut_slice() {
        native::pseudo_random(p, 3);
        native::pseudo_random(g, 4);
    }
    let isa = args.isa.unwrap_or_else(Isa::best);
    let value = optimizer.needs_value().then_some(1.0f32);
    let products = matrix_products(&optimizer);
    let factors: Vec<(ndarray::Array2<f32>, ndarray::Array2<f32>)> =
        products.iter().map(|&(r, k, c)| (ndarray::Array2::from_elem((r, k), 0.5), ndarray::Array2::from_elem((k, c), 0.25))).collect();
    let mut failed = None;
    let mut count = 0;
    let mut sink = 0.0f32;
    let times = time_rounds(|which| match which {
        PIPELINE => {
            if let [p, g] = buffers.slices_mut().as_mut_slice()
                && let Err(e) = optimizer.step(p, g, value)
            {
                failed.get_or_insert(e);
            }
        }
        ADAM => {
            count += 1;
            if let [p, g, m, v, ..] = refs.slices_mut().as_mut_slice() {
                native::adam(isa, &Adam::default().at(count), p, g, m, v, threads);
            }
        }
        PROBE => sink += probe_plan.run(isa, &mut refs, threads),
        ADAM_PROBE => {
            if let [p, g, m, v, ..] = refs.slices_mut().as_mut_slice() {
                native::adam_probe(isa, p, g, m, v, threads);
            }
        }
        PRODUCTS => {
            for (a, b) in &factors {
                sink += a.dot(b)[(0, 0)];
            }
        }
        _ => {}
    });
    std::hint::black_box(sink);
    if let Some(e) = failed {
        return Err(e.to_string());
    }
    let ns = |which: usize| times[which] * 1e9 / n as f64;
    let report = Report {
        file: name,
        params: n,
        leaves: layout.leaves.len(),
        passes,
        bytes_per_param: bytes,
        threads,
        backend: args.backend,
        isa,
        compile,
        setup_ms: ms(setup),
        pipeline_ns: ns(PIPELINE),
        adam_ns: ns(ADAM),
        probe_ns: ns(PROBE),
        adam_probe_ns: ns(ADAM_PROBE),
        probe_bytes: probe_plan.bytes_per_element(),
        adam_shaped,
        products: products.len(),
        products_ns: ns(PRODUCTS),
    };
    if args.json {
        outln!("{}", report.json());
    } else {
        report.print();
    }
    Ok(())
}

/// The (rows, inner, columns) of every matrix product a step of `optimizer` makes, leaf by leaf
/// and pass by pass (a value a later pass needs again is computed again).
fn matrix_products(optimizer: &Optimizer) -> Vec<(usize, usize, usize)> {
    let ir = &optimizer.ir;
    let mut out = Vec::new();
    for program in optimizer.step_plan.passes.iter().flat_map(|p| &p.tensor_programs) {
        for &node in &program.nodes {
            let Node::Matrix { op: MatOp::MatMul, args } = &ir.graph.get(node).node else { continue };
            for &l in &ir.groups.leaves[program.group] {
                let leaf = &ir.layout.leaves[l].shape;
                let sides = args.iter().map(|a| shapes::of(&ir.graph, *a, leaf)).collect::<Option<Vec<_>>>();
                // A stack of matrices is that many products.
                if let Some([a, b]) = sides.as_deref()
                    && let ([batch @ .., r, k], [.., c]) = (a.as_slice(), b.as_slice())
                {
                    out.extend(std::iter::repeat_n((*r, *k, *c), batch.iter().product()));
                }
            }
        }
    }
    out
}

/// Refuses a bench whose buffers (`floats_per_param` floats for each of `n` parameters) would
/// not fit in the memory the machine has available, instead of letting the allocation abort.
/// The advice names the option the user gave (`--params`, or a smaller `--layout`).
fn check_memory(n: usize, floats_per_param: f64, layout_given: bool) -> Result<(), String> {
    let needed = n as f64 * floats_per_param * 4.0;
    let Some(available) = available_memory() else { return Ok(()) };
    if needed <= available as f64 {
        return Ok(());
    }
    let fits = round_down((available as f64 / (floats_per_param * 4.0)) as u64);
    let advice = if layout_given { format!("give a layout of {fits} parameters or fewer") } else { format!("try `--params {fits}` or fewer") };
    Err(format!(
        "{n} parameters need about {} ({floats_per_param:.0} floats per parameter: params, gradients, the pipeline's state and the reference loops' buffers), but the machine has {} available; {advice}",
        gigabytes(needed),
        gigabytes(available as f64),
    ))
}

/// The memory the system could give this process now (Linux's `MemAvailable`), in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn gigabytes(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

/// `x` rounded down to one significant digit (`374_000_000` → `300_000_000`).
fn round_down(x: u64) -> u64 {
    let scale = 10u64.pow(x.max(1).ilog10());
    x / scale * scale
}

/// The layout to bench: `--layout`, or `--params` split into `--leaves` leaves.
fn layout(args: &Args) -> Result<Layout, String> {
    if let Some(spec) = &args.layout {
        return Layout::parse(spec).map_err(|e| format!("bad layout: {e}"));
    }
    let (n, k) = (args.params, args.leaves);
    if n == 0 {
        return Err("--params must be at least 1".into());
    }
    if k == 0 {
        return Err("--leaves must be at least 1".into());
    }
    if k > n {
        return Err(format!("--leaves {k} is more than --params {n}: every leaf needs a parameter"));
    }
    // The first `n % k` leaves get one parameter more.
    let leaves =
        (0..k).map(|i| Leaf { name: format!("bench.layer{i}.weight"), shape: vec![n / k + usize::from(i < n % k)] }).collect();
    Layout::new(leaves)
}

/// The program, and how long it took from source to callable code, stage by stage.
struct Compile {
    program: crate::Program,
    sources: crate::SourceMap,
    /// Floats the bench keeps per parameter: the pipeline's params, grads and state, and the
    /// references' buffers.
    floats_per_param: f64,
    /// The median of each stage over the compiles, in milliseconds.
    median: Stages,
    /// The first compile's stages, with cold caches (the standard library not yet parsed).
    first: Stages,
}

/// The milliseconds a compile spent in each stage.
#[derive(Clone, Copy, Default)]
struct Stages {
    check: f64,
    instantiate: f64,
    plan: f64,
    jit: f64,
}

impl Stages {
    fn total(&self) -> f64 {
        self.check + self.instantiate + self.plan + self.jit
    }

    fn describe(&self) -> String {
        format!(
            "{:.2} ms: check {:.2}, instantiate {:.2}, plan {:.2}, jit {:.2}",
            self.total(),
            self.check,
            self.instantiate,
            self.plan,
            self.jit
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "total_ms": self.total(),
            "check_ms": self.check,
            "instantiate_ms": self.instantiate,
            "plan_ms": self.plan,
            "jit_ms": self.jit,
        })
    }
}

/// Compiles `text` `COMPILES` times through parse and check, instantiate, plan and the JIT of
/// the step's passes (no state is allocated or initialised), and times each stage. The first
/// run prints the diagnostics and refuses a file with errors.
fn time_compile(
    name: String,
    text: String,
    stdlib_dir: Option<&std::path::Path>,
    layout: &Layout,
    backend: Backend,
) -> Result<Compile, String> {
    let mut runs: Vec<[f64; 4]> = Vec::with_capacity(COMPILES);
    let mut kept = None;
    for run in 0..COMPILES {
        let start = Instant::now();
        let (program, sources) = if run == 0 {
            if backend == Backend::Jit {
                jit::prepare();
            }
            let loaded = super::check_text(name.clone(), text.clone(), stdlib_dir, Expect::Pipeline)?;
            (loaded.checked.program, loaded.sources)
        } else {
            let mut sources = super::sources_with_stdlib(stdlib_dir)?;
            let id = sources.add(name.clone(), text.clone(), false);
            (crate::check::check_needed(&sources, id, Expect::Pipeline).program, sources)
        };
        let checked = Instant::now();
        let ir = match instantiate::instantiate(&program, layout) {
            Ok(ir) => ir,
            Err(diags) => {
                diagnostic::emit_to_stderr(&diags, &sources);
                return Err(String::new());
            }
        };
        let instantiated = Instant::now();
        let step_plan = plan::plan(&ir.graph, ir.groups.len(), plan::step_outputs(&ir, plan::Target::Params));
        let planned = Instant::now();
        // The interpreter runs the plan as it is: there is no code to make.
        if backend == Backend::Jit {
            let compiled = jit::compile(&ir.graph, &step_plan).map_err(|e| format!("internal error (a bug in optc): {e}"))?;
            std::hint::black_box(&compiled);
        }
        let done = Instant::now();
        runs.push([checked - start, instantiated - checked, planned - instantiated, done - planned].map(ms));
        if kept.is_none() {
            let state: usize = SlotLayout::new(&ir).lens().iter().sum();
            let probe = ProbePlan::new(step_plan.passes.iter().map(|p| (p.reads.as_slice(), p.writes.as_slice())));
            let floats = 2.0 + state as f64 / layout.total().max(1) as f64 + probe.buffers().max(4) as f64;
            kept = Some((program, sources, floats));
        }
    }
    let (program, sources, floats_per_param) = kept.ok_or("nothing was compiled")?;
    let stage = |i: usize| median(runs.iter().map(|r| r[i]).collect());
    let median = Stages { check: stage(0), instantiate: stage(1), plan: stage(2), jit: stage(3) };
    let first = runs.first().map_or_else(Stages::default, |r| Stages { check: r[0], instantiate: r[1], plan: r[2], jit: r[3] });
    Ok(Compile { program, sources, floats_per_param, median, first })
}

/// Times the `TIMED` loops `run(0)`, `run(1)`, ... in `ROUNDS` rounds, each loop one after the
/// other in every round, so the machine's drift hits them alike. Returns each one's median
/// time per call, in seconds.
fn time_rounds(mut run: impl FnMut(usize)) -> Vec<f64> {
    // Warm up (first touch of the pages, caches) and find how many calls fill a round.
    let reps: Vec<u32> = (0..TIMED)
        .map(|which| {
            run(which);
            let start = Instant::now();
            let mut calls = 0u32;
            while start.elapsed() < ROUND_TIME / 8 || calls < 2 {
                run(which);
                calls += 1;
            }
            let one = start.elapsed().as_secs_f64() / f64::from(calls);
            (ROUND_TIME.as_secs_f64() / one).ceil().clamp(1.0, 1e6) as u32
        })
        .collect();
    let mut times: Vec<Vec<f64>> = (0..TIMED).map(|_| Vec::with_capacity(ROUNDS)).collect();
    for _ in 0..ROUNDS {
        for (which, &reps) in reps.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..reps {
                run(which);
            }
            times[which].push(start.elapsed().as_secs_f64() / f64::from(reps));
        }
    }
    times.into_iter().map(median).collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Every number of a run.
struct Report {
    file: String,
    params: usize,
    leaves: usize,
    passes: usize,
    bytes_per_param: usize,
    threads: usize,
    backend: Backend,
    isa: Isa,
    compile: Compile,
    setup_ms: f64,
    pipeline_ns: f64,
    adam_ns: f64,
    probe_ns: f64,
    adam_probe_ns: f64,
    /// Bytes per parameter the pipeline-shaped probe moves (the pipeline's own).
    probe_bytes: usize,
    /// Whether the pipeline moves Adam's streams (one pass, p, g, m, v), so that its speed is
    /// comparable with the Adam loop's.
    adam_shaped: bool,
    /// Matrix products a step makes (Muon's Newton-Schulz iterations), and the time ndarray's
    /// `dot` takes for the same sizes.
    products: usize,
    products_ns: f64,
}

impl Report {
    /// GB/s of moving `bytes` per parameter in `ns` per parameter.
    fn gbps(bytes: usize, ns: f64) -> f64 {
        if ns > 0.0 { bytes as f64 / ns } else { 0.0 }
    }

    /// The pipeline's bandwidth over the probe's: the fraction of the memory floor reached. (The
    /// probe's streams are float32: for a pipeline that keeps bfloat16 state it moves more bytes
    /// than the pipeline, so comparing times would flatter the pipeline.)
    fn fraction_of_probe(&self) -> f64 {
        let probe = Report::gbps(self.probe_bytes, self.probe_ns);
        if probe > 0.0 { Report::gbps(self.bytes_per_param, self.pipeline_ns) / probe } else { 0.0 }
    }

    /// The Adam-shaped probe's time over the Adam loop's.
    fn adam_fraction(&self) -> f64 {
        self.adam_probe_ns / self.adam_ns
    }

    /// The pipeline's speed as a fraction of the Adam loop's.
    fn speed_vs_adam(&self) -> f64 {
        self.adam_ns / self.pipeline_ns
    }

    fn print(&self) {
        let c = &self.compile;
        let plural = |k: usize, what: &str| if k == 1 { format!("1 {what}") } else { format!("{k} {what}s") };
        outln!(
            "{}: {} parameters in {}, {}, {} bytes per parameter, {}, backend {}",
            self.file,
            self.params,
            plural(self.leaves, "leaf").replace("leafs", "leaves"),
            plural(self.passes, "pass").replace("passs", "passes"),
            self.bytes_per_param,
            plural(self.threads, "thread"),
            self.backend
        );
        let what = match self.backend {
            Backend::Jit => "source to machine code",
            Backend::Interp => "source to the interpreter's plan",
        };
        outln!("compile ({what}), first: {}", c.first.describe());
        outln!("compile ({what}), median of {COMPILES}: {}", c.median.describe());
        outln!("setup (instantiate, compile, state and its initial values): {:.2} ms", self.setup_ms);
        outln!("medians of {ROUNDS} interleaved rounds:");
        outln!("  {:<32} {:>9} {:>7}", "", "ns/param", "GB/s");
        let row = |what: &str, ns: f64, bytes: usize, note: String| {
            outln!("  {what:<32} {ns:>9.3} {:>7.1}  {note}", Report::gbps(bytes, ns));
        };
        // A step that multiplies matrices is bound by the products, not by streaming: its
        // measure is the products' line below.
        let mut note = if self.products > 0 { "multiplies matrices: see the products below".to_string() } else { format!("{:.2} of its probe", self.fraction_of_probe()) };
        if self.adam_shaped {
            note += &format!("; {:.2} of the Adam loop's speed", self.speed_vs_adam());
        }
        row("pipeline", self.pipeline_ns, self.bytes_per_param, note);
        row(
            &format!("Rust Adam loop ({})", self.isa),
            self.adam_ns,
            ADAM_BYTES,
            format!("{:.2} of its probe", self.adam_fraction()),
        );
        row(
            "probe, shaped like the pipeline",
            self.probe_ns,
            self.probe_bytes,
            format!("{} streams in {}", self.probe_bytes / 4, plural(self.passes, "pass").replace("passs", "passes")),
        );
        row("probe, shaped like Adam", self.adam_probe_ns, ADAM_BYTES, "7 streams in 1 pass".into());
        if self.products > 0 {
            outln!(
                "  {:<32} {:>9.3} {:>7}  {} products of the step's sizes: the step runs at {:.2} of their speed",
                "ndarray dot, the same products",
                self.products_ns,
                "",
                self.products,
                self.products_ns / self.pipeline_ns,
            );
        }
    }

    fn json(&self) -> serde_json::Value {
        let c = &self.compile;
        serde_json::json!({
            "file": self.file,
            "params": self.params,
            "leaves": self.leaves,
            "passes": self.passes,
            "bytes_per_param": self.bytes_per_param,
            "threads": self.threads,
            "backend": self.backend.to_string(),
            "isa": self.isa.name(),
            "rounds": ROUNDS,
            "compile": c.median.json(),
            "compile_first": c.first.json(),
            "setup_ms": self.setup_ms,
            "pipeline_ns_per_param": self.pipeline_ns,
            "pipeline_gbps": Report::gbps(self.bytes_per_param, self.pipeline_ns),
            "adam_ns_per_param": self.adam_ns,
            "adam_gbps": Report::gbps(ADAM_BYTES, self.adam_ns),
            "probe_ns_per_param": self.probe_ns,
            "probe_gbps": Report::gbps(self.probe_bytes, self.probe_ns),
            "adam_probe_ns_per_param": self.adam_probe_ns,
            "adam_probe_gbps": Report::gbps(ADAM_BYTES, self.adam_probe_ns),
            "fraction_of_probe": self.fraction_of_probe(),
            "adam_fraction": self.adam_fraction(),
            "speed_vs_adam": self.speed_vs_adam(),
            "adam_shaped": self.adam_shaped,
            "matrix_products": self.products,
            "products_ns_per_param": self.products_ns,
        })
    }
}

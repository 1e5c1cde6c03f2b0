//! `optc bench`: the time of one step of a pipeline, in ns per parameter and GB/s (from the
//! plan's bytes per element), beside two references measured on the same buffers: a
//! hand-written Rust Adam loop, and a streaming probe that moves Adam's seven streams (read p,
//! g, m, v; write p, m, v) with trivial arithmetic — the memory floor.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::check::Expect;
use crate::diagnostic;
use crate::ir::Layout;
use crate::jit;
use crate::runtime::{Backend, Optimizer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `.opt` file (`-` reads standard input).
    pub file: PathBuf,
    /// Parameters, in one leaf `bench.weight` (ignored with `--layout`).
    #[arg(long, value_name = "N", default_value_t = 1 << 22)]
    pub params: usize,
    /// A parameter layout instead of one leaf: `name:4x3,other:3`.
    #[arg(long, value_name = "SPEC")]
    pub layout: Option<String>,
    /// Threads the compiled passes (and the references) are split over.
    #[arg(long, value_name = "T", default_value_t = 1)]
    pub threads: usize,
    /// What runs the steps: `jit` or `interp`.
    #[arg(long, value_name = "BACKEND", default_value = "jit")]
    pub backend: Backend,
}

/// Timed runs; the median is reported.
const RUNS: usize = 7;

pub fn run(args: &Args, stdlib_dir: Option<&std::path::Path>) -> ExitCode {
    let loaded = super::read_input(&args.file)
        .and_then(|(name, text)| super::check_text(name, text, stdlib_dir, Expect::Pipeline));
    let super::Loaded { name, sources, checked, .. } = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let layout = match &args.layout {
        Some(spec) => Layout::parse(spec),
        None => Layout::parse(&format!("bench.weight:{}", args.params)),
    };
    let layout = match layout {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: bad layout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let n = layout.total();
    if n == 0 {
        eprintln!("error: the layout has no parameters");
        return ExitCode::FAILURE;
    }
    let mut params = pseudo_random(n, 1);
    let grads = pseudo_random(n, 2);
    let compile_start = Instant::now();
    let mut optimizer = match Optimizer::with_backend(&checked.program, &layout, &params, args.backend) {
        Ok(o) => o,
        Err(diags) => {
            diagnostic::emit_to_stderr(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    let setup = compile_start.elapsed();
    // Compiling the step's passes alone, the part a layout change would redo.
    let compile_start = Instant::now();
    let compiled = jit::compile(&optimizer.ir.graph, &optimizer.step_plan);
    let compile = compile_start.elapsed();
    if let Err(e) = compiled {
        eprintln!("error: internal error (a bug in optc): {e}");
        return ExitCode::FAILURE;
    }
    optimizer.set_threads(args.threads);
    let bytes = optimizer.step_plan.bytes_per_element();
    let passes = optimizer.step_plan.passes.len();
    let value = optimizer.needs_value().then_some(1.0f32);
    let mut failed = None;
    let pipeline_ns = time_per_param(n, || {
        if let Err(e) = optimizer.step(&mut params, &grads, value) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let threads = args.threads.max(1);
    let mut adam = AdamBuffers::new(n);
    let adam_ns = time_per_param(n, || adam.adam_step(threads));
    let probe_ns = time_per_param(n, || adam.probe_step(threads));
    let gbps = |ns: f64, bytes: usize| if ns > 0.0 { bytes as f64 / ns } else { 0.0 };
    outln!(
        "{name}: {n} parameters, {passes} pass(es), {bytes} bytes per parameter, {threads} thread(s), backend {}",
        args.backend
    );
    outln!(
        "  setup (instantiate, plan, compile, initial state): {:.2} ms, of which compiling the step: {:.2} ms",
        setup.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3
    );
    outln!("  {:<30} {pipeline_ns:8.3} ns/param  {:6.1} GB/s", "pipeline", gbps(pipeline_ns, bytes));
    outln!("  {:<30} {adam_ns:8.3} ns/param  {:6.1} GB/s", "Rust Adam loop (reference)", gbps(adam_ns, 28));
    outln!("  {:<30} {probe_ns:8.3} ns/param  {:6.1} GB/s", "streaming probe, 7 streams", gbps(probe_ns, 28));
    ExitCode::SUCCESS
}

/// Floats in [-1, 1) from a fixed seed.
fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The median over `RUNS` runs of the time of one call of `f`, in ns per parameter. Each run
/// repeats `f` until it has taken at least 50 ms (after a few warm-up calls).
fn time_per_param(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    f();
    let one = start.elapsed().as_secs_f64().max(1e-9);
    let reps = ((0.05 / one).ceil() as usize).clamp(1, 100_000);
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2] * 1e9 / n as f64
}

/// A loop over matching chunks of p, g, m and v.
type ChunkLoop<'a> = dyn Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync + 'a;

/// Buffers for the reference loops.
struct AdamBuffers {
    p: Vec<f32>,
    g: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    count: i32,
}

impl AdamBuffers {
    fn new(n: usize) -> AdamBuffers {
        AdamBuffers { p: pseudo_random(n, 3), g: pseudo_random(n, 4), m: vec![0.0; n], v: vec![0.0; n], count: 0 }
    }

    /// Runs `body` on matching chunks of the four buffers, over `threads` threads (fewer when
    /// a thread would get less than the runtime's minimum of blocks, as for the pipeline).
    fn chunks(&mut self, threads: usize, body: &ChunkLoop<'_>) {
        let n = self.p.len();
        let threads = threads.min(n / (8 * crate::ir::plan::BLOCK)).max(1);
        let per = n.div_ceil(threads.max(1)).max(1);
        let AdamBuffers { p, g, m, v, .. } = self;
        if threads <= 1 {
            body(p, g, m, v);
            return;
        }
        std::thread::scope(|scope| {
            for (((p, g), m), v) in p.chunks_mut(per).zip(g.chunks(per)).zip(m.chunks_mut(per)).zip(v.chunks_mut(per)) {
                scope.spawn(move || body(p, g, m, v));
            }
        });
    }

    /// Adam as one writes it by hand: one loop, bias corrections as per-step constants.
    fn adam_step(&mut self, threads: usize) {
        self.count += 1;
        let (lr, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-8f32);
        let c1 = 1.0 - b1.powi(self.count);
        let c2 = 1.0 - b2.powi(self.count);
        self.chunks(threads, &|p, g, m, v| {
            for i in 0..p.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
        });
    }

    /// Adam's seven streams with trivial arithmetic.
    fn probe_step(&mut self, threads: usize) {
        self.chunks(threads, &|p, g, m, v| {
            for i in 0..p.len() {
                let (gi, mi, vi) = (g[i], m[i], v[i]);
                m[i] = gi + mi;
                v[i] = gi - vi;
                p[i] += mi;
            }
        });
    }
}

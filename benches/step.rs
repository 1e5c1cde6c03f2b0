//! What `optc bench` measures, as a criterion bench: the step of `adam` and of
//! `clip_by_global_norm` + `adamw` (JIT, one thread) at 2^14 and 2^22 parameters, of
//! `adafactor` and `muon` on one matrix, the
//! hand-written Adam loop and the streaming probes on the same sizes, and the time from source
//! to callable code of a 4-part chain. `cargo bench --bench step -- --test` runs each once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use optc::arena::Arena;
use optc::ir::plan::{self, Plan};
use optc::ir::{Layout, instantiate};
use optc::native::{self, Adam, Isa, ProbePlan};
use optc::runtime::Optimizer;

const ADAM: &str = "adam(learning_rate=1e-3)";
const CLIP_ADAMW: &str = "chain(clip_by_global_norm(max_norm=1.0), adamw(learning_rate=1e-3))";
const CHAIN4: &str = "chain(clip_by_global_norm(max_norm=1.0), scale_by_adam(), \
                      add_decayed_weights(weight_decay=1e-4), scale_by_learning_rate(learning_rate=1e-3))";
const SIZES: [usize; 2] = [1 << 14, 1 << 22];

fn layout(n: usize) -> Layout {
    match Layout::parse(&format!("bench.layer0.weight:{n}")) {
        Ok(layout) => layout,
        Err(e) => panic!("bad layout: {e}"),
    }
}

/// Checks `text` against the embedded standard library; panics on errors.
fn program(text: &str) -> optc::Program {
    let (_, checked) = optc::check_str("bench.opt", text);
    assert!(!checked.has_errors(), "`{text}` has errors: {:?}", checked.diagnostics);
    checked.program
}

/// Parse and check, instantiate, plan and compile the step's passes: source to callable code.
fn compile(text: &str, layout: &Layout) -> (Plan, optc::jit::CompiledStep) {
    let ir = match instantiate::instantiate(&program(text), layout) {
        Ok(ir) => ir,
        Err(diags) => panic!("instantiation failed: {diags:?}"),
    };
    let step_plan = plan::plan(&ir.graph, ir.groups.len(), plan::step_outputs(&ir, plan::Target::Params));
    match optc::jit::compile(&ir.graph, &step_plan) {
        Ok(compiled) => (step_plan, compiled),
        Err(e) => panic!("the JIT failed: {e}"),
    }
}

/// Params and grads at arena indices 0 and 1, as the runtime expects them.
fn params_and_grads(n: usize) -> Arena {
    let mut arena = Arena::new(&[n, n], 0);
    for (i, b) in arena.slices_mut().into_iter().enumerate() {
        native::pseudo_random(b, i as u64 + 1);
    }
    arena
}

fn pipelines(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (name, text) in [("adam", ADAM), ("clip_adamw", CLIP_ADAMW)] {
        let program = program(text);
        for n in SIZES {
            let mut buffers = params_and_grads(n);
            let params = buffers.get(0).unwrap_or_default();
            let mut optimizer = match Optimizer::new(&program, &layout(n), params) {
                Ok(o) => o,
                Err(diags) => panic!("{name}: {diags:?}"),
            };
            optimizer.set_threads(1);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    if let [p, g] = buffers.slices_mut().as_mut_slice() {
                        optimizer.step(p, g, None).unwrap_or_else(|e| panic!("{name}: {e}"));
                    }
                })
            });
        }
    }
    group.finish();
}

/// The shape-aware optimizers on one matrix: Adafactor's row programs (2048x2048) and Muon's
/// whole-leaf Newton-Schulz iterations (256x256, each step 15 products).
fn shaped(c: &mut Criterion) {
    let mut group = c.benchmark_group("shaped");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (name, text, side) in [("adafactor", "adafactor(learning_rate=0.01)", 2048), ("muon", "muon(learning_rate=0.01)", 256)] {
        let n = side * side;
        let layout = Layout::parse(&format!("w:{side}x{side}")).unwrap_or_else(|e| panic!("bad layout: {e}"));
        let mut buffers = params_and_grads(n);
        let params = buffers.get(0).unwrap_or_default();
        let mut optimizer = Optimizer::new(&program(text), &layout, params).unwrap_or_else(|diags| panic!("{name}: {diags:?}"));
        optimizer.set_threads(1);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(name, format!("{side}x{side}")), |b| {
            b.iter(|| {
                if let [p, g] = buffers.slices_mut().as_mut_slice() {
                    optimizer.step(p, g, None).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            })
        });
    }
    group.finish();
}

fn references(c: &mut Criterion) {
    let isa = Isa::best();
    let mut group = c.benchmark_group("native");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let (clip_plan, _) = compile(CLIP_ADAMW, &layout(n));
        let probe = ProbePlan::new(clip_plan.passes.iter().map(|p| (p.reads.as_slice(), p.writes.as_slice())));
        let mut arena = Arena::new(&vec![n; probe.buffers().max(4)], 0);
        for (i, b) in arena.slices_mut().into_iter().take(2).enumerate() {
            native::pseudo_random(b, i as u64 + 3);
        }
        group.throughput(Throughput::Elements(n as u64));
        let mut count = 0;
        group.bench_function(BenchmarkId::new(format!("adam_{isa}"), n), |b| {
            b.iter(|| {
                count += 1;
                if let [p, g, m, v, ..] = arena.slices_mut().as_mut_slice() {
                    native::adam(isa, &Adam::default().at(count), p, g, m, v, 1);
                }
            })
        });
        group.bench_function(BenchmarkId::new("probe_adam", n), |b| {
            b.iter(|| {
                if let [p, g, m, v, ..] = arena.slices_mut().as_mut_slice() {
                    native::adam_probe(isa, p, g, m, v, 1);
                }
            })
        });
        group.bench_function(BenchmarkId::new("probe_clip_adamw", n), |b| {
            b.iter(|| black_box(probe.run(isa, &mut arena, 1)))
        });
    }
    group.finish();
}

fn compile_time(c: &mut Criterion) {
    let layout = layout(1 << 22);
    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    group.bench_function("chain4_source_to_code", |b| b.iter(|| black_box(compile(CHAIN4, &layout))));
    group.bench_function("chain4_check_only", |b| b.iter(|| black_box(program(CHAIN4))));
    // What the check spends on parsing: every stdlib file, as `check` parses them each time.
    let mut sources = optc::SourceMap::new();
    optc::stdlib::load(&mut sources);
    let stdlib: Vec<_> = sources.files().map(|(id, f)| (id, f.text.clone())).collect();
    group.bench_function("stdlib_parse_only", |b| {
        b.iter(|| {
            for (id, text) in &stdlib {
                black_box(optc::syntax::parse(*id, text));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pipelines, shaped, references, compile_time);
criterion_main!(benches);

//! The Cranelift backend: each pass of a [`Plan`] becomes one machine-code function, a *kernel*,
//! that runs the pass's element programs over a list of [`Task`]s (one block of one leaf each).
//! Inside a block the kernel runs an unrolled `f32x4` body, then a scalar tail; reductions keep
//! the interpreter's `LANES` accumulators per block and hand them back as partials, which the
//! runtime combines in block order with the interpreter's own code. Uniform and per-leaf values
//! are computed outside, once per step, and come in as each task's row of inputs.
//!
//! [`compile_with`] says how the kernels are built, compiled and defined.
//!
//! Architecture invariants:
//! - The crate's only `unsafe` lives here: [`CompiledStep::run_pass`] checks every index the
//!   machine code will use (programs, input rows, element ranges, stream lengths, partials)
//!   before calling it, so no input to the safe API can make the kernel touch memory it
//!   does not own.
//! - Values are `f32` lanes: booleans are 0.0 or 1.0, integers (only ever broadcast from
//!   uniforms or leaf sizes) are converted as the interpreter converts them. Every op
//!   computes exactly what `ir::op::eval` computes on those values: `fmath`'s functions are
//!   emitted from the very code `eval` runs (see `math`), and the other ops Cranelift has no
//!   instruction for call the very functions `eval` calls.
//!
//! (`unsafe_code` is denied for the crate and allowed for this module only, in `lib.rs`.)

mod asm;
mod clif;
mod kernel;
mod lower;
mod math;
mod pool;

use std::fmt;
use std::sync::OnceLock;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::default_libcall_names;

use crate::arena::Arena;
use crate::ir::buffers::{Leaves, Params, SlotLayout};
use crate::ir::plan::{BLOCK, LANES, Plan};
use crate::ir::axes::Collapsed;
use crate::ir::{Graph, NodeId, Reduce};

/// One block of one leaf, for one program of a pass: the unit of work and of threading.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Task {
    /// Index of the program in the pass.
    pub program: u64,
    /// First element of the block in the flat state buffers.
    pub start: u64,
    /// Number of elements, at most [`BLOCK`].
    pub len: u64,
    /// Where the program's inputs for this block's leaf start in the inputs array.
    pub inputs: u64,
    /// The block's leaf: its row of the leaf table gives where its parameters, gradients,
    /// updates and state are.
    pub leaf: u64,
    /// For a row program's task, the row of `Buffers::rows` (and of the reduced table) it lies
    /// in: where its reduced streams keep the row.
    pub row: u64,
}

/// The element buffers a kernel reads and writes. Element state is updated in place.
pub struct Buffers<'a, 'b> {
    /// Parameters, gradients and updates, one slice per leaf.
    pub leaves: &'a mut Leaves<'b>,
    /// Where each leaf starts in the flat order (a task's `start` counts from there).
    pub offsets: &'a [usize],
    /// Element slots by slot id (slots of other levels may be empty).
    pub slots: &'a mut Arena,
    /// Where each slot keeps each leaf.
    pub slot_layout: &'a SlotLayout,
    /// The values of reduced streams (`Stream::Reduced`), read or accumulated in place.
    pub reduced: &'a mut [f32],
    /// Rows of leaves, for tasks of row programs (a task's `row`).
    pub rows: &'a [TableRow],
    /// Room for the leaf and reduced tables, kept between calls.
    pub table: &'a mut Vec<u64>,
}

/// A memory stream of a kernel, found in the task's row of the leaf table: the leaf's own
/// parameters, gradients and updates, and where each state slot keeps the leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    Grads,
    Params,
    Updates,
    Slot(u32),
    /// The `k`-th value of a row program stored reduced over axes that varies along a row:
    /// read, or accumulated (a reduction over axes other than the last), in `Buffers::reduced`.
    Reduced(u32),
}

impl Stream {
    /// The stream's place in a row of the leaf table (rows hold the grads, params and updates,
    /// then every slot), or, for a reduced stream, in a row of the reduced table.
    fn place(self) -> usize {
        match self {
            Stream::Grads => 0,
            Stream::Params => 1,
            Stream::Updates => 2,
            Stream::Reduced(k) => k as usize,
            Stream::Slot(s) => 3 + s as usize,
        }
    }
}

/// One row of a leaf, for the tasks of row programs: where each reduced stream keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableRow {
    pub leaf: usize,
    /// The row's first element, counted from the leaf's first.
    pub first: usize,
    /// Where each reduced stream's run for the row starts in `Buffers::reduced`.
    pub reduced: Vec<usize>,
}

/// What the runtime needs to know about one program of a compiled pass.
#[derive(Clone, Debug)]
pub struct ProgramInfo {
    /// The leaf group the program runs on.
    pub group: usize,
    /// Uniform and per-leaf nodes the program reads, in the order of a task's input row.
    pub inputs: Vec<NodeId>,
    /// Reductions whose partials the program writes, in partial-row order.
    pub reductions: Vec<(NodeId, Reduce)>,
    /// Streams the program reads or writes.
    pub streams: Vec<Stream>,
    /// Whether it adds updates to the parameters (which must then be writable).
    pub writes_params: bool,
    /// A row program (`GroupProgram::rows`): its tasks are blocks of rows.
    pub rows: bool,
    /// Its reduced streams, in order: the value read (or, with the reduction's kind, the
    /// reduction over axes accumulated), and the axes it is constant along.
    pub reduced: Vec<(NodeId, Collapsed, Option<Reduce>)>,
    /// The axes of the result of each reduction over axes it computes, by node.
    pub axis_reductions: Vec<(NodeId, Collapsed)>,
}

/// Signature of a kernel: tasks, number of tasks, entries per row of the leaf table, inputs,
/// partials, leaf table (a row per leaf, an address per stream: where the stream keeps the
/// leaf, moved back by the leaf's flat offset, so that a task's flat `start` indexes it),
/// reduced table (a row per row of a leaf, an address per reduced stream, moved back by the
/// row's flat offset).
type KernelFn = unsafe extern "C" fn(*const Task, u64, u64, *const f32, *mut f32, *const u64, *const u64);

/// One pass, compiled.
pub struct CompiledPass {
    kernel: KernelFn,
    pub programs: Vec<ProgramInfo>,
    /// Reductions per task in the partials array (each takes `LANES` floats).
    pub stride: usize,
    /// Reduced streams: entries per row of the reduced table.
    pub reduced: usize,
    /// The function's Cranelift IR, annotated with the step IR it comes from (when compiled
    /// with [`Listing::clif`]).
    pub clif: Option<String>,
    /// The machine code as Cranelift's disassembly (when compiled with [`Listing::asm`]).
    pub asm: Option<String>,
}

/// The passes of a plan as machine code.
pub struct CompiledStep {
    pub passes: Vec<CompiledPass>,
    /// Owns the code; freed on drop.
    module: Option<JITModule>,
}

// SAFETY: after `finalize_definitions` the module is never used again except to free its
// memory on drop; the kernels are immutable code that reads only the memory it is given.
unsafe impl Send for CompiledStep {}
// SAFETY: as for Send: `&CompiledStep` gives access only to immutable code and metadata.
unsafe impl Sync for CompiledStep {}

impl Drop for CompiledStep {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the kernels' function pointers are private to this value and die with it.
            unsafe { module.free_memory() };
        }
    }
}

impl fmt::Debug for CompiledStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledStep").field("passes", &self.passes.len()).finish()
    }
}

/// A failure of code generation: always a bug in optc, reported with the function's IR.
#[derive(Clone, Debug, PartialEq)]
pub enum JitError {
    /// The host machine is not one Cranelift can generate code for.
    Host(String),
    /// Cranelift rejected a kernel.
    Codegen { pass: usize, message: String, clif: String },
    /// The JIT module failed to declare, define or finalize.
    Module(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Host(m) => write!(f, "cannot generate code for this machine: {m}"),
            JitError::Codegen { pass, message, clif } => {
                write!(f, "code generation failed for pass {pass}: {message}\n{clif}")
            }
            JitError::Module(m) => write!(f, "JIT module error: {m}"),
        }
    }
}

impl std::error::Error for JitError {}

/// Why [`CompiledStep::run_pass`] refused to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    NoSuchPass(usize),
    /// A program uses a state slot the buffers do not have.
    NoSuchSlot(u32),
    /// A task names a program the pass does not have.
    NoSuchProgram { task: usize, program: u64 },
    /// A task is longer than a block.
    TooLong { task: usize, len: u64 },
    /// A task's input row runs past the inputs array.
    Inputs { task: usize },
    /// A task's elements run past a buffer, or its leaf has none.
    OutOfBounds { task: usize, stream: Stream },
    /// A program adds updates to parameters that were given read-only.
    ReadOnlyParams,
    /// The partials array is too short for the tasks.
    Partials { needed: usize, found: usize },
    /// Two tasks cover the same elements (not allowed when they may run on different threads).
    Overlap { task: usize },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NoSuchPass(k) => write!(f, "no pass {k}"),
            RunError::NoSuchSlot(s) => write!(f, "the buffers have no state slot #{s}"),
            RunError::NoSuchProgram { task, program } => write!(f, "task {task} names program {program}, which the pass does not have"),
            RunError::TooLong { task, len } => write!(f, "task {task} has {len} elements, more than a block ({BLOCK})"),
            RunError::Inputs { task } => write!(f, "task {task}'s input row runs past the inputs"),
            RunError::OutOfBounds { task, stream } => write!(f, "task {task} runs past the end of {stream:?}"),
            RunError::ReadOnlyParams => write!(f, "a program writes parameters that were given read-only"),
            RunError::Partials { needed, found } => write!(f, "the partials need {needed} floats, found {found}"),
            RunError::Overlap { task } => write!(f, "task {task} overlaps another task"),
        }
    }
}

impl std::error::Error for RunError {}

/// Compiles every pass of `plan` (a plan of `graph`) to a kernel.
pub fn compile(graph: &Graph, plan: &Plan) -> Result<CompiledStep, JitError> {
    compile_with(graph, plan, Listing::default())
}

/// What [`compile_with`] keeps of each pass for a person to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listing<'s> {
    /// The annotated Cranelift IR ([`CompiledPass::clif`]).
    pub clif: bool,
    /// The disassembly ([`CompiledPass::asm`]).
    pub asm: bool,
    /// The sources the graph was instantiated from: the IR then quotes the `.opt` statement
    /// each run of instructions comes from.
    pub sources: Option<&'s crate::source::SourceMap>,
}

/// As [`compile`], keeping the listings asked for.
///
/// The recipe is cranelift-jit-demo's (build each function, define it, finalize all), except
/// that the functions are compiled to machine code in parallel (over up to one thread per
/// core) between building and defining.
pub fn compile_with(graph: &Graph, plan: &Plan, listing: Listing) -> Result<CompiledStep, JitError> {
    let isa = host_isa()?;
    let mut builder = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    math::register(&mut builder);
    let mut module = JITModule::new(builder);
    let math = math::declare(&mut module)?;
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    let mut built = Vec::with_capacity(plan.passes.len());
    for (index, pass) in plan.passes.iter().enumerate() {
        built.push(kernel::build(&mut module, &mut fctx, &math, graph, pass, &plan.outputs.storage, index, listing)?);
    }
    // Compiling to machine code needs no module, so the kernels compile in parallel.
    let large = if built.iter().any(|k| k.instructions() > LARGE_KERNEL) { Some(large_kernel_isa()?) } else { None };
    let compiled = crate::parallel::map(built.iter_mut().collect(), crate::parallel::cores(), |k| {
        let isa = match &large {
            Some(large) if k.instructions() > LARGE_KERNEL => large,
            _ => &isa,
        };
        k.compile(&**isa, listing.asm)
    });
    compiled.into_iter().collect::<Result<(), _>>()?;
    for kernel in &built {
        kernel.define(&mut module)?;
    }
    module.finalize_definitions().map_err(|e| JitError::Module(e.to_string()))?;
    let passes = built
        .into_iter()
        .map(|k| {
            let code = module.get_finalized_function(k.id);
            // SAFETY: `code` is the finalized function `kernel::build` defined with exactly the
            // signature of `KernelFn` (seven pointer-sized integers, the ISA's C calling
            // convention, no returns).
            let kernel = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
            CompiledPass { kernel, programs: k.programs, stride: k.stride, reduced: k.reduced, clif: k.clif, asm: k.asm }
        })
        .collect();
    Ok(CompiledStep { passes, module: Some(module) })
}

/// Starts, on a thread of its own, what the first [`compile`] of a process would otherwise do
/// on the way: detecting the host and making the first code (paging in the code generator and
/// the JIT's memory), by compiling an empty pass. A command that is about to check a file and
/// then compile it calls this first, so the work overlaps the front end. Does nothing after
/// the first call.
pub fn prepare() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let warm_up = || {
            let plan = Plan { passes: vec![crate::ir::plan::Pass::default()], ..Plan::default() };
            // A failure here is met again, and reported, by the compile that needs the code.
            let _ = compile(&Graph::default(), &plan);
        };
        // If no thread can be started, the first compile does this work itself.
        let _ = std::thread::Builder::new().name("optc-jit-prepare".into()).spawn(warm_up);
    });
}

/// The host's instruction set with optc's settings, made once per process: every compile
/// would otherwise detect the CPU's features and build the settings again.
fn host_isa() -> Result<OwnedTargetIsa, JitError> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| make_isa("backtracking")).clone().map_err(JitError::Host)
}

/// Kernels with more instructions than this are register-allocated in a single pass: the
/// backtracking allocator's time grows faster than the kernel (a chain of 1,000 AdamWs fused
/// into one loop took half a minute), the single-pass one's linearly.
const LARGE_KERNEL: usize = 20_000;

/// The host's instruction set for kernels larger than [`LARGE_KERNEL`].
fn large_kernel_isa() -> Result<OwnedTargetIsa, JitError> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| make_isa("single_pass")).clone().map_err(JitError::Host)
}

fn make_isa(regalloc: &str) -> Result<OwnedTargetIsa, String> {
    {
        let mut flags = settings::builder();
        for (name, value) in [
            ("regalloc_algorithm", regalloc),
            ("opt_level", "speed"),
            ("use_colocated_libcalls", "false"),
            ("is_pic", "false"),
            ("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }),
        ] {
            flags.set(name, value).map_err(|e| format!("setting {name}: {e}"))?;
        }
        cranelift_native::builder()?.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
    }
}

impl CompiledStep {
    /// Runs pass `pass` on `tasks`, split over `threads` threads (contiguous runs of tasks).
    /// `inputs` holds the input rows the tasks point at; `partials` receives, for task `t` and
    /// reduction `r` of its program, the `LANES` accumulators at `(t * stride + r) * LANES`.
    pub fn run_pass(
        &self,
        pass: usize,
        tasks: &[Task],
        inputs: &[f32],
        buffers: Buffers,
        partials: &mut [f32],
        threads: usize,
    ) -> Result<(), RunError> {
        let compiled = self.passes.get(pass).ok_or(RunError::NoSuchPass(pass))?;
        let needed = tasks.len() * compiled.stride * LANES;
        if partials.len() < needed {
            return Err(RunError::Partials { needed, found: partials.len() });
        }
        let Buffers { leaves, offsets, slots, slot_layout, reduced, rows, table } = buffers;
        for program in &compiled.programs {
            for &stream in &program.streams {
                if let Stream::Slot(s) = stream
                    && s as usize >= slots.len()
                {
                    return Err(RunError::NoSuchSlot(s));
                }
            }
        }
        if !leaves.params.is_mut() && compiled.programs.iter().any(|p| p.writes_params) {
            return Err(RunError::ReadOnlyParams);
        }
        let leaf_len = |leaf: usize| -> Option<usize> { leaves.params.get(leaf).map(<[f32]>::len) };
        // The elements of a leaf a stream holds, if it holds the leaf: its own buffer, or its
        // range of a slot's buffer (which must lie inside the buffer).
        let held = |s: Stream, leaf: usize| -> Option<usize> {
            match s {
                Stream::Grads => leaves.grads.get(leaf).map(|b| b.len()),
                Stream::Params => leaf_len(leaf),
                Stream::Updates => leaves.updates.get(leaf).map(|b| b.len()),
                Stream::Slot(i) => {
                    let range = slot_layout.range(i as usize, leaf)?;
                    let words = slot_layout.storage(i as usize).words(range.end);
                    (words <= slots.get(i as usize).map_or(0, <[f32]>::len)).then_some(range.len())
                }
                // Checked against the task's row of its leaf instead.
                Stream::Reduced(_) => None,
            }
        };
        // The elements of a leaf every stream of a program (but reduced ones) holds, for the
        // last (program, leaf) seen: tasks come in runs of one leaf.
        let mut limit: Option<((u64, usize), Option<usize>)> = None;
        // Reductions over axes accumulate into reduced streams that tasks of one leaf share:
        // each task's leaf and the span of reduced memory it touches decide where the tasks
        // may be split over threads.
        let accumulates = compiled.programs.iter().any(|p| p.reduced.iter().any(|r| r.2.is_some()));
        let mut shared: Vec<(usize, u64, u64)> = Vec::new();
        for (t, task) in tasks.iter().enumerate() {
            let program = usize::try_from(task.program)
                .ok()
                .and_then(|p| compiled.programs.get(p))
                .ok_or(RunError::NoSuchProgram { task: t, program: task.program })?;
            if task.len > BLOCK as u64 {
                return Err(RunError::TooLong { task: t, len: task.len });
            }
            let row_end = task.inputs.checked_add(program.inputs.len() as u64);
            if row_end.is_none_or(|end| end > inputs.len() as u64) {
                return Err(RunError::Inputs { task: t });
            }
            let leaf = usize::try_from(task.leaf).unwrap_or(usize::MAX);
            // A row program's task: the row of its leaf it lies in. (Every task of a pass with
            // reduced streams loads its row of the reduced table, which has at least one.)
            if compiled.reduced > 0 && task.row >= rows.len().max(1) as u64 {
                return Err(RunError::OutOfBounds { task: t, stream: Stream::Reduced(0) });
            }
            let row = usize::try_from(task.row).ok().and_then(|r| rows.get(r)).filter(|row| row.leaf == leaf);
            // Where the task's block starts and ends in its leaf, counted from the leaf's start.
            let first = offsets.get(leaf).and_then(|&o| task.start.checked_sub(o as u64));
            let end = first.and_then(|a| a.checked_add(task.len));
            let held_by_all = match limit {
                Some((key, held)) if key == (task.program, leaf) => held,
                _ => {
                    let lens: Option<Vec<usize>> = program.streams.iter().filter(|s| !matches!(s, Stream::Reduced(_))).map(|s| held(*s, leaf)).collect();
                    let held = lens.map(|lens| lens.into_iter().min().unwrap_or(usize::MAX));
                    limit = Some(((task.program, leaf), held));
                    held
                }
            };
            let all_fit = end.zip(held_by_all).is_some_and(|(end, len)| end <= len as u64);
            let mut span = (u64::MAX, 0);
            for &stream in &program.streams {
                let fits = match stream {
                    // The run of the row the block lies in, from the block's column.
                    Stream::Reduced(k) => {
                        let run = row
                            .and_then(|row| Some((*row.reduced.get(k as usize)? as u64, first?.checked_sub(row.first as u64)?)))
                            .and_then(|(at, column)| at.checked_add(column));
                        let end = run.and_then(|at| at.checked_add(task.len)).filter(|end| *end <= reduced.len() as u64);
                        if let (Some(at), Some(end)) = (run, end) {
                            span = (span.0.min(at), span.1.max(end));
                        }
                        end.is_some()
                    }
                    // (Looked at one by one only to name the one that does not fit.)
                    _ => all_fit || end.zip(held(stream, leaf)).is_some_and(|(end, len)| end <= len as u64),
                };
                if !fits {
                    return Err(RunError::OutOfBounds { task: t, stream });
                }
            }
            if accumulates {
                shared.push((leaf, span.0, span.1));
            }
        }
        let threads = threads.clamp(1, tasks.len().max(1));
        // Tasks in element order are disjoint at a glance (the common case: one group); others
        // are sorted first. (Ends cannot overflow: every task lies in a buffer, checked above.)
        let in_order = tasks.windows(2).all(|w| w[0].start + w[0].len <= w[1].start);
        if threads > 1 && !in_order {
            let mut ranges: Vec<(u64, u64, usize)> = tasks.iter().enumerate().map(|(t, k)| (k.start, k.start + k.len, t)).collect();
            ranges.sort_unstable();
            for w in ranges.windows(2) {
                if w[1].0 < w[0].1 {
                    return Err(RunError::Overlap { task: w[1].2 });
                }
            }
        }
        // The leaf table: per leaf, where each stream keeps it, moved back by the leaf's flat
        // offset, as an integer (the kernel adds the task's flat `start` back; no pointer
        // outside a buffer is formed here). Streams a leaf is not in stay 0: the checks above
        // found every stream a task's program uses holding its leaf.
        let row_len = 3 + slots.len();
        let reduced_len = compiled.reduced;
        table.clear();
        table.resize(offsets.len() * row_len + rows.len().max(1) * reduced_len, 0);
        let slot_starts: Vec<u64> = slots.slices_mut().into_iter().map(|b| b.as_mut_ptr() as usize as u64).collect();
        let (leaf_table, reduced_table) = table.split_at_mut(offsets.len() * row_len);
        for (leaf, row) in leaf_table.chunks_exact_mut(row_len).enumerate() {
            let back = |address: u64, at: usize| address.wrapping_add(4 * at as u64).wrapping_sub(4 * offsets[leaf] as u64);
            if let Some(g) = leaves.grads.get(leaf) {
                row[0] = back(g.as_ptr() as usize as u64, 0);
            }
            // Writable parameters lend a pointer that may write.
            let params = match &mut leaves.params {
                Params::Mut(p) => p.get_mut(leaf).map(|p| p.as_mut_ptr().cast_const()),
                Params::Ref(p) => p.get(leaf).map(|p| p.as_ptr()),
            };
            if let Some(p) = params {
                row[1] = back(p as usize as u64, 0);
            }
            if let Some(u) = leaves.updates.get_mut(leaf) {
                row[2] = back(u.as_mut_ptr() as usize as u64, 0);
            }
            for (s, &start) in slot_starts.iter().enumerate() {
                if let Some(at) = slot_layout.start(s, leaf) {
                    // A bfloat16 slot's elements are 2 bytes apart.
                    let bytes = slot_layout.storage(s).bytes() as u64;
                    row[3 + s] = start.wrapping_add(bytes * at as u64).wrapping_sub(bytes * offsets[leaf] as u64);
                }
            }
        }
        // The reduced table: per row of a leaf, each reduced stream moved back by the row's first
        // element (flat), so that a task's flat `start` lands on its column.
        let reduced_start = reduced.as_mut_ptr() as usize as u64;
        if reduced_len > 0 {
            for (table_row, row) in reduced_table.chunks_exact_mut(reduced_len).zip(rows) {
                let Some(&offset) = offsets.get(row.leaf) else { continue };
                let first = (offset + row.first) as u64;
                for (entry, &at) in table_row.iter_mut().zip(&row.reduced) {
                    *entry = reduced_start.wrapping_add(4 * at as u64).wrapping_sub(4 * first);
                }
            }
        }
        let launch = Launch {
            kernel: compiled.kernel,
            row_len: row_len as u64,
            inputs: inputs.as_ptr(),
            leaf_table: leaf_table.as_ptr(),
            reduced_table: reduced_table.as_ptr(),
        };
        let per_task = compiled.stride * LANES;
        let base = partials.as_mut_ptr();
        if threads == 1 {
            // SAFETY: every task was checked above: its program exists, its input row lies in
            // `inputs`, its elements lie in every stream its program touches (a reduced stream's
            // run for its row in `reduced`), and the partials have `per_task` floats for each
            // task. The grads are only read.
            unsafe { launch.run(tasks, base) };
            return Ok(());
        }
        let starts = match chunk_starts(tasks.len(), threads, accumulates.then_some(shared.as_slice())) {
            Some(starts) => starts,
            None => {
                // SAFETY: as for one thread above.
                unsafe { launch.run(tasks, base) };
                return Ok(());
            }
        };
        let ends = starts.iter().skip(1).copied().chain([tasks.len()]);
        let chunks: Vec<(&[Task], *mut f32)> = starts
            .iter()
            .zip(ends)
            // SAFETY: a chunk starting at task `start` has its partial rows start there, and
            // they stay within the `needed` floats checked above.
            .map(|(&start, end)| (&tasks[start..end], unsafe { base.add(start * per_task) }))
            .collect();
        // SAFETY: as for one thread; in addition the tasks' element ranges are disjoint (checked
        // above; distinct leaves have distinct buffers, which `&mut` guarantees do not overlap),
        // each chunk owns its own run of partial rows, and where reduced streams are written
        // (accumulated) each chunk's span of reduced memory is disjoint from the others'
        // (`chunk_starts`), so no two threads touch memory another one writes.
        unsafe { pool::run_chunks(&launch, &chunks) };
        Ok(())
    }
}

/// Where each of up to `threads` chunks of `n` tasks starts: even runs of tasks, or, where tasks
/// write reduced streams (`shared`: each task's leaf and span of reduced memory), runs cut only
/// between leaves whose spans of reduced memory do not overlap. `None` where they cannot be
/// split so.
fn chunk_starts(n: usize, threads: usize, shared: Option<&[(usize, u64, u64)]>) -> Option<Vec<usize>> {
    let per_thread = n.div_ceil(threads.max(1)).max(1);
    let Some(shared) = shared else { return Some((0..n).step_by(per_thread).collect()) };
    let mut starts = vec![0];
    let mut at = per_thread;
    while at < n {
        // Move the cut forward to the next change of leaf.
        while at < n && shared[at].0 == shared[at - 1].0 {
            at += 1;
        }
        if at < n {
            starts.push(at);
        }
        at += per_thread;
    }
    // Each chunk's span of reduced memory (empty spans are (MAX, 0)), disjoint from the others'.
    let ends = starts.iter().skip(1).copied().chain([n]);
    let mut spans: Vec<(u64, u64)> = starts
        .iter()
        .zip(ends)
        .map(|(&s, e)| shared[s..e].iter().fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t.1), hi.max(t.2))))
        .filter(|(lo, hi)| lo < hi)
        .collect();
    spans.sort_unstable();
    let disjoint = spans.windows(2).all(|w| w[0].1 <= w[1].0);
    (starts.len() > 1 && disjoint).then_some(starts)
}

/// A kernel with the pointers of one `run_pass` call.
struct Launch {
    kernel: KernelFn,
    row_len: u64,
    inputs: *const f32,
    leaf_table: *const u64,
    reduced_table: *const u64,
}

// SAFETY: shared only between the threads of one `run_pass`, which write disjoint memory.
unsafe impl Sync for Launch {}

impl Launch {
    /// Runs the kernel on `chunk`, its partial rows starting at `partials`.
    ///
    /// # Safety
    /// Every task of `chunk` must have been checked by `run_pass`, and no other thread may touch
    /// the same elements or partial rows.
    unsafe fn run(&self, chunk: &[Task], partials: *mut f32) {
        // SAFETY: the caller's contract.
        unsafe { (self.kernel)(chunk.as_ptr(), chunk.len() as u64, self.row_len, self.inputs, partials, self.leaf_table, self.reduced_table) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::plan::{self, Outputs, Target};
    use crate::ir::{GroupSet, Kind, Level, Node, Op};

    /// `param += g * value + state #0` (or `update =` it, for `Target::Updates`),
    /// `state #0 =` the same, and the per-leaf sum of `g`.
    fn small(updates: Target) -> CompiledStep {
        let mut graph = Graph::default();
        let g = graph.add(Node::Grad, Level::Element, Kind::F32);
        let v = graph.add(Node::Value, Level::Uniform, Kind::F32);
        let s = graph.add(Node::State(0), Level::Element, Kind::F32);
        let gv = graph.add(Node::Op(Op::Mul, vec![g, v]), Level::Element, Kind::F32);
        let out = graph.add(Node::Op(Op::Add, vec![gv, s]), Level::Element, Kind::F32);
        let sum = graph.add(Node::LeafReduce { kind: Reduce::Sum, arg: g }, Level::Leaf, Kind::F32);
        let mut outputs = Outputs::default();
        outputs.element.push((updates, out, GroupSet::all(1)));
        outputs.element.push((Target::Slot(0), out, GroupSet::all(1)));
        outputs.leaf.push((1, sum, GroupSet::all(1)));
        let plan = plan::plan(&graph, 1, outputs);
        assert_eq!(plan.passes.len(), 1);
        compile(&graph, &plan).expect("compiles")
    }

    fn task(start: u64, len: u64) -> Task {
        Task { program: 0, start, len, inputs: 0, leaf: 0, row: 0 }
    }

    /// Writable parameters and gradients of one leaf each.
    fn leaves<'a>(params: Vec<&'a mut [f32]>, grads: Vec<&'a [f32]>) -> Leaves<'a> {
        Leaves { params: Params::Mut(params), grads, updates: Vec::new() }
    }

    #[test]
    fn a_pass_runs_and_gives_its_partials() {
        let step = small(Target::Params);
        let grads: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let mut params = vec![1.0; 37];
        let mut slots = Arena::from_slices(&[&[0.5; 37]], 0);
        let mut partials = vec![0.0; 2 * LANES];
        let tasks = [task(0, 20), task(20, 17)];
        let mut leaves = leaves(vec![&mut params], vec![&grads]);
        let one = SlotLayout::all_leaves(&[37], 1);
        let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots: &mut slots, slot_layout: &one, reduced: &mut [], rows: &[], table: &mut Vec::new() };
        step.run_pass(0, &tasks, &[2.0], buffers, &mut partials, 1).expect("runs");
        assert_eq!(params[3], 1.0 + (3.0 * 2.0 + 0.5));
        assert_eq!(slots.get(0).map(|s| s[36]), Some(36.0 * 2.0 + 0.5));
        // Task 0: elements 0..20, element i in accumulator i % 16 (16 in the vector body, 4 in
        // the scalar tail); task 1: elements 20..37, its j-th in accumulator j % 16.
        assert_eq!(partials[0], 0.0 + 16.0);
        assert_eq!(partials[3], 3.0 + 19.0);
        assert_eq!(partials[4], 4.0);
        assert_eq!(partials[LANES], 20.0 + 36.0);
        assert_eq!(partials[LANES + 1], 21.0);
    }

    #[test]
    fn leaves_live_in_buffers_of_their_own_and_updates_can_go_apart() {
        // Two leaves of 5 and 3 elements: flat offsets 0 and 5 in the state, own buffers for
        // the rest; two threads.
        let grads: [Vec<f32>; 2] = [(0..5).map(|i| i as f32).collect(), vec![10.0, 11.0, 12.0]];
        let tasks = [task(0, 5), Task { leaf: 1, ..task(5, 3) }];
        let (mut a, mut b) = (vec![1.0; 5], vec![2.0; 3]);
        let mut slots = Arena::new(&[8], 0);
        let mut partials = vec![0.0; 2 * LANES];
        let mut in_place = leaves(vec![&mut a, &mut b], vec![&grads[0], &grads[1]]);
        let two = SlotLayout::all_leaves(&[5, 3], 1);
        let buffers = Buffers { leaves: &mut in_place, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [], rows: &[], table: &mut Vec::new() };
        small(Target::Params).run_pass(0, &tasks, &[1.0], buffers, &mut partials, 2).expect("runs");
        assert_eq!((a[4], b[2]), (1.0 + 4.0, 2.0 + 12.0));
        assert_eq!(slots.get(0).map(|s| s[7]), Some(12.0));

        let (a0, b0) = (a.clone(), b.clone());
        let (mut ua, mut ub) = (vec![0.0; 5], vec![0.0; 3]);
        let step = small(Target::Updates);
        let mut apart = Leaves { params: Params::Ref(vec![&a, &b]), grads: vec![&grads[0], &grads[1]], updates: vec![&mut ua, &mut ub] };
        let buffers = Buffers { leaves: &mut apart, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [], rows: &[], table: &mut Vec::new() };
        step.run_pass(0, &tasks, &[1.0], buffers, &mut partials, 1).expect("runs");
        assert_eq!((a, b), (a0, b0), "the parameters are only read");
        assert_eq!((ua[4], ub[2]), (4.0 + 4.0, 12.0 + 12.0));
        // Read-only parameters cannot take updates added in place.
        let mut read_only = Leaves { params: Params::Ref(vec![&ua, &ub]), grads: vec![&grads[0], &grads[1]], updates: Vec::new() };
        let buffers = Buffers { leaves: &mut read_only, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [], rows: &[], table: &mut Vec::new() };
        assert_eq!(small(Target::Params).run_pass(0, &tasks, &[1.0], buffers, &mut partials, 1), Err(RunError::ReadOnlyParams));
    }

    #[test]
    fn tasks_that_accumulate_split_over_threads_only_between_leaves_of_their_own_memory() {
        assert_eq!(chunk_starts(10, 3, None), Some(vec![0, 4, 8]));
        // Leaves 0, 1, 2 with reduced memory of their own: cuts move to the next leaf.
        let own = [(0, 0, 4), (0, 0, 4), (1, 4, 8), (1, 4, 8), (1, 4, 8), (2, 8, 9)];
        assert_eq!(chunk_starts(6, 2, Some(&own)), Some(vec![0, 5]));
        assert_eq!(chunk_starts(6, 3, Some(&own)), Some(vec![0, 2, 5]));
        // One leaf, or leaves that share reduced memory, run on one thread.
        assert_eq!(chunk_starts(3, 2, Some(&[(0, 0, 4); 3])), None);
        assert_eq!(chunk_starts(4, 2, Some(&[(0, 0, 4), (0, 0, 4), (1, 2, 6), (1, 2, 6)])), None);
    }

    #[test]
    fn every_bad_index_is_refused_before_the_kernel_runs() {
        let step = small(Target::Params);
        let grads = vec![0.0; 16];
        let mut params = vec![0.0; 16];
        let mut partials = vec![0.0; 4 * LANES];
        let run = |tasks: &[Task], inputs: &[f32], slots: &mut Arena, partials: &mut [f32], threads| {
            let mut params = params.clone();
            let mut leaves = leaves(vec![&mut params], vec![&grads]);
            let one = SlotLayout::all_leaves(&[16], 1);
            let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots, slot_layout: &one, reduced: &mut [], rows: &[], table: &mut Vec::new() };
            step.run_pass(0, tasks, inputs, buffers, partials, threads)
        };
        let ok = Arena::new(&[16], 0);
        assert_eq!(run(&[task(0, 16)], &[1.0], &mut ok.clone(), &mut partials, 1), Ok(()));
        assert_eq!(run(&[task(8, 9)], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::OutOfBounds { task: 0, stream: Stream::Grads }));
        assert_eq!(run(&[task(u64::MAX, 2)], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::OutOfBounds { task: 0, stream: Stream::Grads }));
        let no_leaf = Task { leaf: 1, ..task(0, 4) };
        assert_eq!(run(&[no_leaf], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::OutOfBounds { task: 0, stream: Stream::Grads }));
        assert_eq!(run(&[], &[], &mut Arena::default(), &mut partials, 1), Err(RunError::NoSuchSlot(0)));
        assert_eq!(run(&[task(0, 4)], &[1.0], &mut Arena::new(&[3], 0), &mut partials, 1), Err(RunError::OutOfBounds { task: 0, stream: Stream::Slot(0) }));
        assert_eq!(run(&[task(0, 4)], &[], &mut ok.clone(), &mut partials, 1), Err(RunError::Inputs { task: 0 }));
        let bad_program = Task { program: 1, ..task(0, 4) };
        assert_eq!(run(&[bad_program], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::NoSuchProgram { task: 0, program: 1 }));
        assert_eq!(run(&[task(0, 4); 5], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::Partials { needed: 5 * LANES, found: 4 * LANES }));
        assert_eq!(run(&[task(0, 8), task(4, 8)], &[1.0], &mut ok.clone(), &mut partials, 2), Err(RunError::Overlap { task: 1 }));
        assert_eq!(run(&[task(0, 8), task(8, 8)], &[1.0], &mut ok.clone(), &mut partials, 2), Ok(()));
        let mut leaves = leaves(vec![&mut params], vec![&grads]);
        let one = SlotLayout::all_leaves(&[16], 1);
        let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots: &mut ok.clone(), slot_layout: &one, reduced: &mut [], rows: &[], table: &mut Vec::new() };
        assert!(matches!(step.run_pass(1, &[], &[], buffers, &mut partials, 1), Err(RunError::NoSuchPass(1))));
    }
}

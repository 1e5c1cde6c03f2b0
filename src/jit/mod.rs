//! The Cranelift backend: each pass of a [`Plan`] becomes one machine-code function, a *kernel*,
//! that runs the pass's element programs over a list of [`Task`]s (one block of one leaf each).
//! Inside a block the kernel runs an unrolled `f32x4` body, then a scalar tail; reductions keep
//! the interpreter's `LANES` accumulators per block, combine them as the interpreter does, and
//! hand back one partial per block, which the runtime combines in block order with the
//! interpreter's own code. Uniform and per-leaf values are computed outside, once per step,
//! and come in as each task's row of inputs.
//!
//! [`compile_with`] says how the kernels are built, compiled and defined.
//!
//! Architecture invariants:
//! - The crate's only `unsafe` lives here: [`CompiledStep::run_pass`] checks every index the
//!   machine code will use (programs, input rows, element ranges, stream lengths, partials)
//!   before calling it, so no input to the safe API can make the kernel touch memory it
//!   does not own. A [`Schedule`] owns its tasks and keeps what the checks found, for
//!   buffers of the sizes they were made for.
//! - Values are `f32` lanes: booleans are 0.0 or 1.0, integers (only ever broadcast from
//!   uniforms or leaf sizes) are converted as the interpreter converts them. Every op
//!   computes exactly what `ir::op::eval` computes on those values: `fmath`'s functions are
//!   emitted from the very code `eval` runs (see `math`), and the other ops Cranelift has no
//!   instruction for call the very functions `eval` calls.
//!
//! (`unsafe_code` is denied for the crate and allowed for this module only, in `lib.rs`.)

mod asm;
mod check;
mod clif;
mod kernel;
mod lower;
mod math;
mod pool;
mod program;
mod run;

pub use check::Schedule;
pub use run::RunError;

use std::fmt;
use std::sync::OnceLock;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::default_libcall_names;

use crate::arena::Arena;
use crate::ir::buffers::{Leaves, SlotLayout};
use crate::ir::plan::{Plan, Target};
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
    /// Number of elements, at most [`BLOCK`](crate::ir::plan::BLOCK).
    pub len: u64,
    /// Where the program's inputs for this block's leaf start in the inputs array.
    pub inputs: u64,
    /// The block's leaf: its row of the leaf table gives where its parameters, gradients,
    /// updates and state are.
    pub leaf: u64,
    /// For a row program's task, the row of its [`Schedule`]'s rows (and of the reduced table)
    /// it lies in: where its reduced streams keep the row.
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
    /// The stream a write to `target` stores to.
    pub(crate) fn of(target: Target) -> Stream {
        match target {
            Target::Params => Stream::Params,
            Target::Updates => Stream::Updates,
            Target::Slot(s) => Stream::Slot(s),
        }
    }

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
    /// Reductions per task in the partials array (one float each).
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
    /// Private, with [`CompiledStep::passes`] to read it: what `run_pass` checks against must
    /// stay what the kernels were compiled from.
    passes: Vec<CompiledPass>,
    /// Told apart from every other step of the process: a [`Schedule`] checked for one step's
    /// passes is checked again for another's.
    id: u64,
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

impl CompiledStep {
    /// The passes, in plan order.
    pub fn passes(&self) -> &[CompiledPass] {
        &self.passes
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
    let mut builder = JITBuilder::with_isa(isa(false, false)?.clone(), default_libcall_names());
    math::register(&mut builder);
    let mut module = JITModule::new(builder);
    let math = math::declare(&mut module)?;
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    let mut built = Vec::with_capacity(plan.passes.len());
    for (index, pass) in plan.passes.iter().enumerate() {
        built.push(kernel::build(&mut module, &mut fctx, &math, graph, pass, &plan.outputs.storage, index, listing)?);
    }
    // Compiling to machine code needs no module, so the kernels compile in parallel.
    let isas = built.iter().map(|k| isa(k.instructions() > LARGE_KERNEL, k.keeps_order)).collect::<Result<Vec<_>, _>>()?;
    let compiled = crate::parallel::map(built.iter_mut().zip(isas).collect(), crate::parallel::cores(), |(k, isa)| k.compile(&**isa, listing.asm));
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
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(CompiledStep { passes, id, module: Some(module) })
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

/// Kernels with more instructions than this are register-allocated in a single pass: the
/// backtracking allocator's time grows faster than the kernel (a chain of 1,000 AdamWs fused
/// into one loop took half a minute), the single-pass one's linearly.
const LARGE_KERNEL: usize = 20_000;

/// The host's instruction set with optc's settings for a kernel, made once per process for
/// each kind of kernel: every compile would otherwise detect the CPU's features and build the
/// settings again. A kernel larger than [`LARGE_KERNEL`] is register-allocated in one pass.
/// A kernel whose instructions must stay in the order they are built
/// ([`kernel::Built::keeps_order`]) is not run through Cranelift's optimizer, which would
/// place each pure instruction next to its first use and so undo the interleaving of
/// unrolled copies.
fn isa(large: bool, ordered: bool) -> Result<&'static OwnedTargetIsa, JitError> {
    static ISAS: [OnceLock<Result<OwnedTargetIsa, String>>; 4] = [const { OnceLock::new() }; 4];
    let regalloc = if large { "single_pass" } else { "backtracking" };
    let opt_level = if ordered { "none" } else { "speed" };
    let isa = ISAS[usize::from(large) * 2 + usize::from(ordered)].get_or_init(|| make_isa(regalloc, opt_level));
    isa.as_ref().map_err(|e| JitError::Host(e.clone()))
}

fn make_isa(regalloc: &str, opt_level: &str) -> Result<OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    for (name, value) in [
        ("regalloc_algorithm", regalloc),
        ("opt_level", opt_level),
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
        ("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }),
    ] {
        flags.set(name, value).map_err(|e| format!("setting {name}: {e}"))?;
    }
    cranelift_native::builder()?.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
}

//! One pass → one kernel. The kernel walks its tasks (one block of one leaf each); for each it
//! jumps to the task's program, which loads its inputs, then runs an unrolled vector body (eight
//! `f32x4` per iteration, four in a program with `fmath` functions) and a scalar tail over the
//! block's elements, and finally combines each reduction's accumulators into the task's partial.
//!
//! ```text
//! entry ─▶ task_head ─▶ task_body ─▶ program k: inputs ─▶ vector loop ─▶ scalar loop ─▶ partials ─┐
//!             ▲   └────▶ exit                                                                 │
//!             └───────────────────────────── task_next ◀──────────────────────────────────────┘
//! ```
//!
//! Reductions keep the interpreter's `LANES` = 16 accumulators per block, element `i` of the
//! block in accumulator `i % 16`: in the vector body four `f32x4` accumulators (lanes 0–3, 4–7,
//! ...), unrolled vector `u` adding to accumulator `u % 4`, in the scalar tail the same sixteen
//! floats in a stack slot; they are then combined pairwise as the interpreter combines a block's.

use std::collections::{BTreeSet, HashMap};

use cranelift_codegen::Context;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4, I64};
use cranelift_codegen::ir::{AbiParam, Block, InstBuilder, MemFlagsData, SourceLoc, StackSlotData, StackSlotKind, UserFuncName, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::isa::TargetIsa;
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module, ModuleReloc};

use super::clif::Comments;
use super::lower::{Fx, Width, identity};
use super::math::{Math, SharedBase};
use super::program::{Elem, Operand, Program, analyse};
use super::{JitError, Listing, ProgramInfo, Stream, Task};
use crate::ir::plan::{LANES, Pass, Target};
use crate::ir::{Graph, NodeId, Storage};

/// Vectors per iteration of the vector body: eight `f32x4`, computed one after the other (the
/// loop's own instructions, and the task's broadcasts the optimizer leaves in it, count half
/// as much per element as with four); four, side by side, in a program with `fmath` functions
/// ([`interleaves`]), whose long chains eight copies would spill.
const UNROLL: usize = 8;
const UNROLL_MATH: usize = 4;
const VECTOR: i64 = 4;
/// Vector accumulators per reduction. A vector body iteration starts at a multiple of `LANES`,
/// so its `u`-th vector holds lanes `4u..4u+4 (mod LANES)` of accumulator `u % ACCS`.
const ACCS: usize = LANES / VECTOR as usize;
const _: () = assert!((UNROLL_MATH * VECTOR as usize).is_multiple_of(LANES) && UNROLL.is_multiple_of(UNROLL_MATH));

/// A kernel's function, built and declared in the module (not yet compiled), with what the
/// runtime needs to call it.
pub struct Built {
    pub id: FuncId,
    /// Holds the function; after [`Built::compile`], its machine code too.
    pub ctx: Context,
    pub programs: Vec<ProgramInfo>,
    pub stride: usize,
    /// Reduced streams: entries per row of the reduced table (`CompiledPass::reduced`).
    pub reduced: usize,
    /// The function's annotated Cranelift IR, when asked for.
    pub clif: Option<String>,
    /// The machine code's listing, when asked for (made by [`Built::compile`]).
    pub asm: Option<String>,
    /// The statement quoted for each source location of the function's instructions.
    quotes: Vec<Option<String>>,
    /// Which pass of the plan.
    pub index: usize,
    /// Whether a program interleaves its unrolled copies ([`interleaves`]), which Cranelift's
    /// optimizer would undo: the kernel is then compiled without it.
    pub keeps_order: bool,
}

impl Built {
    /// The number of Cranelift instructions of the kernel.
    pub fn instructions(&self) -> usize {
        self.ctx.func.dfg.num_insts()
    }

    /// Compiles the function to machine code, and lists it if `asm`. Needs no module, so
    /// kernels compile in parallel.
    pub fn compile(&mut self, isa: &dyn TargetIsa, asm: bool) -> Result<(), JitError> {
        // Cranelift's own listing, for hosts iced-x86 does not decode.
        let x86 = cfg!(target_arch = "x86_64");
        self.ctx.set_disasm(asm && !x86);
        let code = match self.ctx.compile(isa, &mut ControlPlane::default()) {
            Ok(code) => code,
            Err(e) => {
                let message = format!("{:?}", e.inner);
                return Err(JitError::Codegen { pass: self.index, message, clif: self.ctx.func.display().to_string() });
            }
        };
        if asm {
            self.asm = if x86 {
                let quote = |loc: SourceLoc| self.quotes.get(loc.bits() as usize).cloned().flatten();
                Some(super::asm::listing(code.code_buffer(), code.buffer.get_srclocs_sorted(), quote))
            } else {
                code.vcode.clone()
            };
        }
        Ok(())
    }

    /// Defines the compiled function in `module`.
    pub fn define(&self, module: &mut JITModule) -> Result<(), JitError> {
        let code = self.ctx.compiled_code().ok_or_else(|| JitError::Module(format!("pass {} was not compiled", self.index)))?;
        let relocs: Vec<ModuleReloc> =
            code.buffer.relocs().iter().map(|r| ModuleReloc::from_mach_reloc(r, &self.ctx.func, self.id)).collect();
        module
            .define_function_bytes(self.id, u64::from(code.buffer.alignment), code.code_buffer(), &relocs)
            .map_err(|e| JitError::Module(e.to_string()))
    }
}

/// `offset`, a byte offset into a float32 stream, for the same element of a stream stored as
/// `storage`.
fn scaled(offset: i32, storage: Storage) -> i32 {
    offset / 4 * storage.bytes() as i32
}

#[allow(clippy::too_many_arguments)]
/// Builds the kernel of pass `index` as a function declared in `module`, checked by
/// Cranelift's verifier; keeps its annotated IR if `listing` asks for it.
pub fn build(
    module: &mut JITModule,
    fctx: &mut FunctionBuilderContext,
    math: &Math,
    graph: &Graph,
    pass: &Pass,
    slot_storage: &[Storage],
    index: usize,
    listing: Listing,
) -> Result<Built, JitError> {
    let programs: Vec<Program> = pass.programs.iter().map(|p| analyse(graph, p, slot_storage)).collect();
    let stride = programs.iter().map(|p| p.reductions.len()).max().unwrap_or(0);
    let reduced = programs.iter().map(|p| p.info.reduced.len()).max().unwrap_or(0);
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..7 {
        sig.params.push(AbiParam::new(ptr));
    }
    let name = format!("optc_pass{index}");
    let id = module.declare_function(&name, Linkage::Local, &sig).map_err(|e| JitError::Module(e.to_string()))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut comments = Comments::new(listing.sources);
    {
        let bcx = FunctionBuilder::new(&mut ctx.func, fctx);
        let mut fx = Fx::new(bcx, module, math);
        build_body(&mut fx, &mut comments, graph, &programs, stride, reduced);
        fx.bcx.seal_all_blocks();
        let config = fx.module().target_config();
        fx.bcx.finalize(config);
    }
    if let Err(e) = cranelift_codegen::verify_function(&ctx.func, module.isa()) {
        let message = cranelift_codegen::print_errors::pretty_verifier_error(&ctx.func, None, e);
        return Err(JitError::Codegen { pass: index, message, clif: comments.write(&ctx.func, &name) });
    }
    let clif = listing.clif.then(|| comments.write(&ctx.func, &name));
    let keeps_order = programs.iter().any(interleaves);
    let programs = programs.into_iter().map(|p| p.info).collect();
    Ok(Built { id, ctx, programs, stride, reduced, clif, asm: None, quotes: comments.quotes(), index, keeps_order })
}

/// Memory of the kernel's arguments: never trapping, not necessarily aligned beyond 4 bytes.
fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Loads of a stream the kernel never stores to. Cranelift's optimizer then treats them as
/// pure, and places each just before its first use, as it places arithmetic: an unrolled copy
/// is loaded, computed and consumed before the next one's loads, instead of every copy's
/// loads first and their arithmetic after, which held eight vectors of each stream at once in
/// sixteen registers and spilled. (They are never moved above the loop test that guards them:
/// their address depends on the loop's counter.)
fn read_only() -> MemFlagsData {
    mem().with_readonly().with_can_move()
}

/// Where a stream keeps the current element, and how it is loaded.
#[derive(Clone, Copy)]
struct Address {
    at: Value,
    load: MemFlagsData,
}

/// The body of a kernel: the task loop and a dispatch to each program.
fn build_body(fx: &mut Fx, comments: &mut Comments, graph: &Graph, programs: &[Program], stride: usize, reduced: usize) {
    let entry = fx.bcx.create_block();
    fx.bcx.append_block_params_for_function_params(entry);
    fx.bcx.switch_to_block(entry);
    let params = fx.bcx.block_params(entry).to_vec();
    let (tasks, n_tasks, row_len, inputs, partials, leaf_table, reduced_table) = (params[0], params[1], params[2], params[3], params[4], params[5], params[6]);
    // Every stream's address comes from the task's row of the leaf table (a reduced stream's
    // from its row of the reduced table).
    let used: BTreeSet<Stream> = programs.iter().flat_map(|p| p.info.streams.iter().copied()).collect();
    let t_var = fx.bcx.declare_var(I64);
    let zero = fx.bcx.ins().iconst(I64, 0);
    fx.bcx.def_var(t_var, zero);
    let (task_loop, t) = begin_loop(fx, t_var, n_tasks);
    let task_next = fx.bcx.create_block();
    let task_size = std::mem::size_of::<Task>() as i64;
    let task_offset = fx.bcx.ins().imul_imm_u(t, task_size);
    let task = fx.bcx.ins().iadd(tasks, task_offset);
    let program = fx.bcx.ins().load(I64, mem(), task, 0);
    let start = fx.bcx.ins().load(I64, mem(), task, 8);
    let len = fx.bcx.ins().load(I64, mem(), task, 16);
    let row = fx.bcx.ins().load(I64, mem(), task, 24);
    let leaf = fx.bcx.ins().load(I64, mem(), task, 32);
    let leaf_row = fx.bcx.ins().imul(leaf, row_len);
    let leaf_row = fx.bcx.ins().ishl_imm_u(leaf_row, 3);
    let leaf_row = fx.bcx.ins().iadd(leaf_table, leaf_row);
    // A row program's reduced streams: the task's row of the reduced table.
    let reduced_row = if reduced > 0 {
        let row_of_leaf = fx.bcx.ins().load(I64, mem(), task, 40);
        let at = fx.bcx.ins().imul_imm_u(row_of_leaf, (reduced * 8) as i64);
        Some(fx.bcx.ins().iadd(reduced_table, at))
    } else {
        None
    };
    let written: BTreeSet<Stream> = programs.iter().flat_map(Program::written).collect();
    let mut streams: HashMap<Stream, Address> = HashMap::new();
    for &s in &used {
        let (table, place) = match (s, reduced_row) {
            (Stream::Reduced(k), Some(r)) => (r, k as usize),
            _ => (leaf_row, s.place()),
        };
        let offset = i32::try_from(place * 8).unwrap_or(i32::MAX);
        let at = fx.bcx.ins().load(I64, mem(), table, offset);
        streams.insert(s, Address { at, load: if written.contains(&s) { mem() } else { read_only() } });
    }
    let row_bytes = fx.bcx.ins().ishl_imm_u(row, 2);
    let row_ptr = fx.bcx.ins().iadd(inputs, row_bytes);
    let start_bytes = fx.bcx.ins().ishl_imm_u(start, 2);
    let partial_bytes = fx.bcx.ins().imul_imm_u(t, (stride * 4) as i64);
    let partial_ptr = fx.bcx.ins().iadd(partials, partial_bytes);
    let task_values = TaskValues { start_bytes, len, row_ptr, partial_ptr };
    // Dispatch: one block per program.
    let blocks: Vec<_> = programs.iter().map(|_| fx.bcx.create_block()).collect();
    for (k, &block) in blocks.iter().enumerate() {
        if k + 1 == blocks.len() {
            fx.bcx.ins().jump(block, &[]);
        } else {
            let is_k = fx.bcx.ins().icmp_imm_u(IntCC::Equal, program, k as i64);
            let next = fx.bcx.create_block();
            fx.bcx.ins().brif(is_k, block, &[], next, &[]);
            fx.bcx.switch_to_block(next);
        }
    }
    if blocks.is_empty() {
        fx.bcx.ins().jump(task_next, &[]);
    }
    for (program, &block) in programs.iter().zip(&blocks) {
        fx.bcx.switch_to_block(block);
        let inputs: Vec<String> = program.info.inputs.iter().map(|n| format!("%{n}")).collect();
        comments.note(fx, format!("group {}: inputs [{}]", program.info.group, inputs.join(", ")));
        build_program(fx, comments, graph, program, &streams, &task_values);
        fx.bcx.ins().jump(task_next, &[]);
    }

    fx.bcx.switch_to_block(task_next);
    end_loop(fx, task_loop, t, 1);
    fx.bcx.ins().return_(&[]);
}

/// A counted loop being built: the head that tests its counter, and the block after it.
struct Loop {
    head: Block,
    exit: Block,
    counter: Variable,
}

/// Opens `while counter < bound { ... }`: jumps to a new head that tests the counter, and goes
/// on in the body. Returns the loop and the counter's value in the body.
fn begin_loop(fx: &mut Fx, counter: Variable, bound: Value) -> (Loop, Value) {
    let head = fx.bcx.create_block();
    let body = fx.bcx.create_block();
    let exit = fx.bcx.create_block();
    fx.bcx.ins().jump(head, &[]);
    fx.bcx.switch_to_block(head);
    let i = fx.bcx.use_var(counter);
    let more = fx.icmp(IntCC::UnsignedLessThan, i, bound);
    fx.bcx.ins().brif(more, body, &[], exit, &[]);
    fx.bcx.switch_to_block(body);
    (Loop { head, exit, counter }, i)
}

/// Closes `lp` from the current block: the counter becomes `i + step` and the loop goes round;
/// code after this goes after the loop.
fn end_loop(fx: &mut Fx, lp: Loop, i: Value, step: i64) {
    let next = fx.bcx.ins().iadd_imm_u(i, step);
    fx.bcx.def_var(lp.counter, next);
    fx.bcx.ins().jump(lp.head, &[]);
    fx.bcx.switch_to_block(lp.exit);
}

/// Values of the current task, defined in the block that dispatches to the programs.
struct TaskValues {
    /// Byte offset of the block's first element in every stream.
    start_bytes: Value,
    /// Elements in the block.
    len: Value,
    /// The task's input row.
    row_ptr: Value,
    /// The task's partials.
    partial_ptr: Value,
}

/// Per-program values: its inputs and constants at both widths, and the part of `pow` that
/// depends on the base alone for each base that is an input or a constant.
struct Broadcasts {
    scalar: Vec<Value>,
    vector: Vec<Value>,
    consts: Vec<(u32, Value, Value)>,
    pow_bases: Vec<(Operand, SharedBase, SharedBase)>,
}

impl Broadcasts {
    fn pow_base(&self, w: Width, o: Operand) -> Option<SharedBase> {
        let (_, s, v) = self.pow_bases.iter().find(|(p, _, _)| *p == o)?;
        Some(if w == Width::Scalar { *s } else { *v })
    }

    fn get(&mut self, fx: &mut Fx, w: Width, o: Operand, values: &HashMap<NodeId, Value>) -> Value {
        match o {
            Operand::Node(n) => match values.get(&n) {
                Some(v) => *v,
                None => fx.fconst(w, 0.0),
            },
            Operand::Input(k) => match w {
                Width::Scalar => self.scalar[k],
                Width::Vector => self.vector[k],
            },
            Operand::Const(c) => {
                let bits = c.to_bits();
                let (s, v) = match self.consts.iter().find(|(b, _, _)| *b == bits) {
                    Some((_, s, v)) => (*s, *v),
                    None => {
                        // `build_program` makes every constant of the program in its first
                        // block, so that the definition dominates both loops.
                        let s = fx.bcx.ins().f32const(c);
                        let v = fx.bcx.ins().splat(F32X4, s);
                        self.consts.push((bits, s, v));
                        (s, v)
                    }
                };
                match w {
                    Width::Scalar => s,
                    Width::Vector => v,
                }
            }
        }
    }
}

/// One program: inputs, vector loop, scalar loop, partials. Ends in the program's last block,
/// unterminated.
fn build_program(fx: &mut Fx, comments: &mut Comments, graph: &Graph, program: &Program, streams: &HashMap<Stream, Address>, task: &TaskValues) {
    // Inputs, loaded once per task, at both widths.
    let mut b = Broadcasts { scalar: Vec::new(), vector: Vec::new(), consts: Vec::new(), pow_bases: Vec::new() };
    for k in 0..program.info.inputs.len() {
        let s = fx.bcx.ins().load(F32, mem(), task.row_ptr, (4 * k) as i32);
        let v = fx.bcx.ins().splat(F32X4, s);
        b.scalar.push(s);
        b.vector.push(v);
    }
    // Constants, made here so that they dominate both loops.
    for (_, elem) in &program.nodes {
        let ops: Vec<Operand> = match elem {
            Elem::Op(_, ops) => ops.clone(),
            Elem::Broadcast(o) => vec![*o],
            Elem::Load(_) => Vec::new(),
        };
        for o in ops.into_iter().filter(|o| matches!(o, Operand::Const(_))) {
            b.get(fx, Width::Scalar, o, &HashMap::new());
        }
    }
    for o in program.reductions.iter().map(|r| r.1).chain(program.writes.iter().map(|w| w.1)).chain(program.accumulates.iter().map(|a| a.2)) {
        if matches!(o, Operand::Const(_)) {
            b.get(fx, Width::Scalar, o, &HashMap::new());
        }
    }
    // The logarithm of a shared base of `pow`, once per task instead of once per element.
    for (_, elem) in &program.nodes {
        if let Elem::Op(crate::ir::Op::Pow, ops) = elem
            && let Some(&base @ (Operand::Input(_) | Operand::Const(_))) = ops.first()
            && b.pow_base(Width::Scalar, base).is_none()
        {
            let (s, v) = match base {
                Operand::Const(c) => (fx.pow_base_const(Width::Scalar, c), fx.pow_base_const(Width::Vector, c)),
                _ => {
                    let s = b.get(fx, Width::Scalar, base, &HashMap::new());
                    let v = b.get(fx, Width::Vector, base, &HashMap::new());
                    (fx.pow_base(Width::Scalar, s), fx.pow_base(Width::Vector, v))
                }
            };
            b.pow_bases.push((base, s, v));
        }
    }
    let n_red = program.reductions.len();
    // Accumulators: lanes 0-3, 4-7, ... of each reduction.
    let mut accs: Vec<[Variable; ACCS]> = Vec::new();
    for (kind, _) in &program.reductions {
        let init = fx.fconst(Width::Vector, identity(*kind));
        accs.push(std::array::from_fn(|_| {
            let var = fx.bcx.declare_var(F32X4);
            fx.bcx.def_var(var, init);
            var
        }));
    }
    let i_var = fx.bcx.declare_var(I64);
    let zero = fx.bcx.ins().iconst(I64, 0);
    fx.bcx.def_var(i_var, zero);
    let interleave = interleaves(program);
    let unroll = if interleave { UNROLL_MATH } else { UNROLL };
    let step = unroll as i64 * VECTOR;
    let n_vector = fx.bcx.ins().band_imm_s(task.len, !(step - 1));

    // The vector body: `step` elements per iteration.
    let (vector_loop, i) = begin_loop(fx, i_var, n_vector);
    comments.note(fx, format!("vector body: {unroll} x f32x4 per iteration"));
    let bases = element_addresses(fx, streams, program, task, i);
    let offsets: Vec<i32> = (0..unroll).map(|u| (u as i64 * VECTOR * 4) as i32).collect();
    let mut unrolled = Vec::new();
    if interleave {
        let side_by_side: [i32; UNROLL_MATH] = std::array::from_fn(|u| offsets[u]);
        unrolled = elements(fx, comments, graph, &mut b, program, Width::Vector, &bases, side_by_side);
    }
    for (u, &offset) in offsets.iter().enumerate() {
        if !interleave {
            unrolled.extend(elements(fx, comments, graph, &mut b, program, Width::Vector, &bases, [offset]));
        }
        let values = &unrolled[u];
        for (r, (kind, arg)) in program.reductions.iter().enumerate() {
            let var = accs[r][u % ACCS];
            let acc = fx.bcx.use_var(var);
            let x = b.get(fx, Width::Vector, *arg, values);
            let next = fx.lower_combine(Width::Vector, *kind, acc, x);
            fx.bcx.def_var(var, next);
        }
        write(fx, comments, &mut b, program, Width::Vector, &bases, offset, values, u == 0);
    }
    end_loop(fx, vector_loop, i, step);

    // Between the loops: the vector accumulators go to the stack, lane i % LANES at float i % LANES.
    let slot = if n_red > 0 {
        let size = u32::try_from(n_red * LANES * 4).unwrap_or(u32::MAX);
        let ss = fx.bcx.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 4));
        let addr = fx.bcx.ins().stack_addr(I64, ss, 0);
        for (r, vars) in accs.iter().enumerate() {
            for (k, var) in vars.iter().enumerate() {
                let v = fx.bcx.use_var(*var);
                fx.bcx.ins().store(mem(), v, addr, (r * LANES * 4 + k * 16) as i32);
            }
        }
        Some(addr)
    } else {
        None
    };

    // The scalar tail.
    let (scalar_loop, i) = begin_loop(fx, i_var, task.len);
    comments.note(fx, "scalar tail".to_string());
    let bases = element_addresses(fx, streams, program, task, i);
    let values = elements(fx, comments, graph, &mut b, program, Width::Scalar, &bases, [0]).pop().unwrap_or_default();
    if let Some(slot) = slot {
        let lane = fx.bcx.ins().band_imm_u(i, (LANES - 1) as i64);
        let lane_bytes = fx.bcx.ins().ishl_imm_u(lane, 2);
        let lane_addr = fx.bcx.ins().iadd(slot, lane_bytes);
        for (r, (kind, arg)) in program.reductions.iter().enumerate() {
            let at = (r * LANES * 4) as i32;
            let acc = fx.bcx.ins().load(F32, mem(), lane_addr, at);
            let x = b.get(fx, Width::Scalar, *arg, &values);
            let next = fx.lower_combine(Width::Scalar, *kind, acc, x);
            fx.bcx.ins().store(mem(), next, lane_addr, at);
        }
    }
    write(fx, comments, &mut b, program, Width::Scalar, &bases, 0, &values, true);
    end_loop(fx, scalar_loop, i, 1);

    // The partials: each reduction's `LANES` accumulators combined pairwise, in the order
    // `interp::finish_block` combines a block's, one float per reduction. (Handing back the
    // accumulators instead wrote and read again 64 bytes per task and reduction, as much as a
    // row of 16 floats of the leaf.)
    if let Some(slot) = slot {
        for (r, (kind, _)) in program.reductions.iter().enumerate() {
            let mut acc: Vec<Value> = (0..LANES).map(|k| fx.bcx.ins().load(F32, mem(), slot, ((r * LANES + k) * 4) as i32)).collect();
            let mut width = LANES;
            while width > 1 {
                width /= 2;
                for i in 0..width {
                    acc[i] = fx.lower_combine(Width::Scalar, *kind, acc[2 * i], acc[2 * i + 1]);
                }
            }
            fx.bcx.ins().store(mem(), acc[0], task.partial_ptr, (r * 4) as i32);
        }
    }
}

/// Whether `program` computes its unrolled vectors side by side: one with `fmath` functions
/// does (their long chains of dependent instructions overlap), others one after the other
/// (fewer values live at once, fewer spills).
fn interleaves(program: &Program) -> bool {
    program.nodes.iter().any(|(_, e)| matches!(e, Elem::Op(op, _) if op.is_math()))
}

/// The address of element `i` of the block in every stream the program uses.
fn element_addresses(fx: &mut Fx, streams: &HashMap<Stream, Address>, program: &Program, task: &TaskValues, i: Value) -> HashMap<Stream, Address> {
    let i_bytes = fx.bcx.ins().ishl_imm_u(i, 2);
    let offset = fx.bcx.ins().iadd(task.start_bytes, i_bytes);
    // Streams of 2-byte elements are half as far in.
    let half = if program.storage.is_empty() { None } else { Some(fx.bcx.ins().ushr_imm_u(offset, 1)) };
    let mut out = HashMap::new();
    for s in &program.info.streams {
        if let Some(&base) = streams.get(s) {
            let at = match (program.storage(*s).bytes(), half) {
                (2, Some(half)) => half,
                _ => offset,
            };
            let at = fx.bcx.ins().iadd(base.at, at);
            out.insert(*s, Address { at, ..base });
        }
    }
    out
}

/// The program's element nodes at width `w`, once for each of `offsets` (bytes past `bases`):
/// node by node, each for every offset in turn, so that the unrolled copies' instructions are
/// interleaved and a long chain of one (a polynomial, say) overlaps with the others'.
#[allow(clippy::too_many_arguments)]
fn elements<const N: usize>(
    fx: &mut Fx,
    comments: &mut Comments,
    graph: &Graph,
    b: &mut Broadcasts,
    program: &Program,
    w: Width,
    bases: &HashMap<Stream, Address>,
    offsets: [i32; N],
) -> Vec<HashMap<NodeId, Value>> {
    let mut all: Vec<HashMap<NodeId, Value>> = offsets.iter().map(|_| HashMap::new()).collect();
    for (n, elem) in &program.nodes {
        let mark = comments.mark(fx);
        let srcloc = comments.srcloc(graph.origin(*n));
        fx.bcx.set_srcloc(srcloc);
        let copies: [Value; N] = match elem {
            Elem::Load(s) => std::array::from_fn(|u| match bases.get(s) {
                Some(addr) => {
                    let storage = program.storage(*s);
                    fx.load_stored(w, storage, addr.at, scaled(offsets[u], storage), addr.load)
                }
                None => fx.fconst(w, 0.0),
            }),
            Elem::Op(op, ops) => {
                let args: Vec<[Value; N]> = ops.iter().map(|o| std::array::from_fn(|u| b.get(fx, w, *o, &all[u]))).collect();
                let base = if *op == crate::ir::Op::Pow { ops.first().and_then(|o| b.pow_base(w, *o)) } else { None };
                fx.lower_ops(w, *op, &args, base)
            }
            Elem::Broadcast(o) => std::array::from_fn(|u| b.get(fx, w, *o, &all[u])),
        };
        for (values, v) in all.iter_mut().zip(copies) {
            values.insert(*n, v);
        }
        comments.quote(fx, mark, graph.origin(*n));
        comments.attach(fx, mark, crate::ir::print::node_text(graph, *n));
    }
    all
}

/// The program's writes at width `w`: params += update, state slots = value.
#[allow(clippy::too_many_arguments)]
fn write(
    fx: &mut Fx,
    comments: &mut Comments,
    b: &mut Broadcasts,
    program: &Program,
    w: Width,
    bases: &HashMap<Stream, Address>,
    offset: i32,
    values: &HashMap<NodeId, Value>,
    annotate: bool,
) {
    let loaded_param = program.nodes.iter().find(|(_, e)| matches!(e, Elem::Load(Stream::Params))).and_then(|(n, _)| values.get(n).copied());
    for (target, o) in &program.writes {
        let mark = comments.mark(fx);
        let x = b.get(fx, w, *o, values);
        let stream = Stream::of(*target);
        let Some(&Address { at: addr, .. }) = bases.get(&stream) else { continue };
        let out = match target {
            Target::Params => {
                let p = match loaded_param {
                    Some(p) => p,
                    None => fx.bcx.ins().load(w.float(), mem(), addr, offset),
                };
                fx.bcx.ins().fadd(p, x)
            }
            Target::Updates | Target::Slot(_) => x,
        };
        let storage = program.storage(stream);
        fx.store_stored(w, storage, out, addr, scaled(offset, storage), mem());
        if annotate {
            let what = match target {
                Target::Params => "param +=".to_string(),
                Target::Updates => "update =".to_string(),
                Target::Slot(s) => format!("state #{s} ="),
            };
            let from = match o {
                Operand::Node(n) => format!("%{n}"),
                Operand::Const(c) => format!("{c:?}"),
                Operand::Input(k) => format!("%{}", program.info.inputs[*k]),
            };
            comments.attach(fx, mark, format!("{what} {from}"));
        }
    }
    for &(kind, stream, o) in &program.accumulates {
        let Some(&Address { at: addr, .. }) = bases.get(&stream) else { continue };
        let x = b.get(fx, w, o, values);
        let acc = fx.bcx.ins().load(w.float(), mem(), addr, offset);
        let next = fx.lower_combine(w, kind, acc, x);
        fx.bcx.ins().store(mem(), next, addr, offset);
    }
}

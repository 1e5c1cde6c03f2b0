//! Compiled passes inside the interpreter's step: the uniform and per-leaf work stays in
//! `interp`, while each pass's element programs run as machine code over fixed-size blocks.
//! Tasks are made in the interpreter's order (program, then leaf, then block), so the partials
//! come back in the order the interpreter would push them, whatever the thread count.

use crate::arena::Arena;
use crate::interp::{self, Env, PassOutput, Passes, Values};
use crate::ir::op::Scalar;
use crate::ir::plan::{BLOCK, LANES, Pass};
use crate::ir::{Groups, Layout, Reduce};
use crate::jit::{Buffers, CompiledStep, RunError, Task};

/// Blocks a thread must get before a pass is split over threads: handing work to a thread
/// costs about as much as a few blocks of it.
const MIN_BLOCKS_PER_THREAD: usize = 8;

/// A compiled step with its tasks for one layout, made once, and buffers reused by every step.
pub struct Runner {
    pub step: CompiledStep,
    passes: Vec<PassTasks>,
}

/// The tasks of one pass, and what a step fills in for them.
struct PassTasks {
    tasks: Vec<Task>,
    /// The leaf of each task.
    leaves: Vec<usize>,
    /// The (program, leaf) of each input row, in row order.
    rows: Vec<(usize, usize)>,
    /// Input rows and partials, refilled by every step.
    inputs: Vec<f32>,
    partials: Vec<f32>,
}

impl Runner {
    /// The tasks of `step`'s passes for `layout` (split into `groups`, leaves at `offsets`).
    pub fn new(step: CompiledStep, groups: &Groups, layout: &Layout, offsets: &[usize]) -> Runner {
        let passes = step
            .passes
            .iter()
            .map(|compiled| {
                let mut pass = PassTasks { tasks: Vec::new(), leaves: Vec::new(), rows: Vec::new(), inputs: Vec::new(), partials: Vec::new() };
                let mut row = 0;
                for (p, info) in compiled.programs.iter().enumerate() {
                    for &l in &groups.leaves[info.group] {
                        pass.rows.push((p, l));
                        let (base, len) = (offsets[l], layout.leaves[l].len());
                        for start in (0..len).step_by(BLOCK) {
                            let n = BLOCK.min(len - start);
                            pass.tasks.push(Task { program: p as u64, start: (base + start) as u64, len: n as u64, inputs: row as u64, leaf: l as u64 });
                            pass.leaves.push(l);
                        }
                        row += info.inputs.len();
                    }
                }
                pass.partials = vec![0.0; pass.tasks.len() * compiled.stride * LANES];
                pass
            })
            .collect();
        Runner { step, passes }
    }
}

/// Runs the passes of a step with a [`Runner`]'s kernels, updating element state in place.
pub struct Compiled<'a> {
    pub runner: &'a mut Runner,
    /// The element slots of the state (slots of other levels are empty).
    pub slots: &'a mut Arena,
    pub threads: usize,
    /// The first refusal of a kernel run (a bug in the runtime if it happens).
    pub error: Option<RunError>,
}

impl Passes for Compiled<'_> {
    fn element_state(&self) -> Option<&Arena> {
        Some(self.slots)
    }

    fn run_pass(&mut self, index: usize, _pass: &Pass, env: &mut Env, values: &Values, out: &mut PassOutput) {
        if self.error.is_some() {
            return;
        }
        let Runner { step, passes } = &mut *self.runner;
        let (Some(compiled), Some(pass)) = (step.passes.get(index), passes.get_mut(index)) else {
            self.error = Some(RunError::NoSuchPass(index));
            return;
        };
        pass.inputs.clear();
        for &(p, l) in &pass.rows {
            let info = &compiled.programs[p];
            for &n in &info.inputs {
                pass.inputs.push(interp::broadcast(env, &values.uniform, &values.leaf, n, info.group, l).f());
            }
        }
        let buffers = Buffers { leaves: &mut env.leaves, offsets: env.offsets, slots: &mut *self.slots, slot_layout: env.slots };
        let threads = self.threads.min(pass.tasks.len() / MIN_BLOCKS_PER_THREAD).max(1);
        if let Err(e) = step.run_pass(index, &pass.tasks, &pass.inputs, buffers, &mut pass.partials, threads) {
            self.error = Some(e);
            return;
        }
        if compiled.stride == 0 {
            return;
        }
        for (t, task) in pass.tasks.iter().enumerate() {
            let Some(info) = compiled.programs.get(task.program as usize) else { continue };
            for (r, (red, kind)) in info.reductions.iter().enumerate() {
                let at = (t * compiled.stride + r) * LANES;
                let mut lanes = [Scalar::F32(0.0); LANES];
                for (lane, x) in lanes.iter_mut().zip(&pass.partials[at..at + LANES]) {
                    *lane = match kind {
                        Reduce::All | Reduce::Any => Scalar::Bool(*x != 0.0),
                        Reduce::Sum | Reduce::Max | Reduce::Min => Scalar::F32(*x),
                    };
                }
                out.partials.entry(*red).or_default().push((pass.leaves[t], interp::finish_block(*kind, lanes)));
            }
        }
    }
}

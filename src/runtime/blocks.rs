//! Compiled passes inside the interpreter's step: the uniform and per-leaf work stays in
//! `interp`, while each pass's element programs run as machine code over fixed-size blocks.
//! Tasks are made in the interpreter's order (program, then leaf, then block), so the partials
//! come back in the order the interpreter would push them, whatever the thread count.

use crate::arena::Arena;
use crate::interp::{self, Env, PassOutput, Passes, Values};
use crate::ir::op::Scalar;
use crate::ir::plan::{BLOCK, LANES, Pass};
use crate::ir::Reduce;
use crate::jit::{Buffers, CompiledStep, RunError, Task};

/// Blocks a thread must get before a pass is split over threads: starting a thread costs about
/// as much as a few blocks of work.
const MIN_BLOCKS_PER_THREAD: usize = 8;

/// Runs the passes of a step with `step`'s kernels, updating element state in place.
pub struct Compiled<'a> {
    pub step: &'a CompiledStep,
    /// The element slots of the state (slots of other levels are empty).
    pub slots: &'a mut Arena,
    pub threads: usize,
    /// The first refusal of a kernel run (a bug in the runtime if it happens).
    pub error: Option<RunError>,
}

impl Passes for Compiled<'_> {
    fn run_pass(&mut self, index: usize, _pass: &Pass, env: &mut Env, values: &Values, out: &mut PassOutput) {
        if self.error.is_some() {
            return;
        }
        let Some(compiled) = self.step.passes.get(index) else {
            self.error = Some(RunError::NoSuchPass(index));
            return;
        };
        let mut tasks: Vec<Task> = Vec::new();
        let mut leaves: Vec<usize> = Vec::new();
        let mut inputs: Vec<f32> = Vec::new();
        for (p, info) in compiled.programs.iter().enumerate() {
            let g = info.group;
            for &l in &env.groups.leaves[g] {
                let row = inputs.len() as u64;
                for &n in &info.inputs {
                    inputs.push(interp::broadcast(env, &values.uniform, &values.leaf, n, g, l).f());
                }
                let (base, len) = (env.offsets[l], env.layout.leaves[l].len());
                let mut start = 0;
                while start < len {
                    let n = BLOCK.min(len - start);
                    tasks.push(Task { program: p as u64, start: (base + start) as u64, len: n as u64, inputs: row });
                    leaves.push(l);
                    start += n;
                }
            }
        }
        let mut partials = vec![0.0f32; tasks.len() * compiled.stride * LANES];
        let buffers = Buffers { grads: env.grads, params: &mut *env.params, slots: &mut *self.slots };
        let threads = self.threads.min(tasks.len() / MIN_BLOCKS_PER_THREAD).max(1);
        if let Err(e) = self.step.run_pass(index, &tasks, &inputs, buffers, &mut partials, threads) {
            self.error = Some(e);
            return;
        }
        for (t, task) in tasks.iter().enumerate() {
            let Some(info) = compiled.programs.get(task.program as usize) else { continue };
            for (r, (red, kind)) in info.reductions.iter().enumerate() {
                let at = (t * compiled.stride + r) * LANES;
                let mut lanes = [Scalar::F32(0.0); LANES];
                for (lane, x) in lanes.iter_mut().zip(&partials[at..at + LANES]) {
                    *lane = match kind {
                        Reduce::All | Reduce::Any => Scalar::Bool(*x != 0.0),
                        Reduce::Sum | Reduce::Max | Reduce::Min => Scalar::F32(*x),
                    };
                }
                out.partials.entry(*red).or_default().push((leaves[t], interp::finish_block(*kind, lanes)));
            }
        }
    }
}

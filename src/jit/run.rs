//! Running a compiled pass: every index the machine code will use is checked first (`check`,
//! once per schedule and size of buffers), then the leaf and reduced tables are built and the
//! tasks run, split over threads where they touch disjoint memory.

use std::fmt;

use super::check::{Checked, Schedule, check, key};
use super::{Buffers, CompiledStep, KernelFn, Stream, Task, pool};
use crate::ir::buffers::Params;
use crate::ir::plan::BLOCK;

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

impl CompiledStep {
    /// Runs pass `pass` on the tasks of `schedule`, split over `threads` threads.
    /// `inputs` holds the input rows the tasks point at; `partials` receives, for task `t` and
    /// reduction `r` of its program, the block's partial (its `LANES` accumulators combined as
    /// `interp::finish_block` combines them) at `t * stride + r`.
    pub fn run_pass(
        &self,
        pass: usize,
        schedule: &mut Schedule,
        inputs: &[f32],
        buffers: Buffers,
        partials: &mut [f32],
        threads: usize,
    ) -> Result<(), RunError> {
        let compiled = self.passes.get(pass).ok_or(RunError::NoSuchPass(pass))?;
        let Buffers { leaves, offsets, slots, slot_layout, reduced } = buffers;
        let key = key(self.id, pass, inputs.len(), partials.len(), reduced.len(), leaves, offsets, slots, slot_layout);
        if schedule.checked.as_ref().is_none_or(|c| c.key != key) {
            schedule.checked = None;
            let checked = check(compiled, &schedule.tasks, &schedule.rows, inputs.len(), leaves, offsets, slots, slot_layout, reduced.len(), partials.len())?;
            schedule.checked = Some(Checked { key, ..checked });
        }
        let Schedule { tasks, rows, checked: Some(checked), leaf_table, reduced_table } = schedule else {
            unreachable!("checked just above")
        };
        let tasks = tasks.as_slice();
        let threads = threads.clamp(1, tasks.len().max(1));
        if threads > 1
            && let Some(task) = checked.overlap
        {
            return Err(RunError::Overlap { task });
        }
        // The leaf table: per leaf, where each stream keeps it, moved back by the leaf's flat
        // offset, as an integer (the kernel adds the task's flat `start` back; no pointer
        // outside a buffer is formed here). Streams a leaf is not in stay 0: the checks found
        // every stream a task's program uses holding its leaf.
        let row_len = 3 + slots.len();
        leaf_table.clear();
        leaf_table.resize(offsets.len() * row_len, 0);
        let slot_starts: Vec<u64> = slots.slices_mut().into_iter().map(|b| b.as_mut_ptr() as usize as u64).collect();
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
        // element (flat), so that a task's flat `start` lands on its column. It changes only
        // with the reduced buffer's address (or with the offsets, which make a new check).
        let reduced_start = reduced.as_mut_ptr() as usize as u64;
        let reduced_len = compiled.reduced;
        if checked.reduced_at != Some(reduced_start) {
            reduced_table.clear();
            reduced_table.resize(rows.len().max(1) * reduced_len, 0);
            if reduced_len > 0 {
                for (table_row, row) in reduced_table.chunks_exact_mut(reduced_len).zip(rows.iter()) {
                    let Some(&offset) = offsets.get(row.leaf) else { continue };
                    let first = (offset + row.first) as u64;
                    for (entry, &at) in table_row.iter_mut().zip(&row.reduced) {
                        *entry = reduced_start.wrapping_add(4 * at as u64).wrapping_sub(4 * first);
                    }
                }
            }
            checked.reduced_at = Some(reduced_start);
        }
        let launch = Launch {
            kernel: compiled.kernel,
            row_len: row_len as u64,
            inputs: inputs.as_ptr(),
            leaf_table: leaf_table.as_ptr(),
            reduced_table: reduced_table.as_ptr(),
        };
        let per_task = compiled.stride;
        let base = partials.as_mut_ptr();
        // Several chunks per thread, claimed as threads come free.
        let chunks = threads * CHUNKS_PER_THREAD;
        if threads > 1 && checked.starts.as_ref().is_none_or(|(c, _)| *c != chunks) {
            checked.starts = Some((chunks, chunk_starts(tasks.len(), chunks, checked.shared.as_deref())));
        }
        let starts = match &checked.starts {
            Some((_, Some(starts))) if threads > 1 => starts,
            _ => {
                // SAFETY: every task was checked (for buffers of these sizes, `key`): its
                // program exists, its input row lies in `inputs`, its elements lie in every
                // stream its program touches (a reduced stream's run for its row in
                // `reduced`), and the partials have `per_task` floats for each task. The grads
                // are only read.
                unsafe { launch.run(tasks, base) };
                return Ok(());
            }
        };
        let ends = starts.iter().skip(1).copied().chain([tasks.len()]);
        let chunks: Vec<(&[Task], *mut f32)> = starts
            .iter()
            .zip(ends)
            // SAFETY: a chunk starting at task `start` has its partial rows start there, and
            // they stay within the `needed` floats checked.
            .map(|(&start, end)| (&tasks[start..end], unsafe { base.add(start * per_task) }))
            .collect();
        // SAFETY: as for one thread; in addition the tasks' element ranges are disjoint (no
        // overlap was found; distinct leaves have distinct buffers, which `&mut` guarantees do
        // not overlap), each chunk owns its own run of partial rows, and where reduced streams
        // are written (accumulated) each chunk's span of reduced memory is disjoint from the
        // others' (`chunk_starts`), so no two threads touch memory another one writes.
        unsafe { pool::run_chunks(&launch, &chunks, threads, pass + 1 < self.passes.len()) };
        Ok(())
    }
}

/// The chunks a pass is cut into for each of its threads: a thread that other work slows down
/// (another process, a virtual machine's neighbour) takes fewer, instead of holding the pass.
const CHUNKS_PER_THREAD: usize = 4;

/// Where each of up to `chunks` chunks of `n` tasks starts: even runs of tasks, or, where tasks
/// accumulate into reduced memory (`shared`: the span of it each task writes, empty as
/// `(MAX, 0)`), runs cut only where every span before the cut lies below every span after it,
/// so that no two chunks write the same memory. `None` where no such cut splits them.
fn chunk_starts(n: usize, chunks: usize, shared: Option<&[(u64, u64)]>) -> Option<Vec<usize>> {
    let per_chunk = n.div_ceil(chunks.max(1)).max(1);
    let Some(shared) = shared else { return Some((0..n).step_by(per_chunk).collect()) };
    // A cut before task `at` is free where the highest end before it is at most the lowest start
    // from it on.
    let mut below = vec![0; n + 1];
    for (t, &(_, hi)) in shared.iter().enumerate() {
        below[t + 1] = below[t].max(hi);
    }
    let mut above = vec![u64::MAX; n + 1];
    for (t, &(lo, hi)) in shared.iter().enumerate().rev() {
        above[t] = if lo < hi { above[t + 1].min(lo) } else { above[t + 1] };
    }
    let mut starts = vec![0];
    let mut at = per_chunk;
    while at < n {
        while at < n && below[at] > above[at] {
            at += 1;
        }
        if at < n {
            starts.push(at);
        }
        at += per_chunk;
    }
    (starts.len() > 1).then_some(starts)
}

/// A kernel with the pointers of one `run_pass` call.
pub(super) struct Launch {
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
    pub(super) unsafe fn run(&self, chunk: &[Task], partials: *mut f32) {
        // SAFETY: the caller's contract.
        unsafe { (self.kernel)(chunk.as_ptr(), chunk.len() as u64, self.row_len, self.inputs, partials, self.leaf_table, self.reduced_table) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::ir::buffers::{Leaves, SlotLayout};
    use crate::ir::{Graph, Reduce};
    use crate::jit::compile;
    use crate::ir::plan::{self, Outputs, Target};
    use crate::ir::{GroupSet, Kind, Level, Node, Op};
    use crate::ir::op::Scalar;

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
        // Floats of many sizes, so that the order of the sum shows in its rounding.
        let grads: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 10f32.powi(i % 7)).collect();
        let mut params = vec![1.0; 37];
        let mut slots = Arena::from_slices(&[&[0.5; 37]], 0);
        let mut partials = vec![0.0; 2];
        let tasks = [task(0, 20), task(20, 17)];
        let mut leaves = leaves(vec![&mut params], vec![&grads]);
        let one = SlotLayout::all_leaves(&[37], 1);
        let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots: &mut slots, slot_layout: &one, reduced: &mut [] };
        step.run_pass(0, &mut Schedule::new(tasks.to_vec(), Vec::new()), &[2.0], buffers, &mut partials, 1).expect("runs");
        assert_eq!(params[3], 1.0 + (grads[3] * 2.0 + 0.5));
        assert_eq!(slots.get(0).map(|s| s[36]), Some(grads[36] * 2.0 + 0.5));
        // Each task's partial is its block reduced as the interpreter reduces a block: element i
        // in accumulator i % 16 (16 in the vector body, the rest in the scalar tail), then the
        // accumulators pairwise. Bit for bit.
        let block = |r: std::ops::Range<usize>| crate::interp::reduce_block(Reduce::Sum, &grads[r].iter().map(|&g| Scalar::F32(g)).collect::<Vec<_>>()).f();
        assert_eq!(partials[0].to_bits(), block(0..20).to_bits());
        assert_eq!(partials[1].to_bits(), block(20..37).to_bits());
        // Another order of the same sum rounds otherwise.
        assert_ne!(partials[0].to_bits(), grads[..20].iter().sum::<f32>().to_bits());
    }

    #[test]
    fn leaves_live_in_buffers_of_their_own_and_updates_can_go_apart() {
        // Two leaves of 5 and 3 elements: flat offsets 0 and 5 in the state, own buffers for
        // the rest; two threads.
        let grads: [Vec<f32>; 2] = [(0..5).map(|i| i as f32).collect(), vec![10.0, 11.0, 12.0]];
        let tasks = [task(0, 5), Task { leaf: 1, ..task(5, 3) }];
        let (mut a, mut b) = (vec![1.0; 5], vec![2.0; 3]);
        let mut slots = Arena::new(&[8], 0);
        let mut partials = vec![0.0; 2];
        let mut in_place = leaves(vec![&mut a, &mut b], vec![&grads[0], &grads[1]]);
        let two = SlotLayout::all_leaves(&[5, 3], 1);
        let buffers = Buffers { leaves: &mut in_place, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [] };
        small(Target::Params).run_pass(0, &mut Schedule::new(tasks.to_vec(), Vec::new()), &[1.0], buffers, &mut partials, 2).expect("runs");
        assert_eq!((a[4], b[2]), (1.0 + 4.0, 2.0 + 12.0));
        assert_eq!(slots.get(0).map(|s| s[7]), Some(12.0));

        let (a0, b0) = (a.clone(), b.clone());
        let (mut ua, mut ub) = (vec![0.0; 5], vec![0.0; 3]);
        let step = small(Target::Updates);
        let mut apart = Leaves { params: Params::Ref(vec![&a, &b]), grads: vec![&grads[0], &grads[1]], updates: vec![&mut ua, &mut ub] };
        let buffers = Buffers { leaves: &mut apart, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [] };
        step.run_pass(0, &mut Schedule::new(tasks.to_vec(), Vec::new()), &[1.0], buffers, &mut partials, 1).expect("runs");
        assert_eq!((a, b), (a0, b0), "the parameters are only read");
        assert_eq!((ua[4], ub[2]), (4.0 + 4.0, 12.0 + 12.0));
        // Read-only parameters cannot take updates added in place.
        let mut read_only = Leaves { params: Params::Ref(vec![&ua, &ub]), grads: vec![&grads[0], &grads[1]], updates: Vec::new() };
        let buffers = Buffers { leaves: &mut read_only, offsets: &[0, 5], slots: &mut slots, slot_layout: &two, reduced: &mut [] };
        assert_eq!(small(Target::Params).run_pass(0, &mut Schedule::new(tasks.to_vec(), Vec::new()), &[1.0], buffers, &mut partials, 1), Err(RunError::ReadOnlyParams));
    }

    #[test]
    fn tasks_that_accumulate_split_over_threads_only_between_disjoint_memory() {
        assert_eq!(chunk_starts(10, 3, None), Some(vec![0, 4, 8]));
        // Leaves 0, 1, 2 with reduced memory of their own: cuts move to the next leaf.
        let own = [(0, 4), (0, 4), (4, 8), (4, 8), (4, 8), (8, 9)];
        assert_eq!(chunk_starts(6, 2, Some(&own)), Some(vec![0, 5]));
        assert_eq!(chunk_starts(6, 3, Some(&own)), Some(vec![0, 2, 5]));
        // Tasks writing nothing may be cut anywhere; the spans of copies of one accumulator
        // (rows::copies) may be cut between.
        let none = (u64::MAX, 0);
        assert_eq!(chunk_starts(4, 2, Some(&[none, (0, 4), none, (4, 8)])), Some(vec![0, 2]));
        assert_eq!(chunk_starts(4, 2, Some(&[(0, 4), (0, 4), none, none])), Some(vec![0, 2]));
        // One leaf, or leaves that share reduced memory, run on one thread.
        assert_eq!(chunk_starts(3, 2, Some(&[(0, 4); 3])), None);
        assert_eq!(chunk_starts(4, 2, Some(&[(0, 4), (0, 4), (2, 6), (2, 6)])), None);
        // Rows interleaving two accumulators' spans (a 3-D leaf reduced over its first axis)
        // are not cut between them.
        assert_eq!(chunk_starts(4, 2, Some(&[(0, 4), (4, 8), (0, 4), (4, 8)])), None);
    }

    #[test]
    fn a_schedule_is_checked_again_for_buffers_of_other_sizes_and_for_another_step() {
        let grads = vec![0.0; 16];
        let mut partials = vec![0.0; 1];
        let mut run = |step: &CompiledStep, schedule: &mut Schedule, slots: &mut Arena| {
            let mut params = vec![0.0; 16];
            let mut leaves = leaves(vec![&mut params], vec![&grads]);
            let one = SlotLayout::all_leaves(&[16], 1);
            let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots, slot_layout: &one, reduced: &mut [] };
            step.run_pass(0, schedule, &[1.0], buffers, &mut partials, 1)
        };
        let step = small(Target::Params);
        let mut schedule = Schedule::new(vec![task(0, 16)], Vec::new());
        assert_eq!(run(&step, &mut schedule, &mut Arena::new(&[16], 0)), Ok(()));
        // The same tasks, a slot too short for them: found, though the last step checked them.
        let short = Err(RunError::OutOfBounds { task: 0, stream: Stream::Slot(0) });
        assert_eq!(run(&step, &mut schedule, &mut Arena::new(&[8], 0)), short);
        assert_eq!(run(&step, &mut schedule, &mut Arena::new(&[16], 0)), Ok(()));
        // Another step's program writes updates, which these buffers do not have.
        let updates = Err(RunError::OutOfBounds { task: 0, stream: Stream::Updates });
        assert_eq!(run(&small(Target::Updates), &mut schedule, &mut Arena::new(&[16], 0)), updates);
    }

    #[test]
    fn every_bad_index_is_refused_before_the_kernel_runs() {
        let step = small(Target::Params);
        let grads = vec![0.0; 16];
        let mut params = vec![0.0; 16];
        let mut partials = vec![0.0; 4];
        let run = |tasks: &[Task], inputs: &[f32], slots: &mut Arena, partials: &mut [f32], threads| {
            let mut params = params.clone();
            let mut leaves = leaves(vec![&mut params], vec![&grads]);
            let one = SlotLayout::all_leaves(&[16], 1);
            let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots, slot_layout: &one, reduced: &mut [] };
            step.run_pass(0, &mut Schedule::new(tasks.to_vec(), Vec::new()), inputs, buffers, partials, threads)
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
        assert_eq!(run(&[task(0, 4); 5], &[1.0], &mut ok.clone(), &mut partials, 1), Err(RunError::Partials { needed: 5, found: 4 }));
        assert_eq!(run(&[task(0, 8), task(4, 8)], &[1.0], &mut ok.clone(), &mut partials, 2), Err(RunError::Overlap { task: 1 }));
        assert_eq!(run(&[task(0, 8), task(8, 8)], &[1.0], &mut ok.clone(), &mut partials, 2), Ok(()));
        let mut leaves = leaves(vec![&mut params], vec![&grads]);
        let one = SlotLayout::all_leaves(&[16], 1);
        let buffers = Buffers { leaves: &mut leaves, offsets: &[0], slots: &mut ok.clone(), slot_layout: &one, reduced: &mut [] };
        assert!(matches!(step.run_pass(1, &mut Schedule::default(), &[], buffers, &mut partials, 1), Err(RunError::NoSuchPass(1))));
    }
}

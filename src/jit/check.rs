//! What [`run_pass`](super::CompiledStep::run_pass) checks before machine code runs: every
//! index a kernel will use (programs, input rows, element ranges in every stream, reduced runs,
//! partials), and a [`Schedule`] that keeps what the checks found for buffers of the sizes they
//! were made for.

use super::run::RunError;
use super::{CompiledPass, Stream, TableRow, Task};
use crate::arena::Arena;
use crate::ir::buffers::{Leaves, SlotLayout};
use crate::ir::plan::BLOCK;

/// The tasks of one pass and the rows of leaves they read, made once per layout, with what
/// [`run_pass`](super::CompiledStep::run_pass) found when it last checked them: a step whose
/// buffers have the same sizes as the last one's checks nothing again (a row program's leaves
/// have a task per row, tens of thousands for a model of small matrices).
#[derive(Debug, Default)]
pub struct Schedule {
    pub(super) tasks: Vec<Task>,
    pub(super) rows: Vec<TableRow>,
    pub(super) checked: Option<Checked>,
    /// Room for the leaf table, rebuilt by every call.
    pub(super) leaf_table: Vec<u64>,
    /// The reduced table, rebuilt only for another reduced buffer or new sizes.
    pub(super) reduced_table: Vec<u64>,
}

impl Schedule {
    /// `tasks`, whose row program tasks lie in `rows` (a task's `row`).
    pub fn new(tasks: Vec<Task>, rows: Vec<TableRow>) -> Schedule {
        Schedule { tasks, rows, ..Schedule::default() }
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }
}

/// What checking a schedule against buffers of one size found.
#[derive(Debug)]
pub(super) struct Checked {
    /// Everything outside the schedule the checks read (see [`key`]).
    pub(super) key: Vec<u64>,
    /// Per task, the span of reduced memory it accumulates into, where any task does.
    pub(super) shared: Option<Vec<(u64, u64)>>,
    /// A task that overlaps another, which only one thread may run.
    pub(super) overlap: Option<usize>,
    /// The chunks last cut for a thread count: (chunks asked for, where each starts).
    pub(super) starts: Option<(usize, Option<Vec<usize>>)>,
    /// The address of the reduced buffer the reduced table was built for.
    pub(super) reduced_at: Option<u64>,
}

/// The elements of `leaf` that `stream` holds, if it holds the leaf: its own buffer, or its
/// range of a slot's buffer (which must lie inside the buffer). Reduced streams are checked
/// against the task's row instead.
fn held(leaves: &Leaves, slots: &Arena, slot_layout: &SlotLayout, stream: Stream, leaf: usize) -> Option<usize> {
    match stream {
        Stream::Grads => leaves.grads.get(leaf).map(|b| b.len()),
        Stream::Params => leaves.params.get(leaf).map(<[f32]>::len),
        Stream::Updates => leaves.updates.get(leaf).map(|b| b.len()),
        Stream::Slot(i) => {
            let range = slot_layout.range(i as usize, leaf)?;
            let words = slot_layout.storage(i as usize).words(range.end);
            (words <= slots.get(i as usize).map_or(0, <[f32]>::len)).then_some(range.len())
        }
        Stream::Reduced(_) => None,
    }
}

/// Everything the checks of `run_pass` read besides the schedule and the compiled pass: the
/// pass, the sizes of the arrays, whether the parameters may be written, the leaves' offsets,
/// and what every stream holds of every leaf. Checks made for one key hold for any buffers
/// with the same key.
#[allow(clippy::too_many_arguments)]
pub(super) fn key(step: u64, pass: usize, inputs: usize, partials: usize, reduced: usize, leaves: &Leaves, offsets: &[usize], slots: &Arena, slot_layout: &SlotLayout) -> Vec<u64> {
    let n = offsets.len().max(leaves.grads.len()).max(leaves.params.len()).max(leaves.updates.len());
    let streams: Vec<Stream> = [Stream::Grads, Stream::Params, Stream::Updates].into_iter().chain((0..slots.len()).map(|s| Stream::Slot(s as u32))).collect();
    let mut key = vec![step, pass as u64, inputs as u64, partials as u64, reduced as u64, u64::from(leaves.params.is_mut()), slots.len() as u64, offsets.len() as u64, n as u64];
    key.extend(offsets.iter().map(|&o| o as u64));
    for leaf in 0..n {
        key.extend(streams.iter().map(|&s| held(leaves, slots, slot_layout, s, leaf).map_or(u64::MAX, |h| h as u64)));
    }
    key
}

/// Checks every index the kernel of `compiled` will use on `tasks`: programs, input rows,
/// element ranges in every stream, reduced runs of the tasks' `rows`, partials; and finds
/// whether the tasks overlap and where they accumulate into reduced memory.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    compiled: &CompiledPass,
    tasks: &[Task],
    rows: &[TableRow],
    inputs: usize,
    leaves: &Leaves,
    offsets: &[usize],
    slots: &Arena,
    slot_layout: &SlotLayout,
    reduced: usize,
    partials: usize,
) -> Result<Checked, RunError> {
    let needed = tasks.len() * compiled.stride;
    if partials < needed {
        return Err(RunError::Partials { needed, found: partials });
    }
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
    let held = |s: Stream, leaf: usize| held(leaves, slots, slot_layout, s, leaf);
    // The elements of a leaf every stream of a program (but reduced ones) holds, for the
    // last (program, leaf) seen: tasks come in runs of one leaf.
    let mut limit: Option<((u64, usize), Option<usize>)> = None;
    // Reductions over axes accumulate into reduced streams that runs of rows share: the
    // span of reduced memory each task writes decides where the tasks may be split over
    // threads.
    let accumulates = compiled.programs.iter().any(|p| p.reduced.iter().any(|r| r.2.is_some()));
    let mut shared: Vec<(u64, u64)> = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        let program = usize::try_from(task.program)
            .ok()
            .and_then(|p| compiled.programs.get(p))
            .ok_or(RunError::NoSuchProgram { task: t, program: task.program })?;
        if task.len > BLOCK as u64 {
            return Err(RunError::TooLong { task: t, len: task.len });
        }
        let row_end = task.inputs.checked_add(program.inputs.len() as u64);
        if row_end.is_none_or(|end| end > inputs as u64) {
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
                    let end = run.and_then(|at| at.checked_add(task.len)).filter(|end| *end <= reduced as u64);
                    // Only an accumulator is written; values read may be shared.
                    let written = program.reduced.get(k as usize).is_some_and(|r| r.2.is_some());
                    if let (Some(at), Some(end), true) = (run, end, written) {
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
            shared.push(span);
        }
    }
    // Tasks in element order are disjoint at a glance (the common case: one group); others
    // are sorted first. (Ends cannot overflow: every task lies in a buffer, checked above.)
    let in_order = tasks.windows(2).all(|w| w[0].start + w[0].len <= w[1].start);
    let mut overlap = None;
    if !in_order {
        let mut ranges: Vec<(u64, u64, usize)> = tasks.iter().enumerate().map(|(t, k)| (k.start, k.start + k.len, t)).collect();
        ranges.sort_unstable();
        overlap = ranges.windows(2).find(|w| w[1].0 < w[0].1).map(|w| w[1].2);
    }
    Ok(Checked { key: Vec::new(), shared: accumulates.then_some(shared), overlap, starts: None, reduced_at: None })
}

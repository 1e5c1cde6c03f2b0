//! Compiled passes inside the interpreter's step: the uniform and per-leaf work stays in
//! `interp`, while each pass's element programs run as machine code over fixed-size blocks (a
//! row program's over blocks of rows, reading the reduced values computed before the pass and
//! handing back the reductions over axes it accumulates). Tasks are made in the interpreter's
//! order (program, then leaf, then block), so the partials come back in the order the
//! interpreter would push them, whatever the thread count.

use crate::arena::Arena;
use crate::interp::{self, Env, PassOutput, Passes, Values, rows, tensor};
use crate::ir::op::Scalar;
use crate::ir::plan::{BLOCK, Pass};
use crate::ir::{Groups, Layout, axes};
use crate::jit::{Buffers, CompiledPass, CompiledStep, RunError, Schedule, TableRow, Task};

/// How compiled passes are split over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    /// Threads a pass may use.
    pub count: usize,
    /// Elements each thread must get before a pass is split: handing work to a thread costs
    /// about as much as a few full blocks of it. (Counted in elements, not tasks: a row
    /// program's tasks are as short as its leaves' rows.) Tests lower it to 1.
    pub min_elements: usize,
}

impl Threads {
    /// `count` threads, each taking at least 8 blocks' worth of elements.
    pub fn new(count: usize) -> Threads {
        Threads { count: count.max(1), min_elements: 8 * BLOCK }
    }

    /// The threads a pass of `elements` elements is split over.
    fn for_pass(self, elements: usize) -> usize {
        self.count.min(elements / self.min_elements.max(1)).max(1)
    }
}

/// A compiled step with its tasks for one layout, made once, and buffers reused by every step.
pub struct Runner {
    pub step: CompiledStep,
    passes: Vec<PassTasks>,
}

/// The tasks of one pass, and what a step fills in for them.
struct PassTasks {
    /// The tasks, and the rows of leaves of row programs' tasks.
    schedule: Schedule,
    /// Per task and reduction (`stride` apart): where a reduction over the last axis keeps the
    /// task's row in its value (`rows::row_start`); `usize::MAX` for other reductions.
    row_at: Vec<usize>,
    /// The (program, leaf, row of a row program) of each input row, in row order.
    rows: Vec<(usize, usize, Option<usize>)>,
    /// The runs of consecutive tasks of one program and leaf: (first task, end, program, leaf).
    task_runs: Vec<(usize, usize, usize, usize)>,
    /// Where each reduced stream keeps each leaf in `reduced`.
    runs: Vec<Run>,
    /// The elements of all tasks.
    elements: usize,
    /// Input rows, partials and reduced streams, refilled by every step.
    inputs: Vec<f32>,
    partials: Vec<f32>,
    reduced: Vec<f32>,
}

/// The run of reduced stream `stream` of program `program` for leaf `leaf`: `copies` runs of
/// `len` (an accumulator's copies, `rows::copies`; one for a value read).
struct Run {
    program: usize,
    leaf: usize,
    stream: usize,
    start: usize,
    len: usize,
    copies: usize,
}

impl Runner {
    /// The tasks of `step`'s passes for `layout` (split into `groups`, leaves at `offsets`).
    pub fn new(step: CompiledStep, groups: &Groups, layout: &Layout, offsets: &[usize]) -> Runner {
        let passes = step.passes().iter().map(|compiled| PassTasks::new(compiled, groups, layout, offsets)).collect();
        Runner { step, passes }
    }
}

impl PassTasks {
    fn new(compiled: &CompiledPass, groups: &Groups, layout: &Layout, offsets: &[usize]) -> PassTasks {
        let mut pass = PassTasks {
            schedule: Schedule::default(),
            row_at: Vec::new(),
            rows: Vec::new(),
            task_runs: Vec::new(),
            runs: Vec::new(),
            elements: 0,
            inputs: Vec::new(),
            partials: Vec::new(),
            reduced: Vec::new(),
        };
        let (mut tasks, mut table) = (Vec::new(), Vec::new());
        let mut row = 0;
        for (p, info) in compiled.programs.iter().enumerate() {
            for &l in &groups.leaves[info.group] {
                let (base, len) = (offsets[l], layout.leaves[l].len());
                let task = |start: usize, len: usize, inputs: usize, row: usize| Task {
                    program: p as u64,
                    start: (base + start) as u64,
                    len: len as u64,
                    inputs: inputs as u64,
                    leaf: l as u64,
                    row: row as u64,
                };
                if !info.rows {
                    pass.rows.push((p, l, None));
                    for start in (0..len).step_by(BLOCK) {
                        tasks.push(task(start, BLOCK.min(len - start), row, 0));
                        pass.row_at.extend(std::iter::repeat_n(usize::MAX, compiled.stride));
                    }
                    row += info.inputs.len();
                    continue;
                }
                // A row program: a task per block of a row, a row of inputs and of the leaf
                // table per row.
                let shape = &layout.leaves[l].shape;
                let mut runs = Vec::new();
                for (k, (_, axes, accumulated)) in info.reduced.iter().enumerate() {
                    let (start, stored) = (pass.reduced.len(), axes::stored_shape(shape, *axes));
                    let len = stored.iter().product();
                    let copies = if accumulated.is_some() { rows::copies(shape, len) } else { 1 };
                    pass.reduced.resize(start + len * copies, 0.0);
                    pass.runs.push(Run { program: p, leaf: l, stream: k, start, len, copies });
                    runs.push((start, stored, len, copies));
                }
                // The value each reduction over the last axis accumulates rows into.
                let per_row: Vec<Option<Vec<usize>>> = (0..compiled.stride)
                    .map(|r| {
                        let red = info.reductions.get(r)?.0;
                        let &(_, axes) = info.axis_reductions.iter().find(|(n, _)| *n == red)?;
                        Some(axes::stored_shape(shape, axes))
                    })
                    .collect();
                let mut last = None;
                for segment in rows::segments(shape) {
                    if last != Some(segment.row) {
                        last = Some(segment.row);
                        let reduced = runs
                            .iter()
                            .map(|(start, stored, len, copies)| start + rows::copy_of(shape, *copies, segment.row) * len + rows::row_start(stored, shape, segment.row).0)
                            .collect();
                        table.push(TableRow { leaf: l, first: segment.start - segment.col, reduced });
                        pass.rows.push((p, l, Some(segment.row)));
                        row += info.inputs.len();
                    }
                    let inputs = row - info.inputs.len();
                    tasks.push(task(segment.start, segment.len, inputs, table.len() - 1));
                    pass.row_at.extend(per_row.iter().map(|stored| stored.as_ref().map_or(usize::MAX, |s| rows::row_start(s, shape, segment.row).0)));
                }
            }
        }
        let mut first = 0;
        while let Some(task) = tasks.get(first) {
            let end = first + tasks[first..].iter().take_while(|u| (u.program, u.leaf) == (task.program, task.leaf)).count();
            pass.task_runs.push((first, end, task.program as usize, task.leaf as usize));
            first = end;
        }
        pass.partials = vec![0.0; tasks.len() * compiled.stride];
        pass.elements = tasks.iter().map(|t| t.len as usize).sum();
        pass.schedule = Schedule::new(tasks, table);
        pass
    }

    /// Fills the input rows: uniform and per-leaf values, and a row program's reduced values
    /// with one value per row.
    fn fill_inputs(&mut self, compiled: &CompiledPass, env: &Env, values: &Values) {
        self.inputs.clear();
        let mut current = None;
        let mut common: Vec<f32> = Vec::new();
        let mut per_row: Vec<(usize, &tensor::Value)> = Vec::new();
        for &(p, l, row) in &self.rows {
            let info = &compiled.programs[p];
            if current != Some((p, l)) {
                current = Some((p, l));
                common = info.inputs.iter().map(|&n| interp::broadcast(env, &values.uniform, &values.leaf, n, info.group, l).f()).collect();
                per_row = info.inputs.iter().enumerate().filter_map(|(k, n)| Some((k, values.reduced.get(&(*n, l))?))).collect();
            }
            let start = self.inputs.len();
            self.inputs.extend_from_slice(&common);
            if let Some(row) = row {
                for &(k, v) in &per_row {
                    self.inputs[start + k] = v.data[rows::row_start(&v.shape, &env.layout.leaves[l].shape, row).0];
                }
            }
        }
    }

    /// Fills the reduced streams: values read, and reductions' starting values.
    fn fill_reduced(&mut self, compiled: &CompiledPass, env: &Env, values: &Values) {
        for run in &self.runs {
            let info = &compiled.programs[run.program];
            let (node, axes, accumulated) = info.reduced[run.stream];
            let to = &mut self.reduced[run.start..run.start + run.len * run.copies];
            match (accumulated, values.reduced.get(&(node, run.leaf))) {
                (Some(kind), _) => to.fill(interp::identity(kind).f()),
                (None, Some(v)) => to.copy_from_slice(&tensor::fit(v, &axes::stored_shape(&env.layout.leaves[run.leaf].shape, axes))),
                (None, None) => to.fill(interp::broadcast(env, &values.uniform, &values.leaf, node, info.group, run.leaf).f()),
            }
        }
    }

    /// Hands back what the kernel computed: reduction partials, and reductions over axes.
    fn collect(&self, compiled: &CompiledPass, pass: &Pass, env: &Env, out: &mut PassOutput) {
        let shape = |l: usize| &env.layout.leaves[l].shape;
        for program in pass.programs.iter().filter(|p| p.rows) {
            for &l in &env.groups.leaves[program.group] {
                interp::start_axis_reductions(env, program, l, out);
            }
        }
        for run in &self.runs {
            let (node, axes, accumulated) = compiled.programs[run.program].reduced[run.stream];
            if let Some(kind) = accumulated {
                let runs = &self.reduced[run.start..run.start + run.len * run.copies];
                let mut data = runs[..run.len].to_vec();
                interp::fold_copies(kind, &mut data, runs.chunks_exact(run.len.max(1)).skip(1));
                out.axes.insert((node, run.leaf), tensor::Value { shape: axes::stored_shape(shape(run.leaf), axes), data, leafwise: true });
            }
        }
        let stride = compiled.stride;
        if stride == 0 {
            return;
        }
        // Runs of tasks of one program and leaf, each reduction's partials in task order.
        for &(t, end, p, l) in &self.task_runs {
            let Some(info) = compiled.programs.get(p) else { continue };
            for (r, &(red, kind)) in info.reductions.iter().enumerate() {
                let partial = |u: usize| self.partials.get(u * stride + r).map(|&x| interp::finished(kind, x));
                if self.row_at[t * stride + r] == usize::MAX {
                    let parts = out.partials.entry(red).or_default();
                    parts.extend((t..end).filter_map(|u| Some((l, partial(u)?))));
                    continue;
                }
                // Over the last axis: each block's partial goes to its row's value.
                let Some(acc) = out.axes.get_mut(&(red, l)) else { continue };
                for u in t..end {
                    let (Some(p), Some(x)) = (partial(u), acc.data.get_mut(self.row_at[u * stride + r])) else { continue };
                    *x = interp::combine(kind, Scalar::F32(*x), p).f();
                }
            }
        }
    }
}

/// Runs the passes of a step with a [`Runner`]'s kernels, updating element state in place.
pub struct Compiled<'a> {
    pub runner: &'a mut Runner,
    /// The element slots of the state (slots of other levels are empty).
    pub slots: &'a mut Arena,
    pub threads: Threads,
    /// The first refusal of a kernel run (a bug in the runtime if it happens).
    pub error: Option<RunError>,
}

impl Passes for Compiled<'_> {
    fn element_state(&self) -> Option<&Arena> {
        Some(self.slots)
    }

    fn run_pass(&mut self, index: usize, pass: &Pass, env: &mut Env, values: &Values, out: &mut PassOutput) {
        if self.error.is_some() {
            return;
        }
        let Runner { step, passes } = &mut *self.runner;
        let (Some(compiled), Some(tasks)) = (step.passes().get(index), passes.get_mut(index)) else {
            self.error = Some(RunError::NoSuchPass(index));
            return;
        };
        tasks.fill_inputs(compiled, env, values);
        tasks.fill_reduced(compiled, env, values);
        let buffers = Buffers {
            leaves: &mut env.leaves,
            offsets: env.offsets,
            slots: &mut *self.slots,
            slot_layout: env.slots,
            reduced: &mut tasks.reduced,
        };
        let threads = self.threads.for_pass(tasks.elements);
        if let Err(e) = step.run_pass(index, &mut tasks.schedule, &tasks.inputs, buffers, &mut tasks.partials, threads) {
            self.error = Some(e);
            return;
        }
        tasks.collect(compiled, pass, env, out);
    }
}

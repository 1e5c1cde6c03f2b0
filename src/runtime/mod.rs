//! The runtime API: an [`Optimizer`] is a pipeline instantiated for a layout, with its state;
//! `step` updates parameter buffers in place.

pub mod blocks;
pub mod checkpoint;
mod eval;
pub mod snapshot;

use std::path::Path;

use crate::arena::{self, Arena};
use crate::check::{Program, summary};
use crate::diagnostic::Diagnostic;
use crate::interp::{self, Env, State};
use crate::ir::buffers::{self, Leaves, Params, SlotLayout};
use crate::ir::instantiate::instantiate;
use crate::ir::op::Scalar;
use crate::ir::plan::{self, Plan, Target};
use crate::ir::{Layout, Level, StepIr};
use crate::jit::{self, CompiledStep};

/// Why a step could not run.
#[derive(Clone, Debug, PartialEq)]
pub enum StepError {
    /// A buffer has the wrong number of elements.
    Length { what: &'static str, expected: usize, found: usize },
    /// A leaf's buffer has the wrong number of elements.
    LeafLength { what: &'static str, leaf: String, expected: usize, found: usize },
    /// There is not one buffer per leaf.
    Leaves { what: &'static str, expected: usize, found: usize },
    /// The step asked for is not the kind the optimizer was built for (updates added to the
    /// parameters, or written apart: [`Options::separate_updates`]).
    Output { separate: bool },
    /// The pipeline needs a value (the loss) and none was given.
    MissingValue,
    /// A value was given to a pipeline that does not read one.
    UnexpectedValue,
    /// The compiled code refused to run: a bug in optc.
    Internal(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Length { what, expected, found } => {
                write!(f, "{what} has {found} elements, but the layout has {expected}")
            }
            StepError::LeafLength { what, leaf, expected, found } => {
                write!(f, "{what} of `{leaf}` has {found} elements, but the leaf has {expected}")
            }
            StepError::Leaves { what, expected, found } => write!(f, "{found} {what} buffers given for {expected} leaves"),
            StepError::Output { separate: true } => {
                write!(f, "this optimizer writes the updates apart: step it with `step_updates`")
            }
            StepError::Output { separate: false } => {
                write!(f, "this optimizer adds the updates to the parameters: step it with `step` or `step_leaves`")
            }
            StepError::MissingValue => write!(f, "this pipeline reads the loss at every step: pass `value`"),
            StepError::UnexpectedValue => {
                write!(f, "this pipeline does not read a value; pass none (a value given by mistake hides a bug)")
            }
            StepError::Internal(m) => write!(f, "internal error (a bug in optc): {m}"),
        }
    }
}

impl std::error::Error for StepError {}

/// What runs the element work of a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Machine code from Cranelift (the default).
    #[default]
    Jit,
    /// The reference interpreter.
    Interp,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "jit" => Ok(Backend::Jit),
            "interp" => Ok(Backend::Interp),
            _ => Err(format!("unknown backend `{s}`: expected `jit` or `interp`")),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Jit => "jit",
            Backend::Interp => "interp",
        })
    }
}

/// How an [`Optimizer`] is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub backend: Backend,
    /// Steps write the updates to the caller's buffers ([`Optimizer::step_updates`]) instead
    /// of adding them to the parameters: for a caller that applies updates itself, as users
    /// of Optax's `update` do.
    pub separate_updates: bool,
}

/// A pipeline instantiated for a layout, with its state.
pub struct Optimizer {
    pub ir: StepIr,
    pub step_plan: Plan,
    pub init_plan: Plan,
    state: State,
    offsets: Vec<usize>,
    /// Where each per-element slot keeps each leaf (only the leaves of its groups).
    slot_layout: SlotLayout,
    /// Values of the IR's named uniforms at the last step, in the order of `ir.named` (names
    /// are attached only when asked for, to keep them out of every step).
    last: Vec<Option<Scalar>>,
    /// Steps taken since initialisation.
    steps: u64,
    /// The resolved pipeline, on one line (for messages about state files).
    pipeline: String,
    /// How each leaf group's learning rate is known (`ir::step_size`).
    step_sizes: Vec<crate::ir::step_size::StepSize>,
    /// The step's passes as machine code, with their tasks (the `Jit` backend).
    compiled: Option<blocks::Runner>,
    /// How the compiled passes are split over threads.
    threads: blocks::Threads,
    /// Whether steps write the updates apart ([`Options::separate_updates`]).
    separate_updates: bool,
    /// The evaluation weights' plan and code, when the pipeline defines them.
    eval: Option<eval::EvalRunner>,
}

impl Optimizer {
    /// Instantiates `program`'s pipeline for `layout` and initialises its state from `params`;
    /// steps run as compiled code.
    pub fn new(program: &Program, layout: &Layout, params: &[f32]) -> Result<Optimizer, Vec<Diagnostic>> {
        Optimizer::with_backend(program, layout, params, Backend::default())
    }

    /// As [`Optimizer::new`], with steps run by `backend`.
    pub fn with_backend(program: &Program, layout: &Layout, params: &[f32], backend: Backend) -> Result<Optimizer, Vec<Diagnostic>> {
        let total = layout.total();
        if params.len() != total {
            return Err(vec![Diagnostic::error(
                "layout-mismatch",
                format!("the parameters have {} elements, but the layout has {total}", params.len()),
            )]);
        }
        Optimizer::with_options(program, layout, &buffers::split(layout, params), Options { backend, ..Options::default() })
    }

    /// Instantiates `program`'s pipeline for `layout` and initialises its state from `params`
    /// (one slice per leaf, in layout order), built as `options` says.
    pub fn with_options(program: &Program, layout: &Layout, params: &[&[f32]], options: Options) -> Result<Optimizer, Vec<Diagnostic>> {
        let mismatch = |m: String| vec![Diagnostic::error("layout-mismatch", m)];
        if params.len() != layout.leaves.len() {
            return Err(mismatch(format!("{} parameter buffers given for {} leaves", params.len(), layout.leaves.len())));
        }
        if let Some((leaf, p)) = layout.leaves.iter().zip(params).find(|(leaf, p)| leaf.len() != p.len()) {
            return Err(mismatch(format!("the parameters of `{}` have {} elements, but the leaf has {}", leaf.name, p.len(), leaf.len())));
        }
        let mut ir = instantiate(program, layout)?;
        let step_sizes = crate::ir::step_size::add(&mut ir);
        let n_groups = ir.groups.len();
        let updates = if options.separate_updates { Target::Updates } else { Target::Params };
        let step_plan = plan::plan(&ir.graph, n_groups, plan::step_outputs(&ir, updates));
        let init_plan = plan::plan(&ir.init, n_groups, plan::init_outputs(&ir));
        let offsets = interp::offsets(layout);
        let slot_layout = SlotLayout::new(&ir);
        let pipeline = program.pipeline.as_ref().map(|tx| one_line(&summary::describe(program, tx))).unwrap_or_default();
        let backend = options.backend;
        let compiled = match backend {
            Backend::Interp => None,
            Backend::Jit => {
                let step = jit::compile(&ir.graph, &step_plan)
                    .map_err(|e| vec![Diagnostic::bug(format!("the JIT failed on this pipeline: {e}"))])?;
                Some(blocks::Runner::new(step, &ir.groups, &ir.layout, &offsets))
            }
        };
        let eval = match &ir.eval {
            Some(e) => Some(eval::EvalRunner::new(e, &ir.groups, &ir.layout, &offsets, backend)?),
            None => None,
        };
        let mut opt = Optimizer {
            ir,
            step_plan,
            init_plan,
            state: State::default(),
            offsets,
            slot_layout,
            last: Vec::new(),
            steps: 0,
            pipeline,
            step_sizes,
            compiled,
            threads: blocks::Threads::new(default_threads()),
            separate_updates: options.separate_updates,
            eval,
        };
        let mut init = match backend {
            Backend::Interp => None,
            Backend::Jit => {
                let step = jit::compile(&opt.ir.init, &opt.init_plan)
                    .map_err(|e| vec![Diagnostic::bug(format!("the JIT failed on this pipeline's initial state: {e}"))])?;
                Some(blocks::Runner::new(step, &opt.ir.groups, &opt.ir.layout, &opt.offsets))
            }
        };
        opt.state = opt.initial_state(params, init.as_mut()).map_err(|e| vec![Diagnostic::bug(e.to_string())])?;
        Ok(opt)
    }

    /// The state before the first step, for parameters `params`, computed by `compiled` (the
    /// init plan as machine code) or the interpreter.
    fn initial_state(&self, params: &[&[f32]], compiled: Option<&mut blocks::Runner>) -> Result<State, StepError> {
        let empty = State::default();
        let n = self.ir.slots.len();
        // The compiled code writes element slots in place; the interpreter returns them.
        let mut element = element_arena(&self.slot_layout);
        let mut env = Env {
            graph: &self.ir.init,
            layout: &self.ir.layout,
            groups: &self.ir.groups,
            offsets: &self.offsets,
            slots: &self.slot_layout,
            // The initial state only reads the parameters.
            leaves: Leaves { params: Params::Ref(params.to_vec()), grads: Vec::new(), updates: Vec::new() },
            value: 0.0,
            state: &empty,
        };
        let jit = compiled.is_some();
        let results = match compiled {
            None => interp::run(&self.init_plan, &mut env),
            Some(runner) => {
                let mut passes = blocks::Compiled { runner, slots: &mut element, threads: self.threads, error: None };
                let results = interp::run_with(&self.init_plan, &mut env, &mut passes);
                if let Some(e) = passes.error {
                    return Err(StepError::Internal(e.to_string()));
                }
                results
            }
        };
        // The slots some program wrote: in place, or in the interpreter's results.
        let mut written: Vec<u32> = results.element.keys().copied().collect();
        if jit {
            let programs = self.init_plan.passes.last().map(|p| p.programs.as_slice()).unwrap_or_default();
            written.extend(programs.iter().flat_map(|p| &p.writes).filter_map(|(t, _)| match t {
                Target::Slot(s) => Some(*s),
                Target::Params | Target::Updates => None,
            }));
        }
        for (s, v) in &results.element {
            if let Some(buffer) = element.get_mut(*s as usize) {
                self.slot_layout.storage(*s as usize).pack(buffer, 0, v);
            }
        }
        written.extend(results.ranges.iter().map(|(s, _, _)| *s));
        write_ranges(&self.slot_layout, &mut element, &results.ranges);
        let mut state = State { uniform: vec![Scalar::F32(0.0); n], leaf: vec![Vec::new(); n], element };
        for (i, slot) in self.ir.slots.iter().enumerate() {
            let get_uniform = |node| results.uniform.get(&node).copied().or_else(|| self.ir.init.as_const(node));
            match slot.level {
                Level::Uniform => {
                    state.uniform[i] = get_uniform(slot.init).unwrap_or(Scalar::F32(0.0));
                }
                Level::Leaf => {
                    let mut v = vec![0.0; self.ir.layout.leaves.len()];
                    let per_leaf = results.leaf.get(&slot.init);
                    let fill = get_uniform(slot.init);
                    for g in slot.groups.iter() {
                        for &l in &self.ir.groups.leaves[g] {
                            v[l] = per_leaf.and_then(|p| p.get(l)).map(|s| s.f()).or(fill.map(|s| s.f())).unwrap_or(0.0);
                        }
                    }
                    state.leaf[i] = v;
                }
                Level::Element => {
                    // Unwritten slots start from their uniform initial value (the arena is zeroed).
                    if !written.contains(&(i as u32))
                        && let Some(fill) = get_uniform(slot.init)
                        && let Some(v) = state.element.get_mut(i)
                    {
                        let n = self.slot_layout.lens()[i];
                        self.slot_layout.storage(i).pack(v, 0, &vec![fill.f(); n]);
                    }
                }
            }
        }
        Ok(state)
    }

    /// What runs the steps.
    pub fn backend(&self) -> Backend {
        if self.compiled.is_some() { Backend::Jit } else { Backend::Interp }
    }

    /// The compiled passes (the `Jit` backend), e.g. to print their Cranelift IR.
    pub fn compiled(&self) -> Option<&CompiledStep> {
        self.compiled.as_ref().map(|r| &r.step)
    }

    /// Splits compiled passes over `threads` threads (at least 1; by default, every core the
    /// process may use). Results do not depend on it.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads.count = threads.max(1);
    }

    /// Splits a compiled pass over threads only where each gets at least `elements` elements
    /// (by default enough to pay for handing them over). Tests lower it to 1, so that the
    /// splits of small layouts are exercised; results do not depend on it.
    pub fn set_min_per_thread(&mut self, elements: usize) {
        self.threads.min_elements = elements.max(1);
    }

    /// Where each per-element slot keeps each leaf.
    pub fn slot_layout(&self) -> &SlotLayout {
        &self.slot_layout
    }

    /// Threads the compiled passes are split over.
    pub fn threads(&self) -> usize {
        self.threads.count
    }

    /// Whether steps write the updates apart ([`Options::separate_updates`]).
    pub fn separate_updates(&self) -> bool {
        self.separate_updates
    }

    /// What instantiation noticed but did not refuse, such as a glob that matches no leaf.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.ir.warnings
    }

    /// Whether `step` needs a value (the loss).
    pub fn needs_value(&self) -> bool {
        self.ir.needs_value
    }

    /// One step: `params += update(grads)`, in place; the state advances. `params` and
    /// `grads` hold every leaf, one after another in layout order.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], value: Option<f32>) -> Result<(), StepError> {
        let total = self.ir.layout.total();
        if params.len() != total {
            return Err(StepError::Length { what: "params", expected: total, found: params.len() });
        }
        if grads.len() != total {
            return Err(StepError::Length { what: "grads", expected: total, found: grads.len() });
        }
        let layout = &self.ir.layout;
        let leaves = Leaves { params: Params::Mut(buffers::split_mut(layout, params)), grads: buffers::split(layout, grads), updates: Vec::new() };
        self.run(leaves, value)
    }

    /// As [`Optimizer::step`], with one buffer per leaf, in layout order (wherever each lives).
    pub fn step_leaves(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], value: Option<f32>) -> Result<(), StepError> {
        let leaves = Leaves { params: Params::Mut(params.iter_mut().map(|p| &mut **p).collect()), grads: grads.to_vec(), updates: Vec::new() };
        self.run(leaves, value)
    }

    /// As [`Optimizer::step_leaves`], leaving the leaves `held` (indices in the layout) as
    /// they were: their parameters and their per-leaf and per-element state. Their gradients
    /// are not used (give zeros: reductions over all leaves, such as a global norm, see
    /// them). Uniform state, such as step counters, is shared by every leaf and advances.
    /// (What PyTorch's optimizers do with a parameter whose `grad` is `None`, as far as state
    /// shared by all leaves allows.)
    pub fn step_leaves_holding(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], value: Option<f32>, held: &[usize]) -> Result<(), StepError> {
        let n = self.ir.layout.leaves.len().min(params.len());
        let held: Vec<usize> = held.iter().copied().filter(|&l| l < n).collect();
        // Copies of what the step must not change: (slot, leaf, value) and (slot, start, values).
        let mut per_leaf: Vec<(usize, usize, f32)> = Vec::new();
        let mut per_element: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        for &l in &held {
            for (s, slot) in self.ir.slots.iter().enumerate() {
                match (slot.level, self.slot_layout.range(s, l)) {
                    (Level::Leaf, _) => per_leaf.push((s, l, self.state.leaf[s][l])),
                    (Level::Element, Some(range)) => {
                        let (storage, words) = (self.slot_layout.storage(s), self.state.element.get(s).unwrap_or_default());
                        per_element.push((s, range.start, range.map(|i| storage.get(words, i).unwrap_or(0.0)).collect()));
                    }
                    _ => {}
                }
            }
        }
        let kept: Vec<Vec<f32>> = held.iter().map(|&l| params[l].to_vec()).collect();
        self.step_leaves(params, grads, value)?;
        for (&l, p) in held.iter().zip(kept) {
            params[l].copy_from_slice(&p);
        }
        for (s, l, x) in per_leaf {
            self.state.leaf[s][l] = x;
        }
        for (s, start, v) in per_element {
            if let Some(buffer) = self.state.element.get_mut(s) {
                self.slot_layout.storage(s).pack(buffer, start, &v);
            }
        }
        Ok(())
    }

    /// One step that writes `update(grads)` to `updates` and leaves the parameters alone (an
    /// optimizer built with [`Options::separate_updates`]); one buffer per leaf, in layout
    /// order. The caller applies them: `params + updates` in float32 is what
    /// [`Optimizer::step`] would have made.
    pub fn step_updates(&mut self, params: &[&[f32]], grads: &[&[f32]], value: Option<f32>, updates: &mut [&mut [f32]]) -> Result<(), StepError> {
        let updates = updates.iter_mut().map(|u| &mut **u).collect();
        self.run(Leaves { params: Params::Ref(params.to_vec()), grads: grads.to_vec(), updates }, value)
    }

    /// Runs a step on `leaves`, after checking every buffer and the value.
    fn run(&mut self, leaves: Leaves, value: Option<f32>) -> Result<(), StepError> {
        let layout = &self.ir.layout;
        let n = layout.leaves.len();
        // Updates written apart need buffers for them and read-only parameters; in place, the
        // reverse (a layout without leaves has no buffers either way).
        let apart = !leaves.updates.is_empty() || n == 0 && self.separate_updates;
        if apart != self.separate_updates || self.separate_updates == leaves.params.is_mut() {
            return Err(StepError::Output { separate: self.separate_updates });
        }
        for (what, found) in [("params", leaves.params.len()), ("grads", leaves.grads.len())] {
            if found != n {
                return Err(StepError::Leaves { what, expected: n, found });
            }
        }
        if let Err(e) = leaves.check(layout) {
            let leaf = layout.leaves.get(e.leaf).map(|l| l.name.clone()).unwrap_or_default();
            return Err(StepError::LeafLength { what: e.what, leaf, expected: e.expected, found: e.found });
        }
        let value = match (self.ir.needs_value, value) {
            (true, None) => return Err(StepError::MissingValue),
            (false, Some(_)) => return Err(StepError::UnexpectedValue),
            (_, v) => v.unwrap_or(0.0),
        };
        let mut state = std::mem::take(&mut self.state);
        // Element state is updated in place by the kernels; the interpreter's part of the step
        // (uniform and per-leaf work) never reads it.
        let mut element = if self.compiled.is_some() { std::mem::take(&mut state.element) } else { Arena::default() };
        let (results, error) = {
            let mut env = Env {
                graph: &self.ir.graph,
                layout: &self.ir.layout,
                groups: &self.ir.groups,
                offsets: &self.offsets,
                slots: &self.slot_layout,
                leaves,
                value,
                state: &state,
            };
            match &mut self.compiled {
                None => (interp::run(&self.step_plan, &mut env), None),
                Some(runner) => {
                    let mut passes = blocks::Compiled { runner, slots: &mut element, threads: self.threads, error: None };
                    let results = interp::run_with(&self.step_plan, &mut env, &mut passes);
                    (results, passes.error.take())
                }
            }
        };
        if self.compiled.is_some() {
            state.element = element;
        }
        if let Some(e) = error {
            self.state = state;
            return Err(StepError::Internal(e.to_string()));
        }
        let mut next = state;
        for (target, _, _) in &self.step_plan.outputs.element {
            if let Target::Slot(s) = target
                && let Some(v) = results.element.get(s)
                && let Some(buffer) = next.element.get_mut(*s as usize)
            {
                self.slot_layout.storage(*s as usize).pack(buffer, 0, v);
            }
        }
        write_ranges(&self.slot_layout, &mut next.element, &results.ranges);
        for (s, node, groups) in &self.step_plan.outputs.leaf {
            let per_leaf = results.leaf.get(node);
            let fill = results.uniform.get(node).copied().or_else(|| self.ir.graph.as_const(*node));
            for g in groups.iter() {
                for &l in &self.ir.groups.leaves[g] {
                    if let Some(v) = per_leaf.and_then(|p| p.get(l)).map(|x| x.f()).or(fill.map(|x| x.f())) {
                        next.leaf[*s as usize][l] = v;
                    }
                }
            }
        }
        for (s, node) in &self.step_plan.outputs.uniform {
            let v = results.uniform.get(node).copied().or_else(|| self.ir.graph.as_const(*node));
            if let (Some(s), Some(v)) = (s, v) {
                next.uniform[*s as usize] = v;
            }
        }
        self.last.clear();
        let graph = &self.ir.graph;
        self.last.extend(self.ir.named.iter().map(|n| results.uniform.get(&n.node).copied().or_else(|| graph.as_const(n.node))));
        self.state = next;
        self.steps += 1;
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// How each leaf group's effective learning rate is known: a named uniform (`lr`, or
    /// `lr[G]` when groups differ), or to be measured from the step.
    pub fn step_sizes(&self) -> &[crate::ir::step_size::StepSize] {
        &self.step_sizes
    }

    /// Writes the state to `path` (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        checkpoint::save(path, &self.ir, &self.state, self.steps, &self.pipeline)
    }

    /// Replaces the state with one saved by [`Optimizer::save`] for the same pipeline and
    /// layout; anything else is refused with a message saying which.
    pub fn load(&mut self, path: &Path) -> Result<(), checkpoint::LoadError> {
        let (state, steps) = checkpoint::load(path, &self.ir, &self.pipeline)?;
        self.state = state;
        self.steps = steps;
        self.last.clear();
        Ok(())
    }

    /// The state, with what identifies the pipeline and layout it belongs to.
    pub fn snapshot(&self) -> snapshot::Snapshot {
        snapshot::take(&self.ir, &self.state, self.steps, &self.pipeline)
    }

    /// Replaces the state with `snapshot`, taken from an optimizer of the same pipeline and
    /// layout; anything else is refused with the reason, and nothing changes.
    pub fn restore(&mut self, snapshot: &snapshot::Snapshot) -> Result<(), checkpoint::LoadError> {
        self.steps = snapshot::restore(&self.ir, &mut self.state, &self.pipeline, snapshot)?;
        self.last.clear();
        Ok(())
    }

    /// The state packed into two flat vectors by kind, and where each slot lives in them
    /// ([`snapshot::pack`]).
    pub fn packed_state(&self) -> (Vec<f32>, Vec<i32>) {
        snapshot::pack(&self.ir, &self.state)
    }

    /// Where each slot lives in [`Optimizer::packed_state`].
    pub fn packed_layout(&self) -> Vec<snapshot::PackedSlot> {
        snapshot::packed_layout(&self.ir)
    }

    /// Replaces the state with vectors from [`Optimizer::packed_state`] of an optimizer of the
    /// same pipeline and layout, after `steps` steps; other lengths are refused, and nothing
    /// changes.
    pub fn load_packed_state(&mut self, f: &[f32], i: &[i32], steps: u64) -> Result<(), checkpoint::LoadError> {
        snapshot::unpack(&self.ir, &mut self.state, f, i)?;
        self.steps = steps;
        self.last.clear();
        Ok(())
    }

    /// The resolved pipeline on one line (`chain > adam(learning_rate=0.001) > ...`), as state
    /// files record it.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// Every uniform a user can read: uniform state after the last step, and named values of it.
    pub fn uniforms(&self) -> Vec<(String, Scalar)> {
        let mut out: Vec<(String, Scalar)> = self
            .ir
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.level == Level::Uniform)
            // A merged slot answers to every name it had (`ir::merge`).
            .flat_map(|(i, s)| std::iter::once(&s.name).chain(&s.aliases).map(move |name| (name.clone(), self.state.uniform[i])))
            .collect();
        out.extend(self.ir.named.iter().zip(&self.last).filter_map(|(n, v)| v.map(|v| (n.name.clone(), v))));
        out
    }

    /// A uniform by name.
    pub fn uniform(&self, name: &str) -> Option<Scalar> {
        self.uniforms().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Threads a step uses unless told otherwise: every core the process may use.
pub fn default_threads() -> usize {
    crate::parallel::cores()
}

/// Writes the parts of element slots that whole-leaf programs computed
/// ([`interp::Results::ranges`]).
fn write_ranges(slots: &SlotLayout, element: &mut Arena, ranges: &[(u32, usize, Vec<f32>)]) {
    for (s, start, v) in ranges {
        if let Some(buffer) = element.get_mut(*s as usize) {
            slots.storage(*s as usize).pack(buffer, *start, v);
        }
    }
}

/// Zeroed element state laid out as `slots` says: one buffer per slot, holding its leaves
/// (empty for slots of other levels).
pub fn element_arena(slots: &SlotLayout) -> Arena {
    Arena::new(&slots.words(), arena::STATE)
}

/// The tree of `summary::describe` on one line.
fn one_line(tree: &str) -> String {
    tree.lines()
        .map(|l| l.trim_start_matches(|c: char| c.is_whitespace() || "│├└─".contains(c)))
        .collect::<Vec<_>>()
        .join(" > ")
}

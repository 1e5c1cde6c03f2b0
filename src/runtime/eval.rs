//! The evaluation weights of a pipeline whose transforms define them (`eval_params`:
//! Schedule-Free's averaged iterate, Lookahead's slow weights, an EMA of the parameters):
//! computed from the parameters and the state after the last step, by the same machinery as a
//! step, writing to the caller's buffers. Nothing changes; the interpreter and the compiled
//! code agree bit for bit, as they do on steps.

use crate::arena::Arena;
use crate::diagnostic::Diagnostic;
use crate::interp::{self, Env};
use crate::ir::buffers::{self, Leaves, Params};
use crate::ir::plan::{self, Outputs, Plan, Target};
use crate::ir::{Eval, Groups, Layout};
use crate::jit;

use super::{Backend, Optimizer, StepError, blocks};

/// The evaluation weights planned, and compiled for the `Jit` backend.
pub(super) struct EvalRunner {
    plan: Plan,
    compiled: Option<blocks::Runner>,
}

impl EvalRunner {
    /// Plans `eval` (and compiles it, for `backend`) for `layout` split into `groups`.
    pub(super) fn new(eval: &Eval, groups: &Groups, layout: &Layout, offsets: &[usize], backend: Backend) -> Result<EvalRunner, Vec<Diagnostic>> {
        let mut outputs = Outputs::default();
        outputs.element.push((Target::Updates, eval.weights, groups.all()));
        let plan = plan::plan(&eval.graph, groups.len(), outputs);
        let compiled = match backend {
            Backend::Interp => None,
            Backend::Jit => {
                let step = jit::compile(&eval.graph, &plan)
                    .map_err(|e| vec![Diagnostic::bug(format!("the JIT failed on this pipeline's evaluation weights: {e}"))])?;
                Some(blocks::Runner::new(step, groups, layout, offsets))
            }
        };
        Ok(EvalRunner { plan, compiled })
    }
}

impl Optimizer {
    /// Whether the pipeline defines evaluation weights other than the parameters (a
    /// transform with `eval_params`, such as `schedule_free`, `lookahead` or `ema_params`).
    pub fn has_eval_params(&self) -> bool {
        self.eval.is_some()
    }

    /// Writes the weights to evaluate the model with to `out`, from `params` (the parameters
    /// after the last step) and the state; both hold every leaf, one after another in layout
    /// order. For a pipeline without `eval_params` these are the parameters themselves (as
    /// Optax's `schedule_free_eval_params` is the identity on other states). The state does
    /// not change.
    pub fn eval_params(&mut self, params: &[f32], out: &mut [f32]) -> Result<(), StepError> {
        let layout = &self.ir.layout;
        let total = layout.total();
        for (what, found) in [("params", params.len()), ("eval_params", out.len())] {
            if found != total {
                return Err(StepError::Length { what, expected: total, found });
            }
        }
        let params = buffers::split(layout, params);
        let mut out = buffers::split_mut(layout, out);
        self.eval_params_leaves(&params, &mut out)
    }

    /// As [`Optimizer::eval_params`], with one buffer per leaf, in layout order.
    pub fn eval_params_leaves(&mut self, params: &[&[f32]], out: &mut [&mut [f32]]) -> Result<(), StepError> {
        let n = self.ir.layout.leaves.len();
        for (what, found) in [("params", params.len()), ("eval_params", out.len())] {
            if found != n {
                return Err(StepError::Leaves { what, expected: n, found });
            }
        }
        let (Some(eval), Some(runner)) = (self.ir.eval.as_ref(), self.eval.as_mut()) else {
            // No transform defines them: the parameters.
            for (l, (o, p)) in out.iter_mut().zip(params).enumerate() {
                if o.len() != p.len() {
                    let leaf = self.ir.layout.leaves[l].name.clone();
                    return Err(StepError::LeafLength { what: "eval_params", leaf, expected: p.len(), found: o.len() });
                }
                o.copy_from_slice(p);
            }
            return Ok(());
        };
        // The evaluation reads no gradients; the parameters stand in for them, so that the
        // buffers are complete.
        let leaves = Leaves { params: Params::Ref(params.to_vec()), grads: params.to_vec(), updates: out.iter_mut().map(|o| &mut **o).collect() };
        if let Err(e) = leaves.check(&self.ir.layout) {
            let leaf = self.ir.layout.leaves.get(e.leaf).map(|l| l.name.clone()).unwrap_or_default();
            let what = if e.what == "updates" { "eval_params" } else { e.what };
            return Err(StepError::LeafLength { what, leaf, expected: e.expected, found: e.found });
        }
        // Compiled code reads element state from the arena it is handed, as in a step.
        let mut element = if runner.compiled.is_some() { std::mem::take(&mut self.state.element) } else { Arena::default() };
        let error = {
            let mut env = Env {
                graph: &eval.graph,
                layout: &self.ir.layout,
                groups: &self.ir.groups,
                offsets: &self.offsets,
                slots: &self.slot_layout,
                leaves,
                value: 0.0,
                state: &self.state,
            };
            match &mut runner.compiled {
                None => {
                    interp::run(&runner.plan, &mut env);
                    None
                }
                Some(compiled) => {
                    let mut passes = blocks::Compiled { runner: compiled, slots: &mut element, threads: self.threads, error: None };
                    interp::run_with(&runner.plan, &mut env, &mut passes);
                    passes.error.take()
                }
            }
        };
        if runner.compiled.is_some() {
            self.state.element = element;
        }
        match error {
            Some(e) => Err(StepError::Internal(e.to_string())),
            None => Ok(()),
        }
    }
}

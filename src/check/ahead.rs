//! Running a transform's or schedule's body ahead of time. When the evaluator builds an
//! instance, it runs the body once with the instance's hyperparameters bound and
//! [`Value::Runtime`] standing for everything known only at run time (the updates, `param`,
//! `value`, `step`, the state, hyperparameters that `inject_hyperparams` makes dynamic). So
//! every `assert`, inside `if` and `for` too, and every call the body makes with values computed
//! from its hyperparameters is bound and checked here, blamed on the user's call, instead of
//! misbehaving at run time. What the run computes is thrown away: the instance is built as
//! before, and instantiation runs the body for real.

use std::collections::HashMap;

use super::eval::Evaluator;
use super::program::{DefAst, DefId, DefKind, LeafProp, Value};
use super::types::Ty;
use crate::diagnostic::Diagnostic;
use crate::syntax::ast;

impl Evaluator<'_, '_> {
    /// Runs the body of the transform or schedule `id` on `values` (in parameter order); gives
    /// the number of entries of each state whose initial value is a list ([`Tx::Instance`]'s
    /// `lists`).
    ///
    /// [`Tx::Instance`]: super::program::Tx::Instance
    pub(super) fn run_ahead(&mut self, id: DefId, values: &[Value]) -> Vec<Option<usize>> {
        let def = &self.globals.defs[id];
        // A definition or a call already reported wrong would only be reported again.
        if def.has_errors || values.contains(&Value::Error) {
            return Vec::new();
        }
        let mut lists = Vec::new();
        let mut scope: HashMap<String, Value> = def
            .params
            .iter()
            .zip(values)
            .map(|(p, v)| {
                let v = if matches!(v, Value::Injected { .. }) { Value::Runtime } else { v.clone() };
                (p.name.clone(), v)
            })
            .collect();
        let injected: Vec<String> = (def.params.iter().zip(values))
            .filter(|(_, v)| matches!(v, Value::Injected { ty: Ty::Int, .. }))
            .map(|(p, _)| p.name.clone())
            .collect();
        let first_error = self.errors.len();
        let saved = std::mem::take(&mut self.scopes);
        let was_ahead = std::mem::replace(&mut self.ahead, true);
        let outer_injected = std::mem::replace(&mut self.ahead_injected, injected);
        match (&def.ast, def.kind) {
            (Some(DefAst::Transform(t)), _) => {
                scope.insert("param".into(), Value::Runtime);
                scope.insert("value".into(), Value::Runtime);
                // Each leaf's own shape: known per leaf at instantiation, not here.
                for name in LeafProp::ALL.iter().map(|(n, _)| *n).chain([LeafProp::Shape.name()]) {
                    scope.insert(name.into(), Value::Runtime);
                }
                self.scopes.push(scope);
                // A list state keeps the length of its initial value: reading or writing past its
                // end is an error here, not at run time.
                let inits: Vec<Value> = t.states.iter().map(|s| self.expr(&s.init)).collect();
                lists = inits.iter().map(|v| if let Value::List(items) = v { Some(items.len()) } else { None }).collect();
                for (state, init) in t.states.iter().zip(inits) {
                    let value = match init {
                        Value::List(items) => Value::List(vec![Value::Runtime; items.len()]),
                        _ => Value::Runtime,
                    };
                    self.bind(&state.name.name, value);
                }
                if let Some(update) = &t.update {
                    self.bind(&update.input.name, Value::Runtime);
                    self.block(&update.body);
                }
                if let Some(eval) = &t.eval_params {
                    self.block(&eval.body);
                }
            }
            (Some(DefAst::Def(d)), DefKind::Schedule) => {
                scope.insert("step".into(), Value::Runtime);
                self.scopes.push(scope);
                if let Some(body) = &d.body {
                    self.block(body);
                }
            }
            _ => {}
        }
        self.ahead = was_ahead;
        self.ahead_injected = outer_injected;
        self.scopes = saved;
        // A failed `assert` stops the body, as Python's would, and so do a hyperparameter
        // needed at compile time but injected and a value of the wrong form (looping over a
        // string, indexing None): what the body reports after it follows from the same mistake.
        let stops = |d: &Diagnostic| matches!(d.code, "failed-assert" | "not-constant" | "type-mismatch" | "bad-index");
        if let Some(i) = self.errors[first_error..].iter().position(stops) {
            self.errors.truncate(first_error + i + 1);
        }
        // A helper that two transforms of one call run (Muon's dimension numbers, read by
        // `scale_by_muon` and `scale_by_shape`) fails the same way for both: say it once.
        for d in self.errors.split_off(first_error) {
            if !self.errors.contains(&d) {
                self.errors.push(d);
            }
        }
        lists
    }

    /// `if cond { then } else { otherwise }`: the branch the condition selects, or, when it is
    /// known only at run time, both, after which a local the branches leave different is known
    /// only at run time too.
    pub(super) fn branches(&mut self, cond: Value, then: &ast::Block, otherwise: Option<&ast::Block>) -> Value {
        match cond {
            Value::Bool(true) => self.block(then).unwrap_or(Value::None),
            Value::Bool(false) => otherwise.and_then(|o| self.block(o)).unwrap_or(Value::None),
            _ => {
                let before = self.scopes.clone();
                let a = self.block(then);
                let after_then = std::mem::replace(&mut self.scopes, before);
                let b = otherwise.and_then(|o| self.block(o));
                self.join(&after_then);
                match (a, b) {
                    (Some(a), Some(b)) if a.identical(&b) => a,
                    _ => Value::Runtime,
                }
            }
        }
    }

    /// Makes every local whose value differs from its value in `other` a runtime value.
    pub(super) fn join(&mut self, other: &[HashMap<String, Value>]) {
        for (scope, other_scope) in self.scopes.iter_mut().zip(other) {
            for (name, value) in scope.iter_mut() {
                if other_scope.get(name).is_some_and(|o| !o.identical(value)) {
                    *value = Value::Runtime;
                }
            }
        }
    }
}

//! The evaluator's budgets ([`crate::limits`]): what compile-time evaluation may spend, how
//! large and deep a value it may build, and how deep and how large (unrolled) a pipeline it may
//! put together. Each is checked where the thing is made, so that nothing after `check`
//! (instantiation, planning, code generation) meets a pipeline larger than the limits allow.

use std::collections::HashMap;
use std::sync::Arc;

use super::eval::Evaluator;
use super::program::{Tx, Value};
use crate::limits::{self, Limit};
use crate::source::Span;

/// What the evaluator has spent, and the measure of every transform it built.
#[derive(Default)]
pub struct Budget {
    /// Operations run so far (expressions evaluated, items of values built).
    work: usize,
    /// Set once a limit of the whole evaluation was reported: evaluation stops.
    pub(super) stopped: bool,
    /// The nesting depth and unrolled size of each transform built, by address; the `Arc`
    /// keeps the address from being reused.
    measures: HashMap<usize, (usize, usize, Arc<Tx>)>,
}

/// What entering a call costs, in operations: binding its arguments and a new scope take about
/// as long as evaluating this many expressions, so definitions calling definitions are stopped
/// as quickly as loops are.
pub(super) const CALL_COST: usize = 16;

impl Evaluator<'_, '_> {
    /// Spends `n` operations at `span`; false (reported once) when the budget is exhausted.
    pub(super) fn spend(&mut self, n: usize, span: Span) -> bool {
        if self.budget.stopped {
            return false;
        }
        self.budget.work = self.budget.work.saturating_add(n);
        if self.budget.work > limits::UNROLLED.max {
            self.budget.stopped = true;
            self.over(&limits::UNROLLED, span);
            return false;
        }
        true
    }

    /// The operations spent so far.
    pub(super) fn spent(&self) -> usize {
        self.budget.work
    }

    fn over(&mut self, limit: &Limit, span: Span) {
        let span = self.user_span(span);
        self.err(limit.exceeded(span));
    }

    /// Whether `n` is within `limit`; reported at `span` when it is not.
    fn within(&mut self, limit: &Limit, n: usize, span: Span) -> bool {
        if n > limit.max {
            self.over(limit, span);
        }
        n <= limit.max
    }

    /// `v`, a list, tuple, map or string just built at `span`, or an error when it is larger or
    /// deeper than [`limits::VALUE_SIZE`] and [`limits::VALUE_DEPTH`] allow. Its items count
    /// as operations spent.
    pub(super) fn sized(&mut self, v: Value, span: Span) -> Value {
        let (depth, size) = measure_value(&v);
        let fits = self.within(&limits::VALUE_DEPTH, depth, span) && self.within(&limits::VALUE_SIZE, size, span);
        if fits && self.spend(size, span) { v } else { Value::Error }
    }

    /// `tx`, a transform just built at `span` whose own body took `own` operations, or an error
    /// when it nests transforms deeper than [`limits::TRANSFORMS`] or, counting every use of
    /// each part, unrolls into more than [`limits::UNROLLED`] operations.
    pub(super) fn built(&mut self, tx: Tx, own: usize, span: Span) -> Value {
        if self.budget.stopped {
            return Value::Error;
        }
        let (depth, size) = self.measure_children(&tx);
        let (depth, size) = (depth + 1, size.saturating_add(own.max(1)));
        if !(self.within(&limits::TRANSFORMS, depth, span) && self.within(&limits::UNROLLED, size, span)) {
            return Value::Error;
        }
        let tx = Arc::new(tx);
        self.budget.measures.insert(Arc::as_ptr(&tx) as usize, (depth, size, tx.clone()));
        Value::Transform(tx)
    }

    /// The depth and size of a transform: recorded when it was built, or (made elsewhere)
    /// measured now.
    fn measure(&mut self, tx: &Arc<Tx>) -> (usize, usize) {
        if let Some(&(d, s, _)) = self.budget.measures.get(&(Arc::as_ptr(tx) as usize)) {
            return (d, s);
        }
        let (depth, size) = self.measure_children(tx);
        let (depth, size) = (depth + 1, size.saturating_add(1));
        self.budget.measures.insert(Arc::as_ptr(tx) as usize, (depth, size, tx.clone()));
        (depth, size)
    }

    /// The greatest depth and the total size of the transforms `tx` applies directly.
    fn measure_children(&mut self, tx: &Tx) -> (usize, usize) {
        children(tx).into_iter().fold((0, 0), |(depth, size), child| {
            let (d, s) = self.measure(child);
            (depth.max(d), size.saturating_add(s))
        })
    }
}

/// The transforms a transform applies directly.
fn children(tx: &Tx) -> Vec<&Arc<Tx>> {
    fn in_value<'t>(v: &'t Value, out: &mut Vec<&'t Arc<Tx>>) {
        match v {
            Value::Transform(t) => out.push(t),
            Value::List(items) | Value::Tuple(items) => items.iter().for_each(|i| in_value(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match tx {
        Tx::Chain(parts) => out.extend(parts),
        Tx::NamedChain(parts) => out.extend(parts.iter().map(|(_, t)| t)),
        Tx::Instance { args, .. } => args.iter().for_each(|a| in_value(a, &mut out)),
        Tx::Masked { inner, .. } | Tx::Flatten(inner) | Tx::Inject { inner, .. } | Tx::Alias { inner, .. } => out.push(inner),
        Tx::Partition(arms) => out.extend(arms.iter().map(|a| &a.tx)),
    }
    out
}

/// The nesting depth of a compile-time value and its items at all levels (a string counts its
/// characters). The items of a value built by the evaluator were measured when they were
/// built, so the recursion is no deeper than [`limits::VALUE_DEPTH`].
fn measure_value(v: &Value) -> (usize, usize) {
    match v {
        Value::List(items) | Value::Tuple(items) => {
            items.iter().map(measure_value).fold((1, items.len()), |(d, s), (di, si)| (d.max(di + 1), s.saturating_add(si)))
        }
        Value::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).map(measure_value).fold((1, entries.len()), |(d, s), (di, si)| {
            (d.max(di + 1), s.saturating_add(si))
        }),
        Value::Str(s) => (0, s.chars().count()),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_measured_at_every_level() {
        let inner = Value::List(vec![Value::Int(1), Value::Int(2)]);
        let outer = Value::Tuple(vec![inner.clone(), inner, Value::Str("abc".into())]);
        assert_eq!(measure_value(&outer), (2, 3 + 2 + 2 + 3));
        assert_eq!(measure_value(&Value::Int(5)), (0, 0));
    }
}

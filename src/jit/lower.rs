//! Step IR ops → Cranelift instructions, for one float (`f32`, the scalar tail) or four lanes
//! (`f32x4`, the vector body). Values are always floats; a boolean is 0.0 or 1.0, and a
//! comparison's mask becomes one only where a value is needed, as `ir::op::eval` would give it.
//!
//! Each op computes exactly what `eval` computes, including on NaN, ±0 and ±inf:
//! - `min`/`max`: -0 is below +0, as in `op::min_f32`; a NaN operand selects the very NaN `eval`
//!   returns.
//! - `sign`: 1 above zero, -1 below, the operand itself otherwise (±0 and NaN pass through).
//! - truth of a float is `x != 0` (true for NaN), as `Scalar::b`.
//! - `i32`: saturating truncation (NaN to 0), then back to a float, as the interpreter converts
//!   an integer element value.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4};
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::JITModule;
use cranelift_module::Module;
use rustc_hash::FxHashMap;

use super::math::{Math, SharedBase};
use crate::ir::Reduce;
use crate::ir::op::Op;

/// The width values are computed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One element: the scalar tail.
    Scalar,
    /// Four elements: the vector body.
    Vector,
}

impl Width {
    pub fn float(self) -> Type {
        match self {
            Width::Scalar => F32,
            Width::Vector => F32X4,
        }
    }

    pub fn int(self) -> Type {
        match self {
            Width::Scalar => I32,
            Width::Vector => I32X4,
        }
    }

    fn lanes(self) -> u8 {
        match self {
            Width::Scalar => 1,
            Width::Vector => 4,
        }
    }
}

/// The per-function context of the lowering: the builder, and the module to import math
/// functions from (each once per function).
pub struct Fx<'a, 'f> {
    pub bcx: FunctionBuilder<'f>,
    module: &'a mut JITModule,
    math: &'a Math,
    calls: Vec<(Op, FuncRef)>,
    /// The mask each boolean made from one (1.0 where it is set) came from: the truth of such a
    /// boolean is that mask, so `if a > b` selects with the comparison's own mask.
    masks: FxHashMap<Value, Value>,
}

impl<'a, 'f> Fx<'a, 'f> {
    pub fn new(bcx: FunctionBuilder<'f>, module: &'a mut JITModule, math: &'a Math) -> Self {
        Fx { bcx, module, math, calls: Vec::new(), masks: FxHashMap::default() }
    }

    pub fn module(&self) -> &JITModule {
        self.module
    }

    /// A float constant at width `w`.
    pub fn fconst(&mut self, w: Width, x: f32) -> Value {
        let s = self.bcx.ins().f32const(x);
        self.widen(w, s)
    }

    /// A scalar float repeated at width `w`.
    pub fn widen(&mut self, w: Width, x: Value) -> Value {
        match w {
            Width::Scalar => x,
            Width::Vector => self.bcx.ins().splat(F32X4, x),
        }
    }

    /// The mask of a comparison as the floats 1.0 (true) and 0.0 (false).
    fn mask_to_float(&mut self, w: Width, mask: Value) -> Value {
        let float = self.mask_as_float(w, mask);
        self.masks.insert(float, mask);
        float
    }

    fn mask_as_float(&mut self, w: Width, mask: Value) -> Value {
        match w {
            Width::Scalar => {
                let one = self.fconst(w, 1.0);
                let zero = self.fconst(w, 0.0);
                self.bcx.ins().select(mask, one, zero)
            }
            Width::Vector => {
                let one_bits = self.bcx.ins().iconst(I32, i64::from(1.0f32.to_bits()));
                let ones = self.bcx.ins().splat(I32X4, one_bits);
                let bits = self.bcx.ins().band(mask, ones);
                self.bcx.ins().bitcast(F32X4, MemFlagsData::new(), bits)
            }
        }
    }

    /// Where a mask is set, `a`; elsewhere `b`.
    fn select(&mut self, w: Width, mask: Value, a: Value, b: Value) -> Value {
        match w {
            Width::Scalar => self.bcx.ins().select(mask, a, b),
            Width::Vector => {
                let m = self.bcx.ins().bitcast(F32X4, MemFlagsData::new(), mask);
                self.bcx.ins().bitselect(m, a, b)
            }
        }
    }

    /// The mask of `x != 0` (true for NaN): the truth of a float, as `Scalar::b`.
    fn truth(&mut self, w: Width, x: Value) -> Value {
        if let Some(&mask) = self.masks.get(&x) {
            return mask;
        }
        let zero = self.fconst(w, 0.0);
        self.bcx.ins().fcmp(FloatCC::NotEqual, x, zero)
    }

    fn compare(&mut self, w: Width, cc: FloatCC, a: Value, b: Value) -> Value {
        let m = self.bcx.ins().fcmp(cc, a, b);
        self.mask_to_float(w, m)
    }

    /// `min` or `max` as `op::min_f32` / `op::max_f32`.
    fn min_max(&mut self, w: Width, max: bool, a: Value, b: Value) -> Value {
        let r = match w {
            Width::Scalar if max => self.bcx.ins().fmax(a, b),
            Width::Scalar => self.bcx.ins().fmin(a, b),
            Width::Vector => self.min_max_lanes(max, a, b),
        };
        let unordered = self.bcx.ins().fcmp(FloatCC::Unordered, a, b);
        let nan = self.fconst(w, f32::NAN);
        self.select(w, unordered, nan, r)
    }

    /// `min` or `max` of four lanes, right for every pair but NaNs (which the caller replaces):
    /// x86's `minps` and `maxps` (the bitselects of a compare below), one with each operand
    /// order, combined bitwise so that ±0 in either order gives -0 (`min`, or) or +0 (`max`,
    /// and). Half the instructions of Cranelift's `fmin`, which also orders NaNs.
    fn min_max_lanes(&mut self, max: bool, a: Value, b: Value) -> Value {
        let mut pick = |x: Value, y: Value| {
            // x < y ? x : y (minps x, y); y < x ? x : y (maxps x, y).
            let (l, r) = if max { (y, x) } else { (x, y) };
            let lt = self.bcx.ins().fcmp(FloatCC::LessThan, l, r);
            let m = self.bcx.ins().bitcast(F32X4, MemFlagsData::new(), lt);
            self.bcx.ins().bitselect(m, x, y)
        };
        let (ab, ba) = (pick(a, b), pick(b, a));
        if max { self.bcx.ins().band(ab, ba) } else { self.bcx.ins().bor(ab, ba) }
    }

    /// A call of a math function, lane by lane.
    pub(super) fn call(&mut self, w: Width, op: Op, args: &[Value]) -> Value {
        let func = match self.calls.iter().find(|(o, _)| *o == op) {
            Some((_, f)) => *f,
            None => {
                // Every op routed here is in `math::CALLS` (see `lower_op`).
                let id = self.math.func(op).unwrap_or_else(|| unreachable!("no math function for {op:?}"));
                let f = self.module.declare_func_in_func(id, self.bcx.func);
                self.calls.push((op, f));
                f
            }
        };
        let mut out: Option<Value> = None;
        for lane in 0..w.lanes() {
            let lane_args: Vec<Value> = match w {
                Width::Scalar => args.to_vec(),
                Width::Vector => args.iter().map(|a| self.bcx.ins().extractlane(*a, lane)).collect(),
            };
            let call = self.bcx.ins().call(func, &lane_args);
            let r = self.bcx.inst_results(call)[0];
            out = Some(match (w, out) {
                (Width::Scalar, _) => r,
                (Width::Vector, None) => self.bcx.ins().splat(F32X4, r),
                (Width::Vector, Some(v)) => self.bcx.ins().insertlane(v, r, lane),
            });
        }
        out.unwrap_or_else(|| unreachable!("a width has at least one lane"))
    }

    /// `op` on `args` (floats of width `w`), as `ir::op::eval` computes it on float32 values.
    pub fn lower_op(&mut self, w: Width, op: Op, args: &[Value]) -> Value {
        let a = args.first().copied().unwrap_or_else(|| self.fconst(w, 0.0));
        let b = args.get(1).copied().unwrap_or(a);
        match op {
            Op::Add => self.bcx.ins().fadd(a, b),
            Op::Sub => self.bcx.ins().fsub(a, b),
            Op::Mul => self.bcx.ins().fmul(a, b),
            Op::Div => self.bcx.ins().fdiv(a, b),
            Op::Neg => self.bcx.ins().fneg(a),
            Op::Abs => self.bcx.ins().fabs(a),
            Op::Sqrt => self.bcx.ins().sqrt(a),
            Op::Rsqrt => {
                let root = self.bcx.ins().sqrt(a);
                let one = self.fconst(w, 1.0);
                self.bcx.ins().fdiv(one, root)
            }
            Op::Floor => self.bcx.ins().floor(a),
            Op::Ceil => self.bcx.ins().ceil(a),
            Op::Exp | Op::Tanh | Op::Log | Op::Pow | Op::Sin | Op::Cos => self.lower_math::<1>(w, op, [a], [b], None)[0],
            Op::Cbrt | Op::Rem => {
                let n = op.arity();
                self.call(w, op, &args[..n.min(args.len())])
            }
            Op::Min => self.min_max(w, false, a, b),
            Op::Max => self.min_max(w, true, a, b),
            Op::Sign => {
                let zero = self.fconst(w, 0.0);
                let above = self.bcx.ins().fcmp(FloatCC::GreaterThan, a, zero);
                let below = self.bcx.ins().fcmp(FloatCC::LessThan, a, zero);
                let one = self.fconst(w, 1.0);
                let minus_one = self.fconst(w, -1.0);
                let low = self.select(w, below, minus_one, a);
                self.select(w, above, one, low)
            }
            Op::Eq => self.compare(w, FloatCC::Equal, a, b),
            Op::Ne => self.compare(w, FloatCC::NotEqual, a, b),
            Op::Lt => self.compare(w, FloatCC::LessThan, a, b),
            Op::Le => self.compare(w, FloatCC::LessThanOrEqual, a, b),
            Op::Gt => self.compare(w, FloatCC::GreaterThan, a, b),
            Op::Ge => self.compare(w, FloatCC::GreaterThanOrEqual, a, b),
            Op::IsNan => self.compare(w, FloatCC::Unordered, a, a),
            Op::SignBit => {
                let bits = self.bcx.ins().bitcast(w.int(), MemFlagsData::new(), a);
                let zero = self.bcx.ins().iconst(I32, 0);
                let zero = if w == Width::Vector { self.bcx.ins().splat(I32X4, zero) } else { zero };
                let m = self.bcx.ins().icmp(IntCC::SignedLessThan, bits, zero);
                self.mask_to_float(w, m)
            }
            Op::IsFinite => {
                let magnitude = self.bcx.ins().fabs(a);
                let inf = self.fconst(w, f32::INFINITY);
                self.compare(w, FloatCC::LessThan, magnitude, inf)
            }
            Op::And | Op::Or => {
                let (ta, tb) = (self.truth(w, a), self.truth(w, b));
                let m = if op == Op::And { self.bcx.ins().band(ta, tb) } else { self.bcx.ins().bor(ta, tb) };
                self.mask_to_float(w, m)
            }
            Op::Not => {
                let zero = self.fconst(w, 0.0);
                self.compare(w, FloatCC::Equal, a, zero)
            }
            Op::Select => {
                let c = self.truth(w, a);
                let otherwise = args.get(2).copied().unwrap_or(b);
                self.select(w, c, b, otherwise)
            }
            Op::ToF32 => a,
            Op::ToI32 => {
                let n = self.bcx.ins().fcvt_to_sint_sat(w.int(), a);
                self.bcx.ins().fcvt_from_sint(w.float(), n)
            }
        }
    }

    /// `op` on `N` copies of its operands, each emitted for every copy in turn (so the copies'
    /// instructions are interleaved).
    pub fn lower_ops<const N: usize>(&mut self, w: Width, op: Op, args: &[[Value; N]], base: Option<SharedBase>) -> [Value; N] {
        if op.is_math() {
            let a = args.first().copied().unwrap_or_else(|| [self.fconst(w, 0.0); N]);
            let b = args.get(1).copied().unwrap_or(a);
            return self.lower_math(w, op, a, b, base);
        }
        std::array::from_fn(|i| {
            let copy: Vec<Value> = args.iter().map(|a| a[i]).collect();
            self.lower_op(w, op, &copy)
        })
    }

    /// One step of a reduction: the accumulator `acc` combined with `x`, as
    /// `interp::combine` does.
    pub fn lower_combine(&mut self, w: Width, kind: Reduce, acc: Value, x: Value) -> Value {
        let op = match kind {
            Reduce::Sum => Op::Add,
            Reduce::Max => Op::Max,
            Reduce::Min => Op::Min,
            Reduce::All => Op::And,
            Reduce::Any => Op::Or,
        };
        self.lower_op(w, op, &[acc, x])
    }

    /// An integer comparison of two i64 values, as a branch condition.
    pub fn icmp(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        self.bcx.ins().icmp(cc, a, b)
    }
}

/// The value a reduction's accumulators start from, as `interp::identity`.
pub fn identity(kind: Reduce) -> f32 {
    match kind {
        Reduce::Sum => 0.0,
        Reduce::Max => f32::NEG_INFINITY,
        Reduce::Min => f32::INFINITY,
        Reduce::All => 1.0,
        Reduce::Any => 0.0,
    }
}

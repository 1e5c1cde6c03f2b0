//! Ops Cranelift has no instruction for. `exp`, `log`, `pow`, `sin`, `cos` and `tanh` are
//! `crate::fmath`'s float32 functions, emitted inline through [`Emit`], its [`Arith`] made of
//! Cranelift instructions; lanes whose arguments `fmath` leaves to its scalar path (zeros,
//! infinities, huge angles, ...) call the `extern "C"` function `ir::op::eval` uses, as `cbrt`
//! and Python's float modulo always do. So the JIT and the interpreter agree bit for bit.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32X4, F64X2, I32, I32X4};
use cranelift_codegen::ir::{AbiParam, BlockArg, Endianness, InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

use super::JitError;
use super::lower::{Fx, Width};
use crate::fmath::storage::Storage;
use crate::fmath::{self, Arith, PowBase};
use crate::ir::op::{self, Op};

/// A math function of one or two floats.
#[derive(Clone, Copy)]
enum Func {
    Unary(extern "C" fn(f32) -> f32),
    Binary(extern "C" fn(f32, f32) -> f32),
}

impl Func {
    fn arity(self) -> usize {
        match self {
            Func::Unary(_) => 1,
            Func::Binary(_) => 2,
        }
    }

    fn address(self) -> *const u8 {
        match self {
            Func::Unary(f) => f as *const u8,
            Func::Binary(f) => f as *const u8,
        }
    }
}

/// The ops lowered to calls (the first four only for lanes `fmath` leaves to its scalar
/// path), with the symbol each is registered under.
const CALLS: &[(Op, &str, Func)] = &[
    (Op::Log, "optc_log_f32", Func::Unary(op::log_f32)),
    (Op::Cos, "optc_cos_f32", Func::Unary(op::cos_f32)),
    (Op::Sin, "optc_sin_f32", Func::Unary(op::sin_f32)),
    (Op::Pow, "optc_pow_f32", Func::Binary(op::pow_f32)),
    (Op::Cbrt, "optc_cbrt_f32", Func::Unary(op::cbrt_f32)),
    (Op::Rem, "optc_rem_f32", Func::Binary(op::rem_f32)),
];

/// Makes the functions known to the JIT's linker.
pub fn register(builder: &mut JITBuilder) {
    for (_, name, func) in CALLS {
        builder.symbol(*name, func.address());
    }
}

/// The math functions declared in a module.
pub struct Math {
    ids: Vec<(Op, FuncId)>,
}

impl Math {
    /// The function an op calls, if it is lowered to a call.
    pub fn func(&self, op: Op) -> Option<FuncId> {
        self.ids.iter().find(|(o, _)| *o == op).map(|(_, id)| *id)
    }
}

/// Declares every math function as an import of `module`.
pub fn declare(module: &mut JITModule) -> Result<Math, JitError> {
    let mut ids = Vec::new();
    for (op, name, func) in CALLS {
        let mut sig = module.make_signature();
        for _ in 0..func.arity() {
            sig.params.push(AbiParam::new(types::F32));
        }
        sig.returns.push(AbiParam::new(types::F32));
        let id = module.declare_function(name, Linkage::Import, &sig).map_err(|e| JitError::Module(e.to_string()))?;
        ids.push((*op, id));
    }
    Ok(Math { ids })
}

/// [`Arith`] as Cranelift instructions on `N` independent copies of a value (the unrolled
/// vectors of the vector body, or one float of the scalar tail), each operation emitted for
/// every copy in turn: a long dependency chain of one copy is interleaved with the others', so
/// the processor overlaps them. A value is one float or an `f32x4` per copy; a mask is what a
/// comparison gives: an `i8` 0 or 1 for a float, all ones or zeros per lane for four.
pub struct Emit<'b, 'f, const N: usize> {
    pub bcx: &'b mut FunctionBuilder<'f>,
    pub w: Width,
}

/// The instruction `$op` on each copy of the operands.
macro_rules! each {
    ($self:ident, $op:ident($($arg:ident),*)) => {
        std::array::from_fn(|i| $self.bcx.ins().$op($($arg[i]),*))
    };
}

impl<const N: usize> Arith for Emit<'_, '_, N> {
    type F = [Value; N];
    type I = [Value; N];
    type M = [Value; N];
    fn fconst(&mut self, x: f32) -> [Value; N] {
        let s = self.bcx.ins().f32const(x);
        let v = match self.w {
            Width::Scalar => s,
            Width::Vector => self.bcx.ins().splat(F32X4, s),
        };
        [v; N]
    }
    fn iconst(&mut self, n: i32) -> [Value; N] {
        let s = self.bcx.ins().iconst(I32, i64::from(n as u32));
        let v = match self.w {
            Width::Scalar => s,
            Width::Vector => self.bcx.ins().splat(I32X4, s),
        };
        [v; N]
    }
    fn add(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, fadd(a, b))
    }
    fn sub(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, fsub(a, b))
    }
    fn mul(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, fmul(a, b))
    }
    fn div(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, fdiv(a, b))
    }
    fn lt(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        std::array::from_fn(|i| self.bcx.ins().fcmp(FloatCC::LessThan, a[i], b[i]))
    }
    fn eq(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        std::array::from_fn(|i| self.bcx.ins().fcmp(FloatCC::Equal, a[i], b[i]))
    }
    fn ieq(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        std::array::from_fn(|i| self.bcx.ins().icmp(IntCC::Equal, a[i], b[i]))
    }
    fn and(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, band(a, b))
    }
    fn or(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, bor(a, b))
    }
    fn not(&mut self, a: [Value; N]) -> [Value; N] {
        match self.w {
            Width::Scalar => std::array::from_fn(|i| self.bcx.ins().bxor_imm_u(a[i], 1)),
            Width::Vector => each!(self, bnot(a)),
        }
    }
    fn select(&mut self, m: [Value; N], a: [Value; N], b: [Value; N]) -> [Value; N] {
        match self.w {
            Width::Scalar => each!(self, select(m, a, b)),
            Width::Vector => std::array::from_fn(|i| {
                let m = self.bcx.ins().bitcast(F32X4, MemFlagsData::new(), m[i]);
                self.bcx.ins().bitselect(m, a[i], b[i])
            }),
        }
    }
    fn bits(&mut self, a: [Value; N]) -> [Value; N] {
        let t = self.w.int();
        std::array::from_fn(|i| self.bcx.ins().bitcast(t, MemFlagsData::new(), a[i]))
    }
    fn float(&mut self, a: [Value; N]) -> [Value; N] {
        let t = self.w.float();
        std::array::from_fn(|i| self.bcx.ins().bitcast(t, MemFlagsData::new(), a[i]))
    }
    fn iadd(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, iadd(a, b))
    }
    fn isub(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, isub(a, b))
    }
    fn iand(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, band(a, b))
    }
    fn ixor(&mut self, a: [Value; N], b: [Value; N]) -> [Value; N] {
        each!(self, bxor(a, b))
    }
    fn shl(&mut self, a: [Value; N], n: u8) -> [Value; N] {
        let n = [self.bcx.ins().iconst(I32, i64::from(n)); N];
        each!(self, ishl(a, n))
    }
    fn sar(&mut self, a: [Value; N], n: u8) -> [Value; N] {
        let n = [self.bcx.ins().iconst(I32, i64::from(n)); N];
        each!(self, sshr(a, n))
    }
}

/// The part of `pow` that depends on the base alone ([`fmath::pow_base`]), made once where the
/// base is the same for every element (a uniform or a constant).
#[derive(Clone, Copy)]
pub struct SharedBase {
    hi: Value,
    lo: Value,
    ok: Value,
}

impl Fx<'_, '_> {
    /// The part of `pow` that depends on its base `x` (of width `w`) alone, computed here, in
    /// the block before the loops.
    pub fn pow_base(&mut self, w: Width, x: Value) -> SharedBase {
        let (hi, lo, ok) = {
            let base = fmath::pow_base(&mut Emit::<1> { bcx: &mut self.bcx, w }, [x]);
            (base.hi[0], base.lo[0], base.ok[0])
        };
        SharedBase { hi, lo, ok }
    }

    /// The part of `pow` that depends on its base alone, for a constant base: computed now,
    /// as `fmath` computes it on floats, instead of once per task.
    pub fn pow_base_const(&mut self, w: Width, x: f32) -> SharedBase {
        let base = fmath::pow_base(&mut fmath::Plain, x);
        let e = &mut Emit::<1> { bcx: &mut self.bcx, w };
        let [hi] = e.fconst(base.hi);
        let [lo] = e.fconst(base.lo);
        let all = e.iconst(if base.ok { -1 } else { 0 });
        let ok = match w {
            Width::Scalar => self.bcx.ins().iconst(types::I8, i64::from(base.ok)),
            Width::Vector => all[0],
        };
        SharedBase { hi, lo, ok }
    }

    /// `op` (one of `fmath`'s functions) of `a` (and `b`), on `N` copies at once; `base`, if
    /// given, is `a`'s part of a `pow`. Where any lane of any copy has arguments `fmath` leaves
    /// to its scalar path, every lane is computed by the scalar function, in a block out of line.
    pub fn lower_math<const N: usize>(&mut self, w: Width, op: Op, a: [Value; N], b: [Value; N], base: Option<SharedBase>) -> [Value; N] {
        let (value, edges) = {
            let e = &mut Emit::<N> { bcx: &mut self.bcx, w };
            let part = match op {
                Op::Exp => return fmath::exp(e, a),
                Op::Tanh => return fmath::tanh(e, a),
                Op::Log => fmath::log_ordinary(e, a),
                Op::Pow => match base {
                    Some(s) => fmath::pow_with_base(e, &PowBase { hi: [s.hi; N], lo: [s.lo; N], ok: [s.ok; N] }, b),
                    None => fmath::pow_ordinary(e, a, b),
                },
                Op::Sin => fmath::sin_ordinary(e, a),
                _ => fmath::cos_ordinary(e, a),
            };
            (part.value, part.edge)
        };
        let mut any = edges[0];
        for m in &edges[1..] {
            any = self.bcx.ins().bor(any, *m);
        }
        if w == Width::Vector {
            any = self.bcx.ins().vany_true(any);
        }
        let edge = self.bcx.create_block();
        let join = self.bcx.create_block();
        self.bcx.set_cold_block(edge);
        for _ in 0..N {
            self.bcx.append_block_param(join, w.float());
        }
        let fast: Vec<BlockArg> = value.iter().map(|v| BlockArg::Value(*v)).collect();
        self.bcx.ins().brif(any, edge, &[], join, &fast);
        self.bcx.switch_to_block(edge);
        self.bcx.seal_block(edge);
        let slow: Vec<BlockArg> = (0..N)
            .map(|i| {
                let args = if op == Op::Pow { vec![a[i], b[i]] } else { vec![a[i]] };
                BlockArg::Value(self.call(w, op, &args))
            })
            .collect();
        self.bcx.ins().jump(join, &slow);
        self.bcx.switch_to_block(join);
        self.bcx.seal_block(join);
        let params = self.bcx.block_params(join);
        std::array::from_fn(|i| params[i])
    }
}

impl Fx<'_, '_> {
    /// Loads a float at width `w` from a stream stored as `storage`: a bfloat16 is the top half
    /// of its float32, so its 16 bits shifted up are the float exactly.
    pub fn load_stored(&mut self, w: Width, storage: Storage, addr: Value, offset: i32, flags: MemFlagsData) -> Value {
        match storage {
            Storage::F32 => self.bcx.ins().load(w.float(), flags, addr, offset),
            Storage::Bf16 => {
                let half = match w {
                    Width::Scalar => self.bcx.ins().uload16(I32, flags, addr, offset),
                    Width::Vector => self.bcx.ins().uload16x4(flags, addr, offset),
                };
                let bits = self.bcx.ins().ishl_imm_u(half, 16);
                self.bcx.ins().bitcast(w.float(), MemFlagsData::new(), bits)
            }
        }
    }

    /// Stores `x` (at width `w`) to a stream stored as `storage`: a bfloat16 is rounded by
    /// [`fmath::storage::round_bf16`], the rule the interpreter runs, and its top half kept.
    pub fn store_stored(&mut self, w: Width, storage: Storage, x: Value, addr: Value, offset: i32, flags: MemFlagsData) {
        match storage {
            Storage::F32 => {
                self.bcx.ins().store(flags, x, addr, offset);
            }
            Storage::Bf16 => {
                let [high] = fmath::storage::bf16_half(&mut Emit::<1> { bcx: &mut self.bcx, w }, [x]);
                match w {
                    Width::Scalar => {
                        self.bcx.ins().istore16(flags, high, addr, offset);
                    }
                    Width::Vector => {
                        // The halves fit in i16, so the signed narrowing (`packssdw`) keeps them
                        // exactly; the low 64 bits go out as a float64 (`movq`, one store).
                        let packed = self.bcx.ins().snarrow(high, high);
                        let lanes = self.bcx.ins().bitcast(F64X2, MemFlagsData::new().with_endianness(Endianness::Little), packed);
                        let low = self.bcx.ins().extractlane(lanes, 0);
                        self.bcx.ins().store(flags, low, addr, offset);
                    }
                }
            }
        }
    }
}

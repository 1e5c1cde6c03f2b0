//! Ops Cranelift has no instruction for. `exp`, `log`, `pow`, `sin`, `cos` and `tanh` are
//! `crate::fmath`'s float32 functions, emitted inline through [`Emit`], its [`Arith`] made of
//! Cranelift instructions; lanes whose arguments `fmath` leaves to its scalar path (zeros,
//! infinities, huge angles, ...) call the `extern "C"` function `ir::op::eval` uses, as `cbrt`
//! and Python's float modulo always do. So the JIT and the interpreter agree bit for bit.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

use super::JitError;
use super::lower::Width;
use crate::fmath::Arith;
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

/// [`Arith`] as Cranelift instructions on one float or on `f32x4` lanes. A mask is what a
/// comparison gives: an `i8` 0 or 1 for one float, all ones or zeros per lane for four.
pub struct Emit<'b, 'f> {
    pub bcx: &'b mut FunctionBuilder<'f>,
    pub w: Width,
}

impl Arith for Emit<'_, '_> {
    type F = Value;
    type I = Value;
    type M = Value;
    fn fconst(&mut self, x: f32) -> Value {
        let s = self.bcx.ins().f32const(x);
        match self.w {
            Width::Scalar => s,
            Width::Vector => self.bcx.ins().splat(F32X4, s),
        }
    }
    fn iconst(&mut self, n: i32) -> Value {
        let s = self.bcx.ins().iconst(I32, i64::from(n as u32));
        match self.w {
            Width::Scalar => s,
            Width::Vector => self.bcx.ins().splat(I32X4, s),
        }
    }
    fn add(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fadd(a, b)
    }
    fn sub(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fsub(a, b)
    }
    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fmul(a, b)
    }
    fn div(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fdiv(a, b)
    }
    fn lt(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fcmp(FloatCC::LessThan, a, b)
    }
    fn eq(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().fcmp(FloatCC::Equal, a, b)
    }
    fn ieq(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().icmp(IntCC::Equal, a, b)
    }
    fn and(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().band(a, b)
    }
    fn or(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().bor(a, b)
    }
    fn not(&mut self, a: Value) -> Value {
        match self.w {
            Width::Scalar => self.bcx.ins().bxor_imm_u(a, 1),
            Width::Vector => self.bcx.ins().bnot(a),
        }
    }
    fn select(&mut self, m: Value, a: Value, b: Value) -> Value {
        match self.w {
            Width::Scalar => self.bcx.ins().select(m, a, b),
            Width::Vector => {
                let m = self.bcx.ins().bitcast(F32X4, MemFlagsData::new(), m);
                self.bcx.ins().bitselect(m, a, b)
            }
        }
    }
    fn bits(&mut self, a: Value) -> Value {
        let t = self.w.int();
        self.bcx.ins().bitcast(t, MemFlagsData::new(), a)
    }
    fn float(&mut self, a: Value) -> Value {
        let t = self.w.float();
        self.bcx.ins().bitcast(t, MemFlagsData::new(), a)
    }
    fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().iadd(a, b)
    }
    fn isub(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().isub(a, b)
    }
    fn iand(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().band(a, b)
    }
    fn ixor(&mut self, a: Value, b: Value) -> Value {
        self.bcx.ins().bxor(a, b)
    }
    fn shl(&mut self, a: Value, n: u8) -> Value {
        let n = self.bcx.ins().iconst(I32, i64::from(n));
        self.bcx.ins().ishl(a, n)
    }
    fn sar(&mut self, a: Value, n: u8) -> Value {
        let n = self.bcx.ins().iconst(I32, i64::from(n));
        self.bcx.ins().sshr(a, n)
    }
}

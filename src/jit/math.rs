//! Ops Cranelift has no instruction for (`exp`, `log`, `pow`, `cos`, `sin`, `tanh`, `cbrt` and
//! Python's float modulo) become calls to the very `extern "C"` functions `ir::op::eval` uses,
//! registered with the JIT by name, so the JIT and the interpreter agree bit for bit.

use cranelift_codegen::ir::{AbiParam, types};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

use super::JitError;
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

/// The ops lowered to calls, with the symbol each is registered under.
const CALLS: &[(Op, &str, Func)] = &[
    (Op::Exp, "optc_exp_f32", Func::Unary(op::exp_f32)),
    (Op::Log, "optc_log_f32", Func::Unary(op::log_f32)),
    (Op::Cos, "optc_cos_f32", Func::Unary(op::cos_f32)),
    (Op::Sin, "optc_sin_f32", Func::Unary(op::sin_f32)),
    (Op::Tanh, "optc_tanh_f32", Func::Unary(op::tanh_f32)),
    (Op::Cbrt, "optc_cbrt_f32", Func::Unary(op::cbrt_f32)),
    (Op::Pow, "optc_pow_f32", Func::Binary(op::pow_f32)),
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

//! The op set of the step IR, one doc line each, with its scalar semantics. The interpreter
//! calls [`eval`]; the JIT emits the same float32 operations (`crate::fmath` for `exp`, `log`,
//! `pow`, `sin`, `cos` and `tanh`) or calls the same functions, so both agree bit for bit.

use crate::fmath;

/// The type of a runtime value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    F32,
    I32,
    Bool,
}

/// A runtime scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    F32(f32),
    I32(i32),
    Bool(bool),
}

impl Scalar {
    pub fn kind(self) -> Kind {
        match self {
            Scalar::F32(_) => Kind::F32,
            Scalar::I32(_) => Kind::I32,
            Scalar::Bool(_) => Kind::Bool,
        }
    }

    /// The value as a float (ints convert, bools are 0 or 1), as jnp promotes them.
    pub fn f(self) -> f32 {
        match self {
            Scalar::F32(x) => x,
            Scalar::I32(n) => n as f32,
            Scalar::Bool(b) => f32::from(u8::from(b)),
        }
    }

    pub fn i(self) -> i32 {
        match self {
            Scalar::F32(x) => x as i32,
            Scalar::I32(n) => n,
            Scalar::Bool(b) => i32::from(b),
        }
    }

    pub fn b(self) -> bool {
        match self {
            Scalar::F32(x) => x != 0.0,
            Scalar::I32(n) => n != 0,
            Scalar::Bool(b) => b,
        }
    }
}

/// An operation on scalars; element-wise on tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// a + b (ints saturate, as Optax's `safe_increment`)
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b (always float)
    Div,
    /// Python's modulo: the result has the sign of b
    Rem,
    /// a ^ b
    Pow,
    /// -a
    Neg,
    /// square root
    Sqrt,
    /// 1 / sqrt(a)
    Rsqrt,
    /// cube root (exact for perfect cubes, unlike `a ^ (1 / 3)`)
    Cbrt,
    /// |a|
    Abs,
    /// -1, 0 or 1 (NaN stays NaN)
    Sign,
    /// e ^ a
    Exp,
    /// natural logarithm
    Log,
    /// cosine
    Cos,
    /// sine
    Sin,
    /// hyperbolic tangent
    Tanh,
    /// round down
    Floor,
    /// round up
    Ceil,
    /// smaller of two (NaN if either is NaN, as jnp.minimum)
    Min,
    /// larger of two (NaN if either is NaN, as jnp.maximum)
    Max,
    /// a == b
    Eq,
    /// a != b
    Ne,
    /// a < b
    Lt,
    /// a <= b
    Le,
    /// a > b
    Gt,
    /// a >= b
    Ge,
    /// neither infinite nor NaN
    IsFinite,
    /// NaN
    IsNan,
    /// the sign bit is set (-0 and negative NaNs too, as numpy's `signbit`); not in the
    /// language: `ir::finite` tells -0 from +0 with it
    SignBit,
    /// logical and
    And,
    /// logical or
    Or,
    /// logical not
    Not,
    /// if a then b else c
    Select,
    /// convert to float
    ToF32,
    /// convert to int, truncating
    ToI32,
}

impl Op {
    /// Number of operands.
    pub fn arity(self) -> usize {
        use Op::*;
        match self {
            Neg | Sqrt | Rsqrt | Cbrt | Abs | Sign | Exp | Log | Cos | Sin | Tanh | Floor | Ceil | IsFinite | IsNan | SignBit | Not
            | ToF32 | ToI32 => 1,
            Select => 3,
            _ => 2,
        }
    }

    /// Whether the op is one of `fmath`'s functions (which the JIT emits inline).
    pub fn is_math(self) -> bool {
        matches!(self, Op::Exp | Op::Tanh | Op::Log | Op::Pow | Op::Sin | Op::Cos)
    }

    /// The text form used by `emit --ir`.
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Rem => "rem",
            Pow => "pow",
            Neg => "neg",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Cbrt => "cbrt",
            Abs => "abs",
            Sign => "sign",
            Exp => "exp",
            Log => "log",
            Cos => "cos",
            Sin => "sin",
            Tanh => "tanh",
            Floor => "floor",
            Ceil => "ceil",
            Min => "min",
            Max => "max",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            IsFinite => "isfinite",
            IsNan => "isnan",
            SignBit => "signbit",
            And => "and",
            Or => "or",
            Not => "not",
            Select => "select",
            ToF32 => "f32",
            ToI32 => "i32",
        }
    }
}

// The transcendental functions are `fmath`'s, which the JIT emits inline; these are the
// functions it calls for the lanes `fmath` leaves to its scalar path.

/// `pow` on floats, as XLA computes it for float exponents: C99's `powf`, with an integral
/// exponent of a negative base allowed.
pub extern "C" fn pow_f32(a: f32, b: f32) -> f32 {
    fmath::pow_f32(a, b)
}
pub extern "C" fn log_f32(a: f32) -> f32 {
    fmath::log_f32(a)
}
pub extern "C" fn cos_f32(a: f32) -> f32 {
    fmath::cos_f32(a)
}
pub extern "C" fn sin_f32(a: f32) -> f32 {
    fmath::sin_f32(a)
}
/// Cube root (libm's; the JIT calls this one).
pub extern "C" fn cbrt_f32(a: f32) -> f32 {
    a.cbrt()
}

/// Float modulo as Python's `%`: the result has the sign of `b`.
pub extern "C" fn rem_f32(a: f32, b: f32) -> f32 {
    let r = a % b;
    if r != 0.0 && (r < 0.0) != (b < 0.0) { r + b } else { r }
}

/// `min` as jnp.minimum (IEEE 754-2019 `minimum`): NaN if either operand is NaN, and -0 is
/// smaller than +0. (Rust's `f32::min` leaves the sign of a zero result unspecified, so the
/// zeros are decided here, where the JIT can match them.)
pub fn min_f32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a < b || (a == b && a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// `max` as jnp.maximum (IEEE 754-2019 `maximum`): NaN if either operand is NaN, and +0 is
/// larger than -0.
pub fn max_f32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a > b || (a == b && a.is_sign_positive()) {
        a
    } else {
        b
    }
}

/// `sign` as jnp.sign: -1, 0 (keeping the sign of zero) or 1; NaN stays NaN.
pub fn sign_f32(a: f32) -> f32 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        a
    }
}

/// A computation over floats that a float operation's function is handed to ([`float_op`]):
/// generic over the function, so a loop inlines it.
pub trait FloatLoop {
    type Out;
    fn run<F: Fn(f32, f32) -> f32>(self, f: F) -> Self::Out;
}

/// Hands `l` what float operation `op` computes on floats (its second operand unused if it
/// takes one): `eval`'s arithmetic, for callers that loop over many floats with one
/// operation. `None` for operations that are not float arithmetic.
pub fn float_op<L: FloatLoop>(op: Op, l: L) -> Option<L::Out> {
    use Op::*;
    Some(match op {
        Add => l.run(|a, b| a + b),
        Sub => l.run(|a, b| a - b),
        Mul => l.run(|a, b| a * b),
        Div => l.run(|a, b| a / b),
        Rem => l.run(|a, b| rem_f32(a, b)),
        Pow => l.run(|a, b| pow_f32(a, b)),
        Neg => l.run(|a, _| -a),
        Sqrt => l.run(|a, _| a.sqrt()),
        Rsqrt => l.run(|a, _| 1.0 / a.sqrt()),
        Cbrt => l.run(|a, _| cbrt_f32(a)),
        Abs => l.run(|a, _| a.abs()),
        Sign => l.run(|a, _| sign_f32(a)),
        Exp => l.run(|a, _| fmath::exp_f32(a)),
        Log => l.run(|a, _| log_f32(a)),
        Cos => l.run(|a, _| cos_f32(a)),
        Sin => l.run(|a, _| sin_f32(a)),
        Tanh => l.run(|a, _| fmath::tanh_f32(a)),
        Floor => l.run(|a, _| a.floor()),
        Ceil => l.run(|a, _| a.ceil()),
        Min => l.run(min_f32),
        Max => l.run(max_f32),
        _ => return None,
    })
}

/// Hands `l` what a test computes on floats, 1 for true and 0 for false (its second operand
/// unused if it takes one): a comparison, a float's class, or a logical operation, a float
/// being true where it is not 0 (as [`Scalar::b`] reads it). `eval`'s rule for operands other
/// than two ints, and for callers that loop over many floats. `None` for operations that are
/// not tests.
pub fn float_test<L: FloatLoop>(op: Op, l: L) -> Option<L::Out> {
    use Op::*;
    let to = |t: bool| f32::from(u8::from(t));
    Some(match op {
        Eq => l.run(|a, b| to(a == b)),
        Ne => l.run(|a, b| to(a != b)),
        Lt => l.run(|a, b| to(a < b)),
        Le => l.run(|a, b| to(a <= b)),
        Gt => l.run(|a, b| to(a > b)),
        Ge => l.run(|a, b| to(a >= b)),
        IsFinite => l.run(|a, _| to(a.is_finite())),
        IsNan => l.run(|a, _| to(a.is_nan())),
        SignBit => l.run(|a, _| to(a.is_sign_negative())),
        And => l.run(|a, b| to(a != 0.0 && b != 0.0)),
        Or => l.run(|a, b| to(a != 0.0 || b != 0.0)),
        Not => l.run(|a, _| to(a == 0.0)),
        _ => return None,
    })
}

/// One application of a float operation's function ([`float_op`]).
struct Apply(f32, f32);

impl FloatLoop for Apply {
    type Out = f32;
    fn run<F: Fn(f32, f32) -> f32>(self, f: F) -> f32 {
        f(self.0, self.1)
    }
}

/// Evaluates `op` on scalars of the kinds the checker allowed.
pub fn eval(op: Op, args: &[Scalar]) -> Scalar {
    use Op::*;
    use Scalar::{Bool, F32, I32};
    let a = args.first().copied().unwrap_or(F32(0.0));
    let b = args.get(1).copied().unwrap_or(F32(0.0));
    let both_int = a.kind() == Kind::I32 && b.kind() == Kind::I32;
    match op {
        Add if both_int => I32(a.i().saturating_add(b.i())),
        Sub if both_int => I32(a.i().saturating_sub(b.i())),
        Mul if both_int => I32(a.i().saturating_mul(b.i())),
        Rem if both_int => {
            let (x, y) = (a.i(), b.i());
            if y == 0 { I32(0) } else { I32(((x % y) + y) % y) }
        }
        Min if both_int => I32(a.i().min(b.i())),
        Max if both_int => I32(a.i().max(b.i())),
        Abs if a.kind() == Kind::I32 => I32(a.i().saturating_abs()),
        Sign if a.kind() == Kind::I32 => I32(a.i().signum()),
        Neg if a.kind() == Kind::I32 => I32(a.i().saturating_neg()),
        Add | Sub | Mul | Div | Rem | Pow | Neg | Sqrt | Rsqrt | Cbrt | Abs | Sign | Exp | Log | Cos | Sin | Tanh | Floor | Ceil | Min | Max => {
            F32(float_op(op, Apply(a.f(), b.f())).unwrap_or(f32::NAN))
        }
        Eq if both_int => Bool(a.i() == b.i()),
        Ne if both_int => Bool(a.i() != b.i()),
        Lt if both_int => Bool(a.i() < b.i()),
        Le if both_int => Bool(a.i() <= b.i()),
        Gt if both_int => Bool(a.i() > b.i()),
        Ge if both_int => Bool(a.i() >= b.i()),
        Eq | Ne | Lt | Le | Gt | Ge | IsFinite | IsNan | SignBit | And | Or | Not => Bool(float_test(op, Apply(a.f(), b.f())) == Some(1.0)),
        Select => {
            if a.b() {
                b
            } else {
                args.get(2).copied().unwrap_or(b)
            }
        }
        ToF32 => F32(a.f()),
        ToI32 => I32(a.i()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_saturate_and_modulo_follows_python() {
        assert_eq!(eval(Op::Add, &[Scalar::I32(i32::MAX), Scalar::I32(1)]), Scalar::I32(i32::MAX));
        assert_eq!(eval(Op::Rem, &[Scalar::I32(-1), Scalar::I32(4)]), Scalar::I32(3));
        assert_eq!(eval(Op::Rem, &[Scalar::F32(-1.0), Scalar::F32(4.0)]), Scalar::F32(3.0));
    }

    #[test]
    fn min_max_propagate_nan_and_sign_keeps_zero() {
        assert!(eval(Op::Max, &[Scalar::F32(f32::NAN), Scalar::F32(1.0)]).f().is_nan());
        assert_eq!(sign_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(sign_f32(f32::NAN).is_nan());
        assert_eq!(min_f32(0.0, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(min_f32(-0.0, 0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(max_f32(-0.0, 0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(max_f32(0.0, -0.0).to_bits(), 0.0f32.to_bits());
    }
}

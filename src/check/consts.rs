//! Python's arithmetic on compile-time values: unbounded-looking ints (64-bit, overflow is an
//! error), binary64 floats, true division, floor modulo. Shared by the checker's evaluation and
//! by instantiation, which folds hyperparameter expressions the same way.

use super::program::Value;
use crate::syntax::ast::BinaryOp;

/// Why a compile-time operation failed.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstError {
    pub code: &'static str,
    pub message: String,
    /// What to say at the operator.
    pub label: &'static str,
}

fn error(code: &'static str, message: impl Into<String>, label: &'static str) -> ConstError {
    ConstError { code, message: message.into(), label }
}

/// `l op r` on compile-time values, as Python computes it.
pub fn binary(op: BinaryOp, l: &Value, r: &Value) -> Result<Value, ConstError> {
    use Value::{Bool, Float, Int, List, Str};
    let mismatch = |label| error("type-mismatch", format!("cannot apply `{}` to {} and {}", op.symbol(), l.ty(), r.ty()), label);
    let by_zero = || error("division-by-zero", "division by zero", "the divisor is zero");
    Ok(match (op, l, r) {
        (BinaryOp::Eq, _, _) => Bool(l.equals(r)),
        (BinaryOp::Ne, _, _) => Bool(!l.equals(r)),
        (BinaryOp::And, Bool(a), Bool(b)) => Bool(*a && *b),
        (BinaryOp::Or, Bool(a), Bool(b)) => Bool(*a || *b),
        (BinaryOp::Add, List(a), List(b)) => List(a.iter().chain(b).cloned().collect()),
        (BinaryOp::Add, Str(a), Str(b)) => Str(format!("{a}{b}")),
        (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge, _, _) => match l.compare(r) {
            Some(ord) => Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }),
            None if l.as_f64().is_some() && r.as_f64().is_some() => Bool(false), // NaN
            None => return Err(mismatch("only numbers and strings are ordered")),
        },
        (_, Int(a), Int(b)) => {
            let (a, b) = (*a, *b);
            let v = match op {
                BinaryOp::Add => a.checked_add(b),
                BinaryOp::Sub => a.checked_sub(b),
                BinaryOp::Mul => a.checked_mul(b),
                BinaryOp::Div if b == 0 => return Err(by_zero()),
                BinaryOp::Div => return Ok(Float(a as f64 / b as f64)),
                BinaryOp::Rem if b == 0 => return Err(by_zero()),
                BinaryOp::Rem => a.checked_rem_euclid(b).map(|m| if b < 0 && m != 0 { m + b } else { m }),
                BinaryOp::Pow if b < 0 => return Ok(Float((a as f64).powf(b as f64))),
                BinaryOp::Pow => u32::try_from(b).ok().and_then(|e| a.checked_pow(e)),
                _ => return Err(mismatch("arithmetic takes numbers")),
            };
            Int(v.ok_or_else(|| error("overflow", "this int is too large", "overflows"))?)
        }
        _ => match (l.as_f64(), r.as_f64()) {
            (Some(a), Some(b)) => Float(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div if b == 0.0 => return Err(by_zero()),
                BinaryOp::Div => a / b,
                BinaryOp::Rem if b == 0.0 => return Err(by_zero()),
                BinaryOp::Rem => a - b * (a / b).floor(),
                BinaryOp::Pow => a.powf(b),
                _ => return Err(mismatch("arithmetic takes numbers")),
            }),
            _ => return Err(mismatch("arithmetic takes numbers")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_python() {
        assert_eq!(binary(BinaryOp::Div, &Value::Int(1), &Value::Int(2)), Ok(Value::Float(0.5)));
        assert_eq!(binary(BinaryOp::Rem, &Value::Int(-1), &Value::Int(4)), Ok(Value::Int(3)));
        assert_eq!(binary(BinaryOp::Rem, &Value::Int(1), &Value::Int(-4)), Ok(Value::Int(-3)));
        assert_eq!(binary(BinaryOp::Sub, &Value::Int(1), &Value::Float(0.9)), Ok(Value::Float(1.0 - 0.9)));
        assert!(binary(BinaryOp::Div, &Value::Int(1), &Value::Int(0)).is_err());
        assert_eq!(binary(BinaryOp::Eq, &Value::Int(1), &Value::Float(1.0)), Ok(Value::Bool(true)));
    }
}

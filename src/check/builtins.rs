//! Built-in functions and constants: element math, reductions, compile-time helpers. Each is
//! typed here (result type and level from the arguments') and, where it makes sense at compile
//! time, evaluated here in double precision.

use super::program::Value;
use super::types::{Level, Ty, Typed};

/// What a built-in function does to levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Element math: the result has the highest level of the arguments.
    Math,
    /// A reduction over all leaves: per-leaf or per-element in, uniform out.
    Global,
    /// A reduction within each leaf: per-element in, per-leaf out.
    PerLeaf,
    /// Only at compile time.
    Const,
    /// A leaf's per-element values as a matrix: per-element in and out.
    Matrix,
}

struct Builtin {
    name: &'static str,
    arity: (usize, usize),
    kind: Kind,
    doc: &'static str,
}

const BUILTINS: &[Builtin] = &[
    Builtin { name: "sqrt", arity: (1, 1), kind: Kind::Math, doc: "square root" },
    Builtin { name: "rsqrt", arity: (1, 1), kind: Kind::Math, doc: "1 / sqrt(x)" },
    Builtin { name: "cbrt", arity: (1, 1), kind: Kind::Math, doc: "cube root" },
    Builtin { name: "abs", arity: (1, 1), kind: Kind::Math, doc: "absolute value" },
    Builtin { name: "sign", arity: (1, 1), kind: Kind::Math, doc: "-1, 0 or 1" },
    Builtin { name: "exp", arity: (1, 1), kind: Kind::Math, doc: "e ^ x" },
    Builtin { name: "log", arity: (1, 1), kind: Kind::Math, doc: "natural logarithm" },
    Builtin { name: "cos", arity: (1, 1), kind: Kind::Math, doc: "cosine" },
    Builtin { name: "sin", arity: (1, 1), kind: Kind::Math, doc: "sine" },
    Builtin { name: "tanh", arity: (1, 1), kind: Kind::Math, doc: "hyperbolic tangent" },
    Builtin { name: "floor", arity: (1, 1), kind: Kind::Math, doc: "round down" },
    Builtin { name: "ceil", arity: (1, 1), kind: Kind::Math, doc: "round up" },
    Builtin { name: "isfinite", arity: (1, 1), kind: Kind::Math, doc: "neither infinite nor NaN" },
    Builtin { name: "isnan", arity: (1, 1), kind: Kind::Math, doc: "NaN" },
    Builtin { name: "pow", arity: (2, 2), kind: Kind::Math, doc: "a ^ b" },
    Builtin { name: "clip", arity: (3, 3), kind: Kind::Math, doc: "min(max(x, lo), hi)" },
    Builtin { name: "float", arity: (1, 1), kind: Kind::Math, doc: "convert to float" },
    Builtin { name: "int", arity: (1, 1), kind: Kind::Math, doc: "convert to int, truncating" },
    // `min` and `max` are element math with two arguments and reductions with one.
    Builtin { name: "min", arity: (1, 2), kind: Kind::Math, doc: "smaller of two, or smallest of all" },
    Builtin { name: "max", arity: (1, 2), kind: Kind::Math, doc: "larger of two, or largest of all" },
    Builtin { name: "sum", arity: (1, 1), kind: Kind::Global, doc: "sum over all leaves" },
    Builtin { name: "norm", arity: (1, 1), kind: Kind::Global, doc: "L2 norm over all leaves" },
    Builtin { name: "mean", arity: (1, 1), kind: Kind::Global, doc: "mean over all leaves" },
    Builtin { name: "numel", arity: (1, 1), kind: Kind::Global, doc: "number of elements of all leaves" },
    Builtin { name: "all", arity: (1, 1), kind: Kind::Global, doc: "true everywhere" },
    Builtin { name: "any", arity: (1, 1), kind: Kind::Global, doc: "true somewhere" },
    Builtin { name: "dot", arity: (2, 2), kind: Kind::Global, doc: "sum of a * b over all leaves" },
    Builtin { name: "leaf_sum", arity: (1, 1), kind: Kind::PerLeaf, doc: "sum within each leaf" },
    Builtin { name: "leaf_norm", arity: (1, 1), kind: Kind::PerLeaf, doc: "L2 norm of each leaf" },
    Builtin { name: "leaf_max", arity: (1, 1), kind: Kind::PerLeaf, doc: "largest element of each leaf" },
    Builtin { name: "leaf_min", arity: (1, 1), kind: Kind::PerLeaf, doc: "smallest element of each leaf" },
    Builtin { name: "leaf_mean", arity: (1, 1), kind: Kind::PerLeaf, doc: "mean of each leaf" },
    Builtin { name: "leaf_numel", arity: (1, 1), kind: Kind::PerLeaf, doc: "number of elements of each leaf" },
    Builtin { name: "leaf_dot", arity: (2, 2), kind: Kind::PerLeaf, doc: "sum of a * b within each leaf" },
    Builtin { name: "matmul", arity: (2, 2), kind: Kind::Matrix, doc: "matrix product of two 2-D values of a leaf, or of two stacks of them (leading axes are a batch)" },
    Builtin { name: "transpose", arity: (1, 2), kind: Kind::Matrix, doc: "a value of a leaf with its axes reversed (rows and columns swapped), or permuted: `transpose(x, axes)`" },
    Builtin { name: "reshape", arity: (2, 2), kind: Kind::Matrix, doc: "a value of a leaf's elements in row-major order, as the shape given (one size may be -1)" },
    Builtin { name: "spectral_norm", arity: (1, 1), kind: Kind::Matrix, doc: "largest singular value of a 2-D value of a leaf (a 1 x 1 matrix), or of each matrix of a stack" },
    Builtin { name: "len", arity: (1, 1), kind: Kind::Const, doc: "length of a list, tuple or map" },
    Builtin { name: "is_number", arity: (1, 1), kind: Kind::Const, doc: "whether a compile-time value is an int or a float" },
    Builtin { name: "range", arity: (1, 2), kind: Kind::Const, doc: "the ints [0, n) or [a, b)" },
    Builtin { name: "selects", arity: (1, 1), kind: Kind::Const, doc: "in a transform's body, whether a mask (a hyperparameter) selects the leaf" },
];

/// The reductions that also take `axis=`: over some axes of each leaf instead of everything.
pub const AXIS_REDUCTIONS: &[&str] = &["sum", "mean", "max", "min"];

/// Named constants.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI), ("inf", f64::INFINITY), ("nan", f64::NAN)];

/// The diagnostic for a built-in function named where a value is expected.
pub fn used_as_value(name: &str, span: crate::source::Span) -> crate::diagnostic::Diagnostic {
    crate::diagnostic::Diagnostic::error("builtin-as-value", format!("the built-in `{name}` can only be called"))
        .with_primary(span, "used as a value")
        .with_help(format!("call it, `{name}(...)`, or wrap it in a `def` to pass it: `def my_{name}(x: float) = {name}(x)`"))
}

/// Whether `name` is a built-in that works on a leaf's values as a matrix.
pub fn is_matrix(name: &str) -> bool {
    BUILTINS.iter().any(|b| b.name == name && b.kind == Kind::Matrix)
}

/// Whether `name` is a built-in function.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.iter().any(|b| b.name == name)
}

/// All built-in function and constant names, for suggestions.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name).chain(CONSTANTS.iter().map(|(n, _)| *n))
}

/// One line describing a built-in, for `--explain`-style listings.
pub fn doc(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|b| b.name == name).map(|b| b.doc)
}

/// Types a call of a built-in. `Err` carries a message for the call's span.
pub fn check(name: &str, args: &[Typed]) -> Result<Typed, String> {
    let Some(b) = BUILTINS.iter().find(|b| b.name == name) else {
        return Err(format!("`{name}` is not a built-in function"));
    };
    let (lo, hi) = b.arity;
    if args.len() < lo || args.len() > hi {
        let expected = if lo == hi { format!("{lo}") } else { format!("{lo} or {hi}") };
        return Err(format!("`{name}` takes {expected} argument(s), found {}", args.len()));
    }
    if args.iter().any(Typed::is_error) {
        return Ok(Typed::error());
    }
    let level = args.iter().map(|a| a.level).max().unwrap_or(Level::Const);
    let numeric = |a: &Typed| a.ty.is_numeric();
    let kind = if matches!(name, "min" | "max") && args.len() == 1 { Kind::Global } else { b.kind };
    match kind {
        Kind::Math => {
            if name == "isfinite" || name == "isnan" {
                return if numeric(&args[0]) {
                    Ok(Typed::new(Ty::Bool, level))
                } else {
                    Err(format!("`{name}` takes a number, found {}", args[0]))
                };
            }
            if name == "float" || name == "int" {
                return match args[0].ty {
                    Ty::Float | Ty::Int | Ty::Bool => {
                        Ok(Typed::new(if name == "float" { Ty::Float } else { Ty::Int }, level))
                    }
                    _ => Err(format!("`{name}` takes a number or bool, found {}", args[0])),
                };
            }
            if let Some(bad) = args.iter().find(|a| !numeric(a)) {
                return Err(format!("`{name}` takes numbers, found {bad}"));
            }
            let all_int = args.iter().all(|a| a.ty == Ty::Int);
            let keeps_int = matches!(name, "abs" | "sign" | "min" | "max" | "clip");
            Ok(Typed::new(if all_int && keeps_int { Ty::Int } else { Ty::Float }, level))
        }
        Kind::Global | Kind::PerLeaf => {
            let out_level = if kind == Kind::Global { Level::Uniform } else { Level::Leaf };
            let lowest_in = if kind == Kind::Global { Level::Leaf } else { Level::Element };
            if level < lowest_in {
                let what = if kind == Kind::Global { "per-leaf or per-element" } else { "per-element" };
                return Err(format!("`{name}` reduces a {what} value, but this argument is {}", args[0].level.describe()));
            }
            let wants_bool = matches!(name, "all" | "any");
            for a in args {
                let ok = if wants_bool { a.ty == Ty::Bool } else { numeric(a) };
                if !ok {
                    let want = if wants_bool { "bools" } else { "numbers" };
                    return Err(format!("`{name}` reduces {want}, found {a}"));
                }
            }
            let ty = match name {
                "all" | "any" => Ty::Bool,
                "numel" | "leaf_numel" => Ty::Int,
                _ => Ty::Float,
            };
            Ok(Typed::new(ty, out_level))
        }
        Kind::Matrix => {
            // `transpose(x, axes)`, `reshape(x, shape)`: a compile-time list of ints.
            let (args, listed) = if matches!(name, "transpose" | "reshape") { args.split_at(1) } else { (args, &[][..]) };
            if let Some(l) = listed.first() {
                // (An `any` hyperparameter is checked where its value is known.)
                if !(l.ty.is_ints() || l.ty == Ty::Any) || l.level > Level::Const {
                    let what = if name == "transpose" { "axes" } else { "shape" };
                    return Err(format!("`{name}`'s {what} is a list of ints known at compile time, found {l}"));
                }
            }
            let level = args.iter().map(|a| a.level).max().unwrap_or(Level::Const);
            if let Some(bad) = args.iter().find(|a| !numeric(a)) {
                return Err(format!("`{name}` takes numbers, found {bad}"));
            }
            if level < Level::Element {
                return Err(format!("`{name}` works on a leaf's values as a matrix, a per-element value, but this argument is {}", level.describe()));
            }
            Ok(Typed::new(Ty::Float, Level::Element))
        }
        Kind::Const => {
            if level > Level::Const {
                return Err(format!("`{name}` needs a compile-time argument, found {}", args[0].level.describe()));
            }
            match name {
                "is_number" => Ok(Typed::konst(Ty::Bool)),
                "selects" => match args[0].ty {
                    Ty::Mask | Ty::Str | Ty::Bool | Ty::Any | Ty::List(_) => Ok(Typed::konst(Ty::Bool)),
                    _ => Err(format!("`selects` takes a mask, found {}", args[0])),
                },
                "len" => match args[0].ty {
                    Ty::List(_) | Ty::Tuple(_) | Ty::Map(..) | Ty::Str | Ty::Any => Ok(Typed::konst(Ty::Int)),
                    _ => Err(format!("`len` takes a list, tuple or map, found {}", args[0])),
                },
                _ => {
                    if let Some(bad) = args.iter().find(|a| a.ty != Ty::Int) {
                        return Err(format!("`range` takes ints, found {bad}"));
                    }
                    Ok(Typed::konst(Ty::List(Box::new(Ty::Int))))
                }
            }
        }
    }
}

/// Evaluates a built-in at compile time, in double precision (Python's `math`).
/// `None` if it cannot be evaluated at compile time.
pub fn eval(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let f = |i: usize| args.get(i).and_then(Value::as_f64);
    let all_int = args.iter().all(|a| matches!(a, Value::Int(_)));
    let num = |x: f64| Value::Float(x);
    let result = match (name, args) {
        ("len", [Value::List(v) | Value::Tuple(v)]) => Value::Int(v.len() as i64),
        ("len", [Value::Map(v)]) => Value::Int(v.len() as i64),
        ("len", [Value::Str(s)]) => Value::Int(s.chars().count() as i64),
        ("is_number", [v]) => Value::Bool(matches!(v, Value::Int(_) | Value::Float(_))),
        ("range", [Value::Int(n)]) => return Some(make_range(0, *n)),
        ("range", [Value::Int(a), Value::Int(b)]) => return Some(make_range(*a, *b)),
        ("int", [Value::Bool(b)]) => Value::Int(i64::from(*b)),
        ("float", [Value::Bool(b)]) => num(f64::from(u8::from(*b))),
        ("int", [Value::Int(n)]) => Value::Int(*n),
        ("int", [Value::Float(x)]) => {
            if !x.is_finite() {
                return Some(Err(format!("cannot convert {x} to an int")));
            }
            Value::Int(x.trunc() as i64)
        }
        ("float", [_]) => num(f(0)?),
        ("abs", [Value::Int(n)]) => Value::Int(n.checked_abs()?),
        ("sign", [Value::Int(n)]) => Value::Int(n.signum()),
        ("min" | "max" | "clip", _) if all_int && args.len() >= 2 => {
            let v: Vec<i64> = args.iter().filter_map(|a| if let Value::Int(n) = a { Some(*n) } else { None }).collect();
            Value::Int(match name {
                "min" => v[0].min(v[1]),
                "max" => v[0].max(v[1]),
                _ => v[0].max(v[1]).min(v[2]),
            })
        }
        ("isfinite", [_]) => Value::Bool(f(0)?.is_finite()),
        ("isnan", [_]) => Value::Bool(f(0)?.is_nan()),
        _ => {
            let x = f(0)?;
            num(match name {
                "sqrt" => x.sqrt(),
                "rsqrt" => 1.0 / x.sqrt(),
                "cbrt" => x.cbrt(),
                "abs" => x.abs(),
                "sign" => {
                    if x == 0.0 || x.is_nan() {
                        x
                    } else {
                        x.signum()
                    }
                }
                "exp" => x.exp(),
                "log" => x.ln(),
                "cos" => x.cos(),
                "sin" => x.sin(),
                "tanh" => x.tanh(),
                "floor" => x.floor(),
                "ceil" => x.ceil(),
                "pow" => x.powf(f(1)?),
                "min" if args.len() == 2 => x.min(f(1)?),
                "max" if args.len() == 2 => x.max(f(1)?),
                "clip" => x.max(f(1)?).min(f(2)?),
                _ => return None,
            })
        }
    };
    Some(Ok(result))
}

fn make_range(a: i64, b: i64) -> Result<Value, String> {
    const MAX: i64 = crate::limits::VALUE_SIZE.max as i64;
    if b.saturating_sub(a) > MAX {
        return Err(format!("`range` of more than {MAX} values"));
    }
    Ok(Value::List((a..b).map(Value::Int).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_lower_the_level() {
        let tensor = Typed::new(Ty::Float, Level::Element);
        assert_eq!(check("norm", std::slice::from_ref(&tensor)), Ok(Typed::new(Ty::Float, Level::Uniform)));
        assert_eq!(check("leaf_norm", std::slice::from_ref(&tensor)), Ok(Typed::new(Ty::Float, Level::Leaf)));
        assert_eq!(check("max", &[tensor.clone(), tensor.clone()]), Ok(tensor));
        assert!(check("norm", &[Typed::new(Ty::Float, Level::Uniform)]).is_err());
    }

    #[test]
    fn compile_time_math_is_double_precision() {
        assert_eq!(eval("sqrt", &[Value::Float(2.0)]), Some(Ok(Value::Float(2f64.sqrt()))));
        assert_eq!(eval("min", &[Value::Int(3), Value::Int(5)]), Some(Ok(Value::Int(3))));
        assert_eq!(eval("range", &[Value::Int(3)]), Some(Ok(Value::List(vec![Value::Int(0), Value::Int(1), Value::Int(2)]))));
    }
}

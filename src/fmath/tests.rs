//! Accuracy against float64 libm (correctly rounded to float32 but for rare double roundings)
//! and special values against float32 libm. The sweeps take every `stride`-th float32 bit
//! pattern (4099th by default); `OPTC_FMATH_STRIDE=1 cargo test --release --lib fmath` sweeps
//! all of them (minutes per function; `sin` and `cos` of huge arguments make float64 libm
//! slow), which is how the bounds below were found.

use super::*;

/// The largest error of each function, in ulps, rounded up: over every float32 for `exp`
/// (1.011 at -5.8594856), `log` (0.840 at 1.4133185) and `tanh` (1.332 at 0.6310442); over every
/// 31st bit pattern for `sin` (0.953) and `cos` (0.951); for `pow`, 1.232 over every 124th
/// base against the exponents of `pow_is_within_its_bound` and every 124th exponent against
/// its bases.
const EXP: f64 = 1.02;
const LOG: f64 = 0.85;
const SIN: f64 = 0.96;
const COS: f64 = 0.96;
const TANH: f64 = 1.34;
const POW: f64 = 1.24;

/// |got - want| in units of the last place of `want` rounded to float32; 0 where both are the
/// same NaN-ness or the same infinity.
fn ulps(got: f32, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    let rounded = want as f32;
    if rounded.is_infinite() || got.is_infinite() {
        return if got == rounded { 0.0 } else { f64::INFINITY };
    }
    let magnitude = rounded.abs().max(f32::MIN_POSITIVE);
    let exponent = (magnitude.to_bits() >> 23) as i32 - 127;
    (f64::from(got) - want).abs() / 2f64.powi(exponent - 23)
}

fn stride() -> u64 {
    std::env::var("OPTC_FMATH_STRIDE").ok().and_then(|s| s.parse().ok()).unwrap_or(4099)
}

/// The largest error of `f` against `reference` over every `stride`-th float32, with where.
fn sweep(f: impl Fn(f32) -> f32 + Sync, reference: impl Fn(f64) -> f64 + Sync) -> (f64, f32) {
    let stride = stride();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (f, reference) = (&f, &reference);
                s.spawn(move || {
                    let mut worst = (0.0f64, 0.0f32);
                    let mut b = t * stride;
                    while b < 1 << 32 {
                        let x = f32::from_bits(b as u32);
                        let e = ulps(f(x), reference(f64::from(x)));
                        if e > worst.0 {
                            worst = (e, x);
                        }
                        b += threads * stride;
                    }
                    worst
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
    })
}

fn assert_within(name: &str, bound: f64, (err, at): (f64, f32)) {
    assert!(err <= bound, "{name}: {err:.3} ulp at {at:e} (bits {:#010x}), bound {bound}", at.to_bits());
}

#[test]
fn exp_is_within_its_bound() {
    assert_within("exp", EXP, sweep(exp_f32, f64::exp));
}

#[test]
fn log_is_within_its_bound() {
    assert_within("log", LOG, sweep(log_f32, f64::ln));
}

#[test]
fn sin_and_cos_are_within_their_bounds() {
    assert_within("sin", SIN, sweep(sin_f32, f64::sin));
    assert_within("cos", COS, sweep(cos_f32, f64::cos));
}

#[test]
fn tanh_is_within_its_bound() {
    assert_within("tanh", TANH, sweep(tanh_f32, f64::tanh));
}

#[test]
fn pow_is_within_its_bound() {
    // Every float base against exponents of each kind; then bases of each kind against every
    // float exponent.
    for y in [0.5f32, -0.5, 1.5, 3.0, -1.0, 0.25, 7.3, -13.7, 100.5, 1e-3, 0.999, -150.2] {
        assert_within(&format!("pow(x, {y})"), POW, sweep(|x| pow_f32(x, y), |x| x.powf(f64::from(y))));
    }
    for x in [0.9f32, 0.999, std::f32::consts::E, 1.0001, 1.41, 0.71, 1e-30, 3e30, 7.0, -2.5, 1e-40] {
        assert_within(&format!("pow({x}, y)"), POW, sweep(|y| pow_f32(x, y), |y| f64::from(x).powf(y)));
    }
}

/// Where libm's float32 result is NaN, zero or infinite, ours is the same (sign included);
/// elsewhere within `bound` of the float64 result.
fn agrees_with_libm(name: &str, ours: f32, libm: f32, want: f64, bound: f64) {
    if libm.is_nan() {
        assert!(ours.is_nan(), "{name}: {ours:e}, libm NaN");
    } else if libm == 0.0 || libm.is_infinite() {
        assert_eq!(ours.to_bits(), libm.to_bits(), "{name}: {ours:e}, libm {libm:e}");
    } else {
        assert!(ulps(ours, want) <= bound, "{name}: {ours:e}, float64 {want:e}");
    }
}

const SPECIAL: &[f32] = &[
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    -f32::NAN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1e-45,
    -1e-45,
    3e-39,
    -3e-39,
    1e-20,
    f32::MAX,
    f32::MIN,
    1.0,
    -1.0,
    88.72283,
    88.72284,
    89.0,
    -87.33655,
    -103.27893,
    -103.97208,
    -104.0,
    -1000.0,
    9.0,
    -9.5,
    1599.9999,
    1600.0,
    -1600.0,
    1e5,
    -3.0e7,
    1e30,
    -1e38,
    3.3e38,
];

#[test]
fn special_values_are_libm_s() {
    for &x in SPECIAL {
        let w = f64::from(x);
        agrees_with_libm(&format!("exp({x:e})"), exp_f32(x), x.exp(), w.exp(), EXP);
        agrees_with_libm(&format!("log({x:e})"), log_f32(x), x.ln(), w.ln(), LOG);
        agrees_with_libm(&format!("sin({x:e})"), sin_f32(x), x.sin(), w.sin(), SIN);
        agrees_with_libm(&format!("cos({x:e})"), cos_f32(x), x.cos(), w.cos(), COS);
        agrees_with_libm(&format!("tanh({x:e})"), tanh_f32(x), x.tanh(), w.tanh(), TANH);
    }
    // sin keeps the sign of a zero, tanh too; e^x of a tiny x is 1.
    assert_eq!(sin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(exp_f32(1e-30), 1.0);
}

#[test]
fn pow_special_values_are_c99_s() {
    let values = [0.0f32, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 1e-40, -1e-40, 1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    for &x in &values {
        for &y in &values {
            let want = f64::from(x).powf(f64::from(y));
            agrees_with_libm(&format!("pow({x:e}, {y:e})"), pow_f32(x, y), x.powf(y), want, POW);
        }
    }
    assert_eq!(pow_f32(f32::NAN, 0.0), 1.0);
    assert_eq!(pow_f32(1.0, f32::NAN), 1.0);
    assert!(pow_f32(-2.0, 0.5).is_nan());
    assert_eq!(pow_f32(-2.0, 3.0), -8.0);
    assert_eq!(pow_f32(-0.0, -3.0), f32::NEG_INFINITY);
    assert_eq!(pow_f32(4.0, 0.5), 2.0);
}

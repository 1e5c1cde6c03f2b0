//! How a per-element state value is stored: float32, or bfloat16 (the top half of a float32's
//! bits). Arithmetic is always float32; a bfloat16 value becomes a float32 exactly when read
//! (its bits shifted up) and is rounded to the nearest bfloat16, ties to even, when written,
//! as numpy's and JAX's `astype(bfloat16)` do. A NaN stays a NaN: the quiet NaN of its sign.
//!
//! The rounding is written once over [`Arith`]: the interpreter runs it on floats, the JIT emits
//! it on lanes, so both store the same bits.
//!
//! A bfloat16 buffer lives in float32 words, two values to a word: value `i` is the low half of
//! word `i / 2` when `i` is even, the high half when odd, which is where the JIT's 16-bit loads
//! and stores at byte `2 i` find it on a little-endian machine.

use super::Arith;

/// The storage type of a per-element state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Storage {
    #[default]
    F32,
    Bf16,
}

impl Storage {
    /// Every storage type, in the order of [`Storage::code`].
    pub const ALL: [Storage; 2] = [Storage::F32, Storage::Bf16];

    /// The name a user writes (JAX's dtype names).
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "float32",
            Storage::Bf16 => "bfloat16",
        }
    }

    /// The storage type named `name`.
    pub fn parse(name: &str) -> Option<Storage> {
        Storage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::Bf16 => 2,
        }
    }

    /// A small number that identifies the type in state files.
    pub fn code(self) -> u8 {
        match self {
            Storage::F32 => 0,
            Storage::Bf16 => 1,
        }
    }

    /// The type with code `code`.
    pub fn from_code(code: u8) -> Option<Storage> {
        Storage::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Float32 words that hold `elements` values.
    pub fn words(self, elements: usize) -> usize {
        match self {
            Storage::F32 => elements,
            Storage::Bf16 => elements.div_ceil(2),
        }
    }

    /// `x` as it is after being stored and read back.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Storage::F32 => x,
            Storage::Bf16 => round_bf16(&mut super::Plain, x),
        }
    }

    /// Value `i` of a buffer of this type.
    pub fn get(self, words: &[f32], i: usize) -> Option<f32> {
        match self {
            Storage::F32 => words.get(i).copied(),
            Storage::Bf16 => {
                let word = words.get(i / 2)?.to_bits();
                let half = if i.is_multiple_of(2) { word << 16 } else { word & 0xFFFF_0000 };
                Some(f32::from_bits(half))
            }
        }
    }

    /// Stores `x` (rounded to this type) as value `i` of a buffer of this type.
    pub fn set(self, words: &mut [f32], i: usize, x: f32) {
        match self {
            Storage::F32 => {
                if let Some(w) = words.get_mut(i) {
                    *w = x;
                }
            }
            Storage::Bf16 => {
                let Some(w) = words.get_mut(i / 2) else { return };
                let top = self.round(x).to_bits() >> 16;
                let word = w.to_bits();
                let word = if i.is_multiple_of(2) { (word & 0xFFFF_0000) | top } else { (word & 0xFFFF) | (top << 16) };
                *w = f32::from_bits(word);
            }
        }
    }

    /// The values of a buffer of this type holding `n` of them.
    pub fn unpack(self, words: &[f32], n: usize) -> Vec<f32> {
        match self {
            Storage::F32 => words[..n.min(words.len())].to_vec(),
            Storage::Bf16 => (0..n).map(|i| self.get(words, i).unwrap_or(0.0)).collect(),
        }
    }

    /// Stores `values` from value `at` on into a buffer of this type.
    pub fn pack(self, words: &mut [f32], at: usize, values: &[f32]) {
        match self {
            Storage::F32 => {
                if let Some(dst) = words.get_mut(at..at + values.len()) {
                    dst.copy_from_slice(values);
                }
            }
            Storage::Bf16 => values.iter().enumerate().for_each(|(i, &x)| self.set(words, at + i, x)),
        }
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as a float32 whose low 16 bits are zero;
/// a NaN becomes the quiet NaN of its sign. Finite values beyond the largest bfloat16 round to
/// infinity, as IEEE rounding does.
pub fn round_bf16<A: Arith>(a: &mut A, x: A::F) -> A::F {
    let half = bf16_half(a, x);
    let bits = a.shl(half, 16);
    a.float(bits)
}

/// The bits of [`round_bf16`]`(x)`'s top half, sign-extended to 32 (so a signed narrowing to 16
/// bits keeps them exactly): what a kernel stores.
pub fn bf16_half<A: Arith>(a: &mut A, x: A::F) -> A::I {
    let bits = a.bits(x);
    // Adding 0x7FFF plus the lowest kept bit carries into the kept bits exactly when the
    // dropped half is above the tie, or at the tie with an odd kept part.
    let kept = a.sar(bits, 16);
    let one = a.iconst(1);
    let kept_lsb = a.iand(kept, one);
    let bias = a.iconst(0x7FFF);
    let sum = a.iadd(bits, bias);
    let sum = a.iadd(sum, kept_lsb);
    let rounded = a.sar(sum, 16);
    // NaN: the sign (with its extension), then the quiet NaN's bits (`sign ^ 0x7FC0` sets them).
    let sign = a.iconst(0xFFFF_8000_u32 as i32);
    let sign = a.iand(kept, sign);
    let quiet = a.iconst(0x7FC0);
    let nan = a.ixor(sign, quiet);
    // (A select of floats moves bits: these are the halves' bits, not numbers.)
    let (rounded, nan) = (a.float(rounded), a.float(nan));
    let ordered = a.eq(x, x);
    let half = a.select(ordered, rounded, nan);
    a.bits(half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even_and_keeps_nan_and_infinity() {
        let r = |x: f32| Storage::Bf16.round(x).to_bits();
        assert_eq!(r(1.0), 0x3F80_0000);
        // Exactly half way: to the even neighbour.
        assert_eq!(r(f32::from_bits(0x3F80_8000)), 0x3F80_0000);
        assert_eq!(r(f32::from_bits(0x3F81_8000)), 0x3F82_0000);
        // Above and below half way.
        assert_eq!(r(f32::from_bits(0x3F80_8001)), 0x3F81_0000);
        assert_eq!(r(f32::from_bits(0x3F80_7FFF)), 0x3F80_0000);
        assert_eq!(r(-0.0), 0x8000_0000);
        assert_eq!(r(f32::INFINITY), 0x7F80_0000);
        assert_eq!(r(f32::NEG_INFINITY), 0xFF80_0000);
        assert_eq!(r(f32::MAX), 0x7F80_0000);
        // Subnormals round like any other bits.
        assert_eq!(r(f32::from_bits(0x0000_8000)), 0);
        assert_eq!(r(f32::from_bits(0x0001_8000)), 0x0002_0000);
        assert_eq!(r(f32::from_bits(0x7FA0_0001)), 0x7FC0_0000);
        assert_eq!(r(f32::from_bits(0xFFC1_2345)), 0xFFC0_0000);
        assert_eq!(Storage::F32.round(0.1), 0.1);
    }

    #[test]
    fn rounding_agrees_with_the_nearest_of_the_two_neighbours() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if !f.is_finite() {
                continue;
            }
            let down = f32::from_bits(x & 0xFFFF_0000);
            let up = f32::from_bits((x & 0xFFFF_0000) + 0x1_0000);
            let got = Storage::Bf16.round(f);
            // Past the largest bfloat16 the next value up is 2^128, as if the exponent went on
            // (IEEE rounding: what rounds past halfway to it becomes infinity).
            let up_value = if up.is_infinite() { f64::from(up.signum()) * 2f64.powi(128) } else { f64::from(up) };
            let (dd, du) = ((f64::from(f) - f64::from(down)).abs(), (up_value - f64::from(f)).abs());
            let want = if dd < du || (dd == du && (x >> 16) & 1 == 0) { down } else { up };
            assert_eq!(got.to_bits(), want.to_bits(), "{f:e}");
        }
    }

    #[test]
    fn packed_values_round_trip_in_either_half_of_a_word() {
        let mut words = vec![0.0f32; Storage::Bf16.words(5)];
        assert_eq!(words.len(), 3);
        Storage::Bf16.pack(&mut words, 0, &[1.0, -2.5, 3.0e-3, f32::NAN, 7.0]);
        let back = Storage::Bf16.unpack(&words, 5);
        assert_eq!(back[..3], [1.0, -2.5, Storage::Bf16.round(3.0e-3)]);
        assert!(back[3].is_nan());
        assert_eq!(back[4], 7.0);
        // Value 0 is the low half of word 0 (the JIT's 16-bit store at byte 0).
        assert_eq!(words[0].to_bits() & 0xFFFF, 0x3F80);
        Storage::Bf16.set(&mut words, 1, 0.5);
        assert_eq!(Storage::Bf16.get(&words, 0), Some(1.0));
        assert_eq!(Storage::Bf16.get(&words, 1), Some(0.5));
    }
}

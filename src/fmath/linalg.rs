//! Linear algebra on one small matrix, for per-leaf operations that need more than products:
//! the spectral norm (largest singular value) that Muon's `preconditioning="spectral"` divides
//! by. Computed in double precision and rounded once, so it is the float32 nearest the exact
//! value whenever the matrix is not badly conditioned, as LAPACK's float32 SVD (what
//! `jnp.linalg.norm(x, ord=2)` calls) nearly is.

/// The largest singular value of the `rows` × `cols` matrix `a` (row-major): the square root
/// of the largest eigenvalue of the smaller Gram matrix, found by cyclic Jacobi rotations.
pub fn spectral_norm(rows: usize, cols: usize, a: &[f32]) -> f32 {
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    if a.iter().any(|x| !x.is_finite()) {
        return a.iter().copied().find(|x| x.is_nan()).unwrap_or(f32::INFINITY);
    }
    // The Gram matrix of the shorter side: n × n with n = min(rows, cols).
    let (n, m) = (rows.min(cols), rows.max(cols));
    let at = |i: usize, k: usize| -> f64 { if rows <= cols { f64::from(a[i * cols + k]) } else { f64::from(a[k * cols + i]) } };
    let mut g = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..m).map(|k| at(i, k) * at(j, k)).sum();
        }
    }
    for _sweep in 0..64 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| g[i * n + j] * g[i * n + j]).sum();
        let diag: f64 = (0..n).map(|i| g[i * n + i] * g[i * n + i]).sum();
        if off <= diag * 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = g[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (g[q * n + q] - g[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (gkp, gkq) = (g[k * n + p], g[k * n + q]);
                    g[k * n + p] = c * gkp - s * gkq;
                    g[k * n + q] = s * gkp + c * gkq;
                }
                for k in 0..n {
                    let (gpk, gqk) = (g[p * n + k], g[q * n + k]);
                    g[p * n + k] = c * gpk - s * gqk;
                    g[q * n + k] = s * gpk + c * gqk;
                }
            }
        }
    }
    let largest = (0..n).map(|i| g[i * n + i]).fold(0.0f64, f64::max);
    largest.max(0.0).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectral_norm_is_the_largest_singular_value() {
        // diag(3, 2) rotated: singular values 3 and 2.
        assert_eq!(spectral_norm(2, 2, &[3.0, 0.0, 0.0, -2.0]), 3.0);
        // A rank-one matrix u v^T has ||u|| ||v||.
        let a = [1.0, 2.0, 2.0, 2.0, 4.0, 4.0];
        assert!((spectral_norm(2, 3, &a) - 5.0_f32.sqrt() * 3.0).abs() < 1e-6);
        assert!((spectral_norm(3, 2, &[1.0, 2.0, 2.0, 4.0, 2.0, 4.0]) - 5.0_f32.sqrt() * 3.0).abs() < 1e-6);
        // [[1, 1], [0, 1]]: the golden ratio.
        let phi = (1.0 + 5.0_f64.sqrt()) / 2.0;
        assert_eq!(spectral_norm(2, 2, &[1.0, 1.0, 0.0, 1.0]), phi as f32);
        assert_eq!(spectral_norm(0, 3, &[]), 0.0);
    }
}

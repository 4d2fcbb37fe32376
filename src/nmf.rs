//! Non-negative matrix factorisation `X ~ W H` (`W, H >= 0`) by cyclic coordinate descent on the
//! Frobenius loss `|X - W H|^2 / 2` (Cichocki and Phan, "Fast local algorithms for large scale
//! nonnegative matrix and tensor factorizations", IEICE 2009): scikit-learn's `NMF` solver `cd`
//! with its defaults (no regularisation, no shuffling), step for step.
//!
//! Written here rather than taken from a crate: Deep Feature Factorization is compared with
//! pytorch-grad-cam's, which runs scikit-learn's solver, and a factorisation is not unique: only
//! the same updates from the same start, stopped by the same rule, give the same factors.
//! Every number is `f64` on the host.

use nalgebra::DMatrix;

use crate::methods::normal_noise;

/// A factorisation and the sweeps it took.
#[derive(Debug, Clone)]
pub(crate) struct Nmf {
    /// `[rows, k]`, non-negative.
    pub w: DMatrix<f64>,
    /// `[k, columns]`, non-negative.
    pub h: DMatrix<f64>,
    /// Sweeps run (each updates `W`, then `H`).
    pub iterations: usize,
}

/// scikit-learn's `init='random'` with our seeded stream in place of NumPy's:
/// `H = |a N(0, 1)|` (`[k, columns]`, row-major, draw 0 of `seed`), then `W = |a N(0, 1)|`
/// (`[rows, k]`, row-major, draw 1), `a = sqrt(mean(X) / k)`.
pub(crate) fn random_start(x: &DMatrix<f64>, k: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let (rows, columns) = x.shape();
    let scale = (x.mean() / k as f64).sqrt();
    let draw = |sample, r, c| {
        let mut noise = normal_noise(seed, 0, sample, 0).map(|z| (scale * z as f64).abs());
        DMatrix::from_row_iterator(r, c, noise.by_ref().take(r * c))
    };
    (draw(1, rows, k), draw(0, k, columns))
}

/// Factorise `x` (non-negative) from `(w, h)`: sweeps of [`update`] on `W` then on `H`, until
/// the summed projected gradient of a sweep falls to `tolerance` times the first sweep's, or
/// after `max_iterations` sweeps (scikit-learn's rule: `tol = 1e-4`, `max_iter = 200`).
pub(crate) fn factorize(
    x: &DMatrix<f64>,
    mut w: DMatrix<f64>,
    h: DMatrix<f64>,
    tolerance: f64,
    max_iterations: usize,
) -> Nmf {
    let xt = x.transpose();
    let mut ht = h.transpose(); // [columns, k]
    let mut first = None;
    let mut iterations = 0;
    for sweep in 1..=max_iterations {
        iterations = sweep;
        let violation = update(x, &mut w, &ht) + update(&xt, &mut ht, &w);
        let first = *first.get_or_insert(violation);
        if first == 0.0 || violation / first <= tolerance {
            break;
        }
    }
    Nmf {
        w,
        h: ht.transpose(),
        iterations,
    }
}

/// One cyclic pass over the entries of `W` for `X ~ W Ht^T` with `Ht` fixed, component by
/// component: each entry moves to the minimum of the loss along it, clipped at 0. Returns the
/// summed absolute projected gradient before the moves (scikit-learn's `_update_cdnmf_fast`).
fn update(x: &DMatrix<f64>, w: &mut DMatrix<f64>, ht: &DMatrix<f64>) -> f64 {
    let (rows, k) = w.shape();
    // Row-major copies (nalgebra is column-major), so that each entry's gradient reads two
    // contiguous rows: the sweep is most of the factorisation's time.
    let hht = (ht.transpose() * ht).transpose(); // [k, k], row t = HHt[t, ..]
    let hht = hht.as_slice();
    let xht = x * ht; // [rows, k], column t contiguous
    let xht = xht.as_slice();
    let mut rows_of_w = w.transpose(); // column i = row i of W
    let entries = rows_of_w.as_mut_slice();
    let mut violation = 0.0;
    for t in 0..k {
        let hht_t = &hht[t * k..(t + 1) * k];
        let hess = hht_t[t];
        for (i, w_i) in entries.chunks_exact_mut(k).enumerate() {
            let mut grad = -xht[t * rows + i];
            for (h, w) in hht_t.iter().zip(w_i.iter()) {
                grad += h * w;
            }
            let projected = if w_i[t] == 0.0 { grad.min(0.0) } else { grad };
            violation += projected.abs();
            if hess != 0.0 {
                w_i[t] = (w_i[t] - grad / hess).max(0.0);
            }
        }
    }
    *w = rows_of_w.transpose();
    violation
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-negative matrix of rank 2 (`[4, 6]`), exactly `W H`.
    fn rank_two() -> (DMatrix<f64>, DMatrix<f64>) {
        let w = DMatrix::from_row_slice(4, 2, &[1.0, 0.0, 0.5, 2.0, 0.0, 1.0, 3.0, 0.25]);
        let h = DMatrix::from_row_slice(
            2,
            6,
            &[1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 2.0, 1.0],
        );
        (w, h)
    }

    #[test]
    fn an_exact_low_rank_matrix_is_recovered() {
        let (w0, h0) = rank_two();
        let x = &w0 * &h0;
        let (w, h) = random_start(&x, 2, 3);
        let nmf = factorize(&x, w, h, 1e-12, 2000);
        // A rank-2 non-negative factorisation exists, so the loss goes to 0: what is left after
        // 2000 sweeps is the solver's, far below the matrix's entries (<= 6.5).
        let residual = (&x - &nmf.w * &nmf.h).abs().max();
        assert!(residual < 1e-6, "residual {residual}");
        assert!(nmf.w.iter().chain(nmf.h.iter()).all(|v| *v >= 0.0));
        // One sweep is not enough: the test can tell a factorisation from a start.
        let (w, h) = random_start(&x, 2, 3);
        let one = factorize(&x, w, h, 0.0, 1);
        assert!((&x - &one.w * &one.h).abs().max() > 1e-3);
    }

    #[test]
    fn a_sweep_stops_at_the_first_local_minimum_of_each_entry() {
        // With H fixed, one pass on a single-column W is exact: w_i = max(0, <x_i, h> / <h, h>).
        let x = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, -1.0, 0.0, -2.0]);
        let ht = DMatrix::from_column_slice(3, 1, &[1.0, 1.0, 1.0]);
        let mut w = DMatrix::from_element(2, 1, 1.0);
        let violation = update(&x, &mut w, &ht);
        assert_eq!(w.as_slice(), &[2.0, 0.0]);
        // Gradients before the moves: 3 * 1 - 6 = -3 and 3 * 1 + 3 = 6.
        assert_eq!(violation, 9.0);
    }

    #[test]
    fn the_start_is_scikit_learns_scale_and_our_seeded_stream() {
        let x = DMatrix::from_element(3, 4, 2.0);
        let (w, h) = random_start(&x, 2, 7);
        let scale = 1.0f64; // sqrt(2 / 2)
        let expected_h: Vec<f64> = normal_noise(7, 0, 0, 0)
            .take(8)
            .map(|z| (scale * z as f64).abs())
            .collect();
        assert_eq!(h.transpose().as_slice(), expected_h.as_slice()); // row-major
        assert_eq!(w.shape(), (3, 2));
        let (_, other) = random_start(&x, 2, 8);
        assert_ne!(h, other);
    }

    #[test]
    fn a_zero_matrix_stops_after_one_sweep() {
        let x = DMatrix::zeros(3, 4);
        let (w, h) = random_start(&x, 2, 0);
        let nmf = factorize(&x, w, h, 1e-4, 200);
        assert_eq!(nmf.iterations, 1);
        assert!(nmf.w.iter().chain(nmf.h.iter()).all(|v| *v == 0.0));
    }
}

//! OpenCV's bilinear resize (`cv2.resize(.., INTER_LINEAR)`) of one axis as a matrix, weight for
//! weight.
//!
//! Written here rather than taken from Burn's `interpolate` because SESS thresholds what it
//! resizes (`value > theta`, with `theta = 0` by default): a sample that OpenCV weights by
//! exactly 0 must get exactly 0 here too, or a pixel next to a pasted patch is counted by one
//! and not by the other, which moves the fused mean there by up to the whole value. OpenCV
//! computes each sample's position in `f64`, rounds it to `f32` and splits it into an index and
//! a fraction; so does this. As a matrix it also resizes a patch pasted into a zero canvas
//! without the canvas: only the patch's columns of the matrix are non-zero work.

/// The `[to, from]` row-major weights of OpenCV's `INTER_LINEAR` resize of an axis of `from`
/// samples to `to`: output `i` is `(1 - f) x[s] + f x[s + 1]` for
/// `s + f = (i + 0.5) from / to - 0.5` (half-pixel centres), clamped to the first and last
/// sample at the borders, as `cv::resize` computes it for `f32` images (its exact 2x shrink,
/// which it runs as `INTER_AREA`, has the same weights, one half each).
///
/// # Panics
/// If `from` or `to` is 0: the callers resize non-empty maps.
pub(crate) fn linear_resize_weights(from: usize, to: usize) -> Vec<f32> {
    assert!(from > 0 && to > 0, "resizing an empty axis");
    // `cv::resize`: `inv_scale = to / from`, `scale = 1 / inv_scale`, in f64.
    let scale = 1.0 / (to as f64 / from as f64);
    let mut weights = vec![0.0f32; to * from];
    for (i, row) in weights.chunks_exact_mut(from).enumerate() {
        let position = ((i as f64 + 0.5) * scale - 0.5) as f32;
        let floor = position.floor();
        let (index, fraction) = if floor < 0.0 {
            (0, 0.0)
        } else if floor as usize >= from - 1 {
            (from - 1, 0.0)
        } else {
            (floor as usize, position - floor)
        };
        row[index] += 1.0 - fraction;
        if fraction != 0.0 {
            row[index + 1] += fraction;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_by_two_averages_pairs() {
        let w = linear_resize_weights(4, 2);
        assert_eq!(w, vec![0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]);
    }

    #[test]
    fn growing_by_two_weights_a_quarter_and_three_quarters_and_clamps_the_ends() {
        // Positions -0.25, 0.25, 0.75, 1.25: the first clamps to sample 0, the last to 1.
        let w = linear_resize_weights(2, 4);
        assert_eq!(
            w,
            vec![1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0],
            "rows of [4, 2]"
        );
    }

    #[test]
    fn an_integral_position_weights_its_neighbour_by_exactly_zero() {
        // 288 -> 224 (9/7): output 3 sits at (3.5) 9/7 - 0.5 = 4 exactly, as OpenCV computes it.
        let w = linear_resize_weights(288, 224);
        let row = &w[3 * 288..4 * 288];
        assert_eq!(row[4], 1.0);
        assert_eq!(row.iter().filter(|v| **v != 0.0).count(), 1);
        // Every row sums to 1 within one rounding, and reads at most two neighbours.
        for row in w.chunks_exact(288) {
            let taps: Vec<usize> = (0..288).filter(|&j| row[j] != 0.0).collect();
            assert!(taps.len() <= 2 && taps.windows(2).all(|p| p[1] == p[0] + 1));
            assert!((row.iter().sum::<f32>() - 1.0).abs() <= f32::EPSILON);
        }
    }

    #[test]
    fn the_same_size_is_the_identity() {
        let w = linear_resize_weights(3, 3);
        assert_eq!(w, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }
}

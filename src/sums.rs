//! Sums over the long vectors of the host's f64 work (the L-BFGS state, ‖Θ‖², gradient
//! norms), in eight interleaved partial sums combined in a fixed order. A plain running
//! sum waits on each addition in turn; eight independent ones fill the vector units, and
//! a fixed order keeps every result the same, bit for bit, from run to run.

/// Σ f(aᵢ, bᵢ) over the common length of `a` and `b`.
pub(crate) fn pair_sum<A: Copy, B: Copy>(a: &[A], b: &[B], f: impl Fn(A, B) -> f64) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut lanes = [0f64; 8];
    let (blocks_a, blocks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = blocks_a
        .remainder()
        .iter()
        .zip(blocks_b.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (xs, ys) in blocks_a.zip(blocks_b) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(xs).zip(ys) {
            *lane += f(x, y);
        }
    }
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lanes;
    ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)) + tail
}

/// aᵀb.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    pair_sum(a, b, |x, y| x * y)
}

/// Σ tᵢ² of f32 values, in f64.
pub(crate) fn sum_of_squares(t: &[f32]) -> f64 {
    pair_sum(t, t, |x, _| f64::from(x) * f64::from(x))
}

/// max |vᵢ| (0 for no values; NaNs are passed over, as `f64::max` does).
pub(crate) fn max_abs(v: &[f64]) -> f64 {
    let mut lanes = [0f64; 8];
    let blocks = v.chunks_exact(8);
    let tail = blocks.remainder().iter().fold(0f64, |m, &x| m.max(x.abs()));
    for xs in blocks {
        for (lane, &x) in lanes.iter_mut().zip(xs) {
            *lane = lane.max(x.abs());
        }
    }
    lanes.iter().fold(tail, |m, &x| m.max(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..len).map(|_| 3.0 * rng.normal()).collect()
    }

    #[test]
    fn sums_match_plain_loops_for_every_tail_length() {
        for len in [0, 1, 7, 8, 9, 16, 61, 1000] {
            let (a, b) = (values(len, 1), values(len, 2));
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let scale: f64 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            assert!((dot(&a, &b) - plain).abs() <= 1e-13 * scale, "len {len}");
            let t: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let squares: f64 = t.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            assert!(
                (sum_of_squares(&t) - squares).abs() <= 1e-13 * squares,
                "len {len}"
            );
            let largest = a.iter().fold(0f64, |m, &x| m.max(x.abs()));
            assert_eq!(max_abs(&a), largest, "len {len}");
        }
    }

    #[test]
    fn max_abs_finds_the_largest_in_any_lane_and_passes_over_nan() {
        for at in 0..19 {
            let mut v = vec![0.5; 19];
            v[at] = -4.0;
            v[(at + 3) % 19] = f64::NAN;
            assert_eq!(max_abs(&v), 4.0, "largest at {at}");
        }
    }
}

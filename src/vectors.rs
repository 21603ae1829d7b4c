//! Arithmetic on the long vectors of the host's f64 work: the L-BFGS state, ‖Θ‖², gradient
//! norms, the parameters and gradients passed to and from the device. With n·K in the
//! millions every L-BFGS iteration makes dozens of passes over such vectors, bound by
//! memory bandwidth, so vectors of at least [`PARALLEL_MIN`] values are split over the
//! threads of rayon's pool.
//!
//! Sums are reproducible: a vector is cut into blocks of [`BLOCK`] values whatever the
//! threads, each block is summed in eight interleaved partial sums (which fill the vector
//! units, where one running sum waits on each addition in turn), and the block sums are
//! added in block order. The same input always gives the same bits, on any machine.

use rayon::prelude::*;

/// Values per block of a sum.
pub(crate) const BLOCK: usize = 1 << 15;

/// Vectors shorter than this are worked on by the calling thread alone.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;

/// Σ f(aᵢ, bᵢ) over one block, in eight interleaved partial sums combined in a fixed order.
fn block_sum<A: Copy, B: Copy>(a: &[A], b: &[B], f: &impl Fn(A, B) -> f64) -> f64 {
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

/// Σ f(aᵢ, bᵢ) over the common length of `a` and `b`.
pub(crate) fn pair_sum<A, B>(a: &[A], b: &[B], f: impl Fn(A, B) -> f64 + Sync) -> f64
where
    A: Copy + Sync,
    B: Copy + Sync,
{
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let sums: Vec<f64> = if len >= PARALLEL_MIN {
        a.par_chunks(BLOCK)
            .zip(b.par_chunks(BLOCK))
            .map(|(x, y)| block_sum(x, y, &f))
            .collect()
    } else {
        a.chunks(BLOCK)
            .zip(b.chunks(BLOCK))
            .map(|(x, y)| block_sum(x, y, &f))
            .collect()
    };
    sums.iter().sum()
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
    fn block_max(v: &[f64]) -> f64 {
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
    if v.len() >= PARALLEL_MIN {
        v.par_chunks(BLOCK).map(block_max).reduce(|| 0.0, f64::max)
    } else {
        block_max(v)
    }
}

/// yᵢ = f(yᵢ, xᵢ) over the common length.
pub(crate) fn update<X: Copy + Sync>(y: &mut [f64], x: &[X], f: impl Fn(f64, X) -> f64 + Sync) {
    if y.len() >= PARALLEL_MIN {
        y.par_iter_mut()
            .zip(x.par_iter())
            .with_min_len(BLOCK)
            .for_each(|(y, &x)| *y = f(*y, x));
    } else {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = f(*y, x));
    }
}

/// yᵢ = f(yᵢ).
pub(crate) fn apply(y: &mut [f64], f: impl Fn(f64) -> f64 + Sync) {
    if y.len() >= PARALLEL_MIN {
        y.par_iter_mut()
            .with_min_len(BLOCK)
            .for_each(|y| *y = f(*y));
    } else {
        y.iter_mut().for_each(|y| *y = f(*y));
    }
}

/// out = (f(aᵢ, bᵢ)) over the common length, reusing out's memory.
pub(crate) fn zip_into<A, B, T>(out: &mut Vec<T>, a: &[A], b: &[B], f: impl Fn(A, B) -> T + Sync)
where
    A: Copy + Sync,
    B: Copy + Sync,
    T: Send,
{
    out.clear();
    if a.len().min(b.len()) >= PARALLEL_MIN {
        out.par_extend(
            a.par_iter()
                .zip(b.par_iter())
                .with_min_len(BLOCK)
                .map(|(&x, &y)| f(x, y)),
        );
    } else {
        out.extend(a.iter().zip(b).map(|(&x, &y)| f(x, y)));
    }
}

/// (f(aᵢ)) as a new vector.
pub(crate) fn map<A: Copy + Sync, T: Send>(a: &[A], f: impl Fn(A) -> T + Sync) -> Vec<T> {
    if a.len() >= PARALLEL_MIN {
        a.par_iter().with_min_len(BLOCK).map(|&x| f(x)).collect()
    } else {
        a.iter().map(|&x| f(x)).collect()
    }
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
        for len in [0, 1, 7, 8, 9, 16, 61, 1000, PARALLEL_MIN + 12_345] {
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

    #[test]
    fn sums_give_the_same_bits_on_any_number_of_threads() {
        let len = 3 * BLOCK + PARALLEL_MIN + 77;
        let (a, b) = (values(len, 3), values(len, 4));
        let t: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| (dot(&a, &b), sum_of_squares(&t), max_abs(&b)))
        };
        let one = on(1);
        for threads in [2, 3, 8] {
            let many = on(threads);
            assert_eq!(one.0.to_bits(), many.0.to_bits(), "{threads} threads");
            assert_eq!(one.1.to_bits(), many.1.to_bits(), "{threads} threads");
            assert_eq!(one.2.to_bits(), many.2.to_bits(), "{threads} threads");
        }
    }

    #[test]
    fn element_wise_operations_match_plain_loops_short_and_long() {
        for len in [5, PARALLEL_MIN + 9] {
            let (a, b) = (values(len, 5), values(len, 6));
            let mut y = a.clone();
            update(&mut y, &b, |y, x| y - 0.5 * x);
            assert!(
                y.iter()
                    .zip(&a)
                    .zip(&b)
                    .all(|((&y, &a), &b)| y == a - 0.5 * b)
            );
            apply(&mut y, |v| -v);
            assert!(
                y.iter()
                    .zip(&a)
                    .zip(&b)
                    .all(|((&y, &a), &b)| y == -(a - 0.5 * b))
            );
            let mut out = vec![1.0; 3];
            zip_into(&mut out, &a, &b, |a, b| a * b);
            assert_eq!(out.len(), len);
            assert!(out.iter().zip(&a).zip(&b).all(|((&o, &a), &b)| o == a * b));
            let halves: Vec<f32> = map(&a, |v| (v / 2.0) as f32);
            assert!(halves.iter().zip(&a).all(|(&h, &a)| h == (a / 2.0) as f32));
        }
    }
}

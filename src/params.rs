//! The parameters (Θ, b) as the device and the optimizers hold them: one vector
//! w = (Θ row-major, b), and the checks of their shapes.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{Error, Result};

/// Checks that Θ is (n, K) and b has K entries.
pub(crate) fn check_params(
    theta: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    n: usize,
    k: usize,
) -> Result<()> {
    if theta.dim() != (n, k) {
        return Err(Error::shape("theta", &[n, k], theta.shape()));
    }
    if bias.len() != k {
        return Err(Error::shape("bias", &[k], bias.shape()));
    }
    Ok(())
}

/// Flattens (Θ, b) into the device layout w = (Θ row-major, b).
pub(crate) fn flatten(theta: ArrayView2<'_, f32>, bias: ArrayView1<'_, f32>) -> Vec<f32> {
    theta.iter().chain(bias.iter()).copied().collect()
}

/// Splits w back into (Θ (n, K), b (K)).
pub(crate) fn unflatten<T: Copy>(w: &[T], n: usize, k: usize) -> (Array2<T>, Array1<T>) {
    unflatten_vec(w[..n * k + k].to_vec(), n, k)
}

/// [`unflatten`] taking w's memory over: Θ keeps it, b gets a copy of its K values.
pub(crate) fn unflatten_vec<T>(mut w: Vec<T>, n: usize, k: usize) -> (Array2<T>, Array1<T>) {
    w.truncate(n * k + k);
    let bias = Array1::from_vec(w.split_off(n * k));
    let theta =
        Array2::from_shape_vec((n, k), w).unwrap_or_else(|_| unreachable!("w has n·K + K entries"));
    (theta, bias)
}

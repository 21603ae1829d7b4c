//! L-BFGS reaches the reference optima of ../shared/data/README.md on the digits data
//! (features / 16, all 1797 rows) within 1e-6 relative, on the GPU and the CPU oracle.

mod common;

use std::ops::ControlFlow;

use common::{digits, gpu};
use ndarray::{Array1, Array2};
use softmax_regression::lbfgs::{LbfgsSettings, Status, minimize};
use softmax_regression::{CpuOracle, GpuOracle, Oracle};

/// (λ, J*) from scikit-learn's newton-cholesky fit, gradient max-norm below 1e-13.
const OPTIMA: [(f64, f64); 3] = [
    (1e-2, 0.738514081875),
    (1e-3, 0.261864547218),
    (1e-4, 0.087345742989),
];

fn reaches_optima(oracle: &mut dyn Oracle, name: &str) {
    for (l2, optimum) in OPTIMA {
        let settings = LbfgsSettings {
            tol: 1e-6,
            ..LbfgsSettings::default()
        };
        let r = minimize(
            oracle,
            Array2::zeros((64, 10)),
            Array1::zeros(10),
            l2,
            &settings,
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap();
        let rel = (r.loss - optimum) / optimum;
        eprintln!(
            "{name} λ={l2:e}: J = {:.12}, J* = {optimum}, relative {rel:.2e}, {} after {} iterations, {} evaluations, max|∇J| = {:.2e}",
            r.loss, r.status, r.iterations, r.evaluations, r.grad_max_norm
        );
        assert_eq!(r.status, Status::Converged, "{name} λ={l2}");
        assert!(
            rel.abs() <= 1e-6,
            "{name} λ={l2}: J = {} vs J* = {optimum} (relative {rel:e})",
            r.loss
        );
    }
}

#[test]
fn lbfgs_reaches_digits_optima_on_the_gpu() {
    let data = digits();
    reaches_optima(&mut GpuOracle::new(gpu(), &data, None).unwrap(), "gpu");
}

#[test]
fn lbfgs_reaches_digits_optima_on_the_cpu() {
    let data = digits();
    reaches_optima(&mut CpuOracle::new(&data).unwrap(), "cpu");
}

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

/// J = Σ cᵢ (wᵢ − 1)² / 2 over w = (Θ, b), with cᵢ in 1..=9, its ∇_Θ J handed back as
/// `layout` makes it: standard, the transpose of a (K, n) array, or a slice of a bigger one.
struct Quadratic {
    n: usize,
    k: usize,
    layout: &'static str,
}

impl Oracle for Quadratic {
    fn shape(&self) -> (usize, usize, usize) {
        (1, self.n, self.k)
    }

    fn loss_and_gradient(
        &mut self,
        theta: ndarray::ArrayView2<'_, f32>,
        bias: ndarray::ArrayView1<'_, f32>,
        _l2: f64,
    ) -> softmax_regression::Result<softmax_regression::LossGrad> {
        let c = |i: usize, j: usize| 1.0 + ((3 * i + 5 * j) % 9) as f64;
        let g = Array2::from_shape_fn((self.n, self.k), |(i, j)| {
            c(i, j) * (f64::from(theta[(i, j)]) - 1.0)
        });
        let loss = theta
            .indexed_iter()
            .map(|((i, j), &t)| 0.5 * c(i, j) * (f64::from(t) - 1.0).powi(2))
            .sum::<f64>()
            + bias
                .iter()
                .map(|&b| 0.5 * (f64::from(b) - 1.0).powi(2))
                .sum::<f64>();
        let theta = match self.layout {
            "transposed" => {
                let columns = g.t().as_standard_layout().into_owned().reversed_axes();
                assert!(!columns.is_standard_layout());
                columns
            }
            "sliced" => {
                let mut big = Array2::zeros((self.n + 2, self.k));
                big.slice_mut(ndarray::s![2.., ..]).assign(&g);
                big.slice_move(ndarray::s![2.., ..])
            }
            "wrong shape" => g.slice_move(ndarray::s![1.., ..]),
            _ => g,
        };
        Ok(softmax_regression::LossGrad {
            loss,
            theta,
            bias: bias.mapv(|b| f64::from(b) - 1.0),
        })
    }
}

#[test]
fn lbfgs_takes_any_layout_of_a_user_oracles_gradient_and_rejects_a_wrong_shape() {
    // 13 × 7 runs the host's vector work on one thread; 300 × 250 (75,250 parameters)
    // splits it over rayon's pool.
    for (n, k) in [(13, 7), (300, 250)] {
        let run = |layout| {
            let mut oracle = Quadratic { n, k, layout };
            minimize(
                &mut oracle,
                Array2::zeros((n, k)),
                Array1::zeros(k),
                0.0,
                &LbfgsSettings::default(),
                |_, _| ControlFlow::Continue(()),
            )
        };
        let standard = run("standard").unwrap();
        assert_eq!(standard.status, Status::Converged, "{n} × {k}");
        assert!(standard.theta.iter().all(|&t| (t - 1.0).abs() < 1e-5));
        for layout in ["transposed", "sliced"] {
            let r = run(layout).unwrap();
            assert_eq!(r.theta, standard.theta, "{n} × {k}, {layout}");
            assert_eq!(r.evaluations, standard.evaluations, "{n} × {k}, {layout}");
        }
        let err = run("wrong shape").unwrap_err().to_string();
        assert!(err.contains("oracle"), "{err}");
    }
}

/// For K = 2 scikit-learn fits one sigmoid, minimising
/// f(w, c) = (1/m) Σ log(1 + exp(−s_i (w·x_i + c))) + ‖w‖² / (2·C·m) with s_i = ±1; the
/// README says our optimum is its optimum when λ = 2/(C·m), with w = θ⁽¹⁾ − θ⁽⁰⁾ and
/// c = b₁ − b₀. At our optimum, ∇f must then vanish and f equal our J.
#[test]
fn two_classes_match_the_binary_objective_at_lambda_two_over_c_m() {
    let data = common::clusters(300, 5, 2, 1.0, 17);
    let l2 = 3e-3;
    let settings = LbfgsSettings {
        tol: 1e-7,
        max_iter: 1000,
        ..LbfgsSettings::default()
    };
    let mut oracle = CpuOracle::new(&data).unwrap();
    let r = minimize(
        &mut oracle,
        Array2::zeros((5, 2)),
        Array1::zeros(2),
        l2,
        &settings,
        |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(r.status, Status::Converged);
    let (theta, bias) = (r.theta.mapv(f64::from), r.bias.mapv(f64::from));
    let w = &theta.column(1) - &theta.column(0);
    let c = bias[1] - bias[0];
    let (x, y) = (data.x().unwrap().mapv(f64::from), data.labels());
    let m = y.len() as f64;
    let inv_cm = l2 / 2.0; // 1/(C·m) with C = 2/(λ·m)
    let (mut f, mut grad_w, mut grad_c) = (0.0, Array1::<f64>::zeros(5), 0.0);
    for (row, &label) in x.outer_iter().zip(y) {
        let s = if label == 1 { 1.0 } else { -1.0 };
        let margin = s * (row.dot(&w) + c);
        f += (-margin).exp().ln_1p() / m;
        let g = -s / (1.0 + margin.exp()) / m;
        grad_w.scaled_add(g, &row);
        grad_c += g;
    }
    f += inv_cm / 2.0 * w.dot(&w);
    grad_w.scaled_add(inv_cm, &w);
    let stationary = grad_w.iter().fold(grad_c.abs(), |a, g| a.max(g.abs()));
    assert!(
        stationary < 1e-5,
        "∇f = {stationary:e} at our optimum: not scikit-learn's optimum"
    );
    assert!(
        (f - r.loss).abs() < 1e-6 * r.loss,
        "f = {f}, J = {}",
        r.loss
    );
}

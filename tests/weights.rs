//! Sample and class weights: J = (1/m) Σ_i w_i·CE_i + (λ/2)‖Θ‖², checked against a
//! computation written out in this file, on the CPU reference and the GPU.

mod common;

use std::ops::ControlFlow;

use common::{assert_close, clusters, gpu, labels, normal, normal_vec};
use softmax_regression::{
    Backend, CpuOracle, Dataset, GpuOracle, Optimizer, Oracle, Settings, Trainer,
};

/// J and ∇J by explicit loops over rows, classes and features, in f64.
fn by_hand(
    x: &ndarray::Array2<f32>,
    y: &[u32],
    w: &[f32],
    theta: &ndarray::Array2<f32>,
    bias: &ndarray::Array1<f32>,
    l2: f64,
) -> (f64, Vec<f64>) {
    let (m, n) = x.dim();
    let k = bias.len();
    let mut loss = 0.0;
    let mut gt = vec![0.0; n * k];
    let mut gb = vec![0.0; k];
    for i in 0..m {
        let z: Vec<f64> = (0..k)
            .map(|c| {
                f64::from(bias[c])
                    + (0..n)
                        .map(|j| f64::from(x[(i, j)]) * f64::from(theta[(j, c)]))
                        .sum::<f64>()
            })
            .collect();
        let zmax = z.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|v| (v - zmax).exp()).sum();
        let wi = f64::from(w[i]);
        loss += wi * (sum.ln() + zmax - z[y[i] as usize]);
        for c in 0..k {
            let p = (z[c] - zmax).exp() / sum;
            let d = wi * (p - if c == y[i] as usize { 1.0 } else { 0.0 });
            gb[c] += d / m as f64;
            for j in 0..n {
                gt[j * k + c] += f64::from(x[(i, j)]) * d / m as f64;
            }
        }
    }
    let reg: f64 = theta.iter().map(|&t| f64::from(t) * f64::from(t)).sum();
    for (g, &t) in gt.iter_mut().zip(theta.iter()) {
        *g += l2 * f64::from(t);
    }
    gt.extend(gb);
    (loss / m as f64 + 0.5 * l2 * reg, gt)
}

#[test]
fn weighted_objective_matches_a_computation_by_hand() {
    let (m, n, k, l2) = (37, 5, 4, 0.03);
    let x = normal(m, n, 1.0, 1);
    let y = labels(m, k, 2);
    let w: Vec<f32> = normal_vec(m, 1.0, 3)
        .iter()
        .map(|v| v.abs() * 2.0)
        .collect();
    let theta = normal(n, k, 0.4, 4);
    let bias = normal_vec(k, 0.4, 5);
    let (want_loss, want_grad) = by_hand(&x, &y, &w, &theta, &bias, l2);
    let data = Dataset::new(x.clone(), &y, k)
        .unwrap()
        .with_sample_weights(&w)
        .unwrap();
    let cpu = CpuOracle::new(&data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    let gpu_result = GpuOracle::new(gpu(), &data, Some(10))
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    for (name, got) in [("cpu", cpu), ("gpu", gpu_result)] {
        assert!(
            (got.loss - want_loss).abs() <= 1e-6 * want_loss,
            "{name}: J {} vs {want_loss}",
            got.loss
        );
        let g: Vec<f64> = got.theta.iter().chain(got.bias.iter()).copied().collect();
        assert_close(
            &format!("{name} weighted gradient"),
            &g,
            &want_grad,
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn class_weights_multiply_sample_weights_and_balanced_matches_the_formula() {
    let y = vec![0, 0, 0, 1, 2, 2];
    let x = normal(6, 2, 1.0, 6);
    let data = Dataset::new(x, &y, 3).unwrap();
    // m / (K · count): 6/(3·3), 6/(3·1), 6/(3·2)
    assert_eq!(data.balanced_class_weights(), vec![6.0 / 9.0, 2.0, 1.0]);
    let weighted = data
        .with_sample_weights(&[1.0, 2.0, 1.0, 1.0, 0.5, 1.0])
        .unwrap()
        .with_class_weights(&[2.0, 3.0, 4.0])
        .unwrap();
    assert_eq!(weighted.weights().unwrap(), &[2.0, 4.0, 2.0, 3.0, 2.0, 4.0]);
    let bad = Dataset::new(normal(2, 2, 1.0, 7), &[0, 1], 2).unwrap();
    assert!(matches!(
        bad.clone().with_sample_weights(&[1.0, -1.0]),
        Err(softmax_regression::Error::InvalidWeight { row: 1, .. })
    ));
    assert!(matches!(
        bad.clone().with_sample_weights(&[1.0, f32::NAN]),
        Err(softmax_regression::Error::InvalidWeight { row: 1, .. })
    ));
    assert!(bad.with_class_weights(&[1.0]).is_err());
}

#[test]
fn integer_weights_equal_repeated_rows() {
    // w_i = 2 counts row i twice: m·J agrees with the data where the row is repeated.
    let (m, n, k, l2) = (20, 4, 3, 0.0);
    let x = normal(m, n, 1.0, 8);
    let y = labels(m, k, 9);
    let mut w = vec![1.0f32; m];
    w[3] = 2.0;
    w[11] = 3.0;
    let weighted = Dataset::new(x.clone(), &y, k)
        .unwrap()
        .with_sample_weights(&w)
        .unwrap();
    let rows: Vec<usize> = (0..m)
        .flat_map(|i| std::iter::repeat_n(i, w[i] as usize))
        .collect();
    let repeated = Dataset::new(x, &y, k).unwrap().select_rows(&rows).unwrap();
    let theta = normal(n, k, 0.5, 10);
    let bias = normal_vec(k, 0.5, 11);
    let a = GpuOracle::new(gpu(), &weighted, None)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    let b = CpuOracle::new(&repeated)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    let (ma, mb) = (m as f64, rows.len() as f64);
    assert!(
        (a.loss * ma - b.loss * mb).abs() < 1e-5 * b.loss * mb,
        "{} vs {}",
        a.loss * ma,
        b.loss * mb
    );
}

#[test]
fn weighted_mini_batch_training_agrees_between_gpu_and_cpu() {
    let data = clusters(400, 8, 3, 0.7, 12);
    let w = data.balanced_class_weights();
    let sample: Vec<f32> = (0..400).map(|i| 0.5 + (i % 3) as f32 * 0.5).collect();
    let data = data
        .with_sample_weights(&sample)
        .unwrap()
        .with_class_weights(&w)
        .unwrap();
    let settings = Settings {
        epochs: 3,
        learning_rate: 0.01,
        optimizer: Optimizer::Adam,
        batch_size: Some(50),
        chunk_rows: Some(150),
        ..Settings::default()
    };
    let trainer = Trainer::new(settings).unwrap();
    let g = trainer
        .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let c = trainer
        .fit(Backend::Cpu, &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let pg: Vec<f64> = g.model.theta().iter().map(|&v| f64::from(v)).collect();
    let pc: Vec<f64> = c.model.theta().iter().map(|&v| f64::from(v)).collect();
    assert_close("weighted adam parameters", &pg, &pc, 1e-4, 1e-3);
    assert!((g.history[2].loss - c.history[2].loss).abs() < 1e-5 * c.history[2].loss);
}

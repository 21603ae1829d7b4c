//! Whole training runs: GPU against CPU, reproducibility, convergence on the digits data
//! toward the reference optimum, settings validation and the model's predictions.

mod common;

use std::ops::ControlFlow;

use common::{assert_close, clusters, digits, f64s, gpu};
use softmax_regression::{Backend, Error, Fit, Optimizer, Settings, Trainer};

fn fit(backend: Backend<'_>, data: &softmax_regression::Dataset, settings: Settings) -> Fit {
    Trainer::new(settings)
        .unwrap()
        .fit(backend, data, None, None, |_| ControlFlow::Continue(()))
        .unwrap()
}

fn params(fit: &Fit) -> Vec<f32> {
    fit.model
        .theta()
        .iter()
        .chain(fit.model.bias().iter())
        .copied()
        .collect()
}

/// J* for λ = 1e-3 on digits / 16 (all 1797 rows), from ../shared/data/README.md.
const DIGITS_OPTIMUM_L2_1E3: f64 = 0.261864547218;

fn digits_gd_descends(backend: Backend<'_>) {
    let data = digits();
    let settings = Settings {
        epochs: 500,
        learning_rate: 1.0,
        l2: 1e-3,
        ..Settings::default()
    };
    let fit = fit(backend, &data, settings);
    let losses: Vec<f64> = fit.history.iter().map(|r| r.loss).collect();
    let start = (10f64).ln();
    assert!(
        losses[0] < start,
        "first step did not lower J below ln 10: {}",
        losses[0]
    );
    for (t, pair) in losses.windows(2).enumerate() {
        assert!(
            pair[1] <= pair[0],
            "J rose at epoch {}: {} → {}",
            t + 2,
            pair[0],
            pair[1]
        );
    }
    let last = *losses.last().unwrap();
    assert!(
        last >= DIGITS_OPTIMUM_L2_1E3 * (1.0 - 1e-6),
        "J = {last} is below the optimum {DIGITS_OPTIMUM_L2_1E3}"
    );
    let gap = (last - DIGITS_OPTIMUM_L2_1E3) / (start - DIGITS_OPTIMUM_L2_1E3);
    eprintln!(
        "digits GD λ=1e-3, 500 steps: J = {last:.9}, J* = {DIGITS_OPTIMUM_L2_1E3}, remaining gap {gap:.3e}"
    );
    assert!(
        gap < 0.02,
        "after 500 steps J = {last}, still {gap:.3} of the initial gap to J*"
    );
}

#[test]
fn digits_full_batch_gd_descends_monotonically_toward_optimum_gpu() {
    digits_gd_descends(Backend::Gpu(gpu()));
}

#[test]
fn digits_full_batch_gd_descends_monotonically_toward_optimum_cpu() {
    digits_gd_descends(Backend::Cpu);
}

#[test]
fn gpu_and_cpu_full_batch_training_agree_after_20_steps() {
    // Both apply the same f32 update; the GPU gradient is summed in f32, the CPU's in f64,
    // so the runs drift apart by f32 rounding only: 1e-4 relative after 20 steps.
    let data = clusters(700, 23, 6, 0.7, 1);
    for optimizer in [Optimizer::Gd, Optimizer::Momentum, Optimizer::Adam] {
        let settings = Settings {
            epochs: 20,
            learning_rate: 0.05,
            l2: 1e-3,
            optimizer,
            chunk_rows: Some(256),
            ..Settings::default()
        };
        let g = fit(Backend::Gpu(gpu()), &data, settings.clone());
        let c = fit(Backend::Cpu, &data, settings);
        assert_close(
            &format!("{optimizer} parameters after 20 steps"),
            &f64s(&params(&g)),
            &f64s(&params(&c)),
            1e-5,
            1e-4,
        );
        for (a, b) in g.history.iter().zip(&c.history) {
            assert!(
                (a.loss - b.loss).abs() <= 1e-6 * b.loss,
                "{optimizer} epoch {}: J {} vs {}",
                a.epoch,
                a.loss,
                b.loss
            );
        }
    }
}

#[test]
fn gpu_and_cpu_mini_batch_training_agree() {
    // The same seed and chunk size give the same batches on both backends.
    let data = clusters(500, 11, 4, 0.7, 2);
    let settings = Settings {
        epochs: 3,
        learning_rate: 0.01,
        optimizer: Optimizer::Adam,
        batch_size: Some(37),
        chunk_rows: Some(200),
        seed: 9,
        ..Settings::default()
    };
    let g = fit(Backend::Gpu(gpu()), &data, settings.clone());
    let c = fit(Backend::Cpu, &data, settings);
    assert_close(
        "adam mini-batch parameters",
        &f64s(&params(&g)),
        &f64s(&params(&c)),
        1e-4,
        1e-3,
    );
}

#[test]
fn same_seed_gives_bit_identical_gpu_runs() {
    let data = clusters(900, 17, 5, 0.5, 3);
    for optimizer in [Optimizer::Sgd, Optimizer::Momentum, Optimizer::Adam] {
        let settings = Settings {
            epochs: 4,
            learning_rate: 0.02,
            optimizer,
            batch_size: Some(64),
            chunk_rows: Some(300),
            seed: 42,
            ..Settings::default()
        };
        let a = fit(Backend::Gpu(gpu()), &data, settings.clone());
        let b = fit(Backend::Gpu(gpu()), &data, settings.clone());
        let (pa, pb) = (params(&a), params(&b));
        assert!(
            pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{optimizer}: runs with the same seed differ"
        );
        let other = fit(
            Backend::Gpu(gpu()),
            &data,
            Settings {
                seed: 43,
                ..settings
            },
        );
        assert_ne!(
            params(&other),
            pa,
            "{optimizer}: a different seed gave the same weights; is the shuffle used?"
        );
    }
}

#[test]
fn loss_decreases_on_a_learnable_problem() {
    let data = clusters(2000, 30, 8, 0.6, 4);
    let settings = Settings {
        epochs: 15,
        learning_rate: 0.01,
        optimizer: Optimizer::Adam,
        batch_size: Some(100),
        track_accuracy: true,
        ..Settings::default()
    };
    let fit = fit(Backend::Gpu(gpu()), &data, settings);
    let first = fit.history.first().unwrap();
    let last = fit.history.last().unwrap();
    assert!(
        last.loss < 0.5 * first.loss,
        "J went from {} to {}",
        first.loss,
        last.loss
    );
    assert!(
        last.train_accuracy.unwrap() > 0.9,
        "training accuracy {:?}",
        last.train_accuracy
    );
}

#[test]
fn validation_metrics_and_early_stop_from_callback() {
    let data = clusters(600, 10, 3, 1.0, 5);
    let (train, held) = data.split(0.25, 7).unwrap();
    assert_eq!(held.n_rows(), 150);
    let trainer = Trainer::new(Settings {
        epochs: 50,
        learning_rate: 0.5,
        ..Settings::default()
    })
    .unwrap();
    let fit = trainer
        .fit(Backend::Gpu(gpu()), &train, Some(&held), None, |r| {
            if r.epoch == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(fit.status, softmax_regression::Status::Stopped);
    assert_eq!(fit.history.len(), 5);
    let v = fit.history.last().unwrap().validation.unwrap();
    let direct = fit.model.evaluate(Backend::Cpu, &held).unwrap();
    assert!(
        (v.log_loss - direct.log_loss).abs() < 1e-5,
        "{} vs {}",
        v.log_loss,
        direct.log_loss
    );
    assert_eq!(v.accuracy, direct.accuracy);
}

#[test]
fn model_predictions_agree_between_gpu_and_cpu() {
    let data = clusters(400, 12, 4, 0.8, 6);
    let fit = fit(
        Backend::Cpu,
        &data,
        Settings {
            epochs: 30,
            learning_rate: 0.5,
            ..Settings::default()
        },
    );
    let pg = fit
        .model
        .predict_proba(Backend::Gpu(gpu()), data.x().unwrap())
        .unwrap();
    let pc = fit
        .model
        .predict_proba(Backend::Cpu, data.x().unwrap())
        .unwrap();
    assert_close("predict_proba", &f64s(&pg), &f64s(&pc), 2e-6, 1e-5);
    let (mg, mc) = (
        fit.model.evaluate(Backend::Gpu(gpu()), &data).unwrap(),
        fit.model.evaluate(Backend::Cpu, &data).unwrap(),
    );
    assert!(
        (mg.log_loss - mc.log_loss).abs() < 1e-5 && (mg.accuracy - mc.accuracy).abs() < 0.01,
        "{mg:?} vs {mc:?}"
    );
    assert!(mc.accuracy > 0.8, "{mc:?}");
}

#[test]
fn settings_are_validated_before_any_work() {
    let bad = [
        (
            Settings {
                epochs: 0,
                ..Settings::default()
            },
            "epochs",
        ),
        (
            Settings {
                learning_rate: -0.1,
                ..Settings::default()
            },
            "learning_rate",
        ),
        (
            Settings {
                learning_rate: f32::NAN,
                ..Settings::default()
            },
            "learning_rate",
        ),
        (
            Settings {
                l2: -1.0,
                ..Settings::default()
            },
            "l2",
        ),
        (
            Settings {
                l2: f64::INFINITY,
                ..Settings::default()
            },
            "l2",
        ),
        (
            Settings {
                batch_size: Some(0),
                optimizer: Optimizer::Sgd,
                ..Settings::default()
            },
            "batch_size",
        ),
        (
            Settings {
                batch_size: Some(10),
                optimizer: Optimizer::Gd,
                ..Settings::default()
            },
            "batch_size",
        ),
        (
            Settings {
                momentum: 1.0,
                ..Settings::default()
            },
            "momentum",
        ),
        (
            Settings {
                beta2: -0.5,
                ..Settings::default()
            },
            "beta2",
        ),
        (
            Settings {
                epsilon: 0.0,
                ..Settings::default()
            },
            "epsilon",
        ),
        (
            Settings {
                chunk_rows: Some(0),
                ..Settings::default()
            },
            "chunk_rows",
        ),
    ];
    for (settings, field) in bad {
        match Trainer::new(settings) {
            Err(Error::InvalidSetting { name, .. }) => assert_eq!(name, field),
            other => panic!("{field}: expected InvalidSetting, got {other:?}"),
        }
    }
    assert!("lbfgs-ish".parse::<Optimizer>().is_err());
    assert_eq!("adam".parse::<Optimizer>().unwrap(), Optimizer::Adam);
}

#[test]
fn convergence_status_is_reported() {
    let data = clusters(300, 6, 3, 1.0, 8);
    // L-BFGS converges; two epochs of GD do not.
    let lbfgs = Settings {
        epochs: 500,
        optimizer: Optimizer::Lbfgs,
        l2: 1e-2,
        tol: 1e-6,
        ..Settings::default()
    };
    let fit_l = fit(Backend::Gpu(gpu()), &data, lbfgs.clone());
    assert_eq!(
        fit_l.status,
        softmax_regression::Status::Converged,
        "{}",
        fit_l.summary(&lbfgs)
    );
    assert!(fit_l.history.last().unwrap().grad_max_norm <= 1e-6);
    let gd = Settings {
        epochs: 2,
        ..Settings::default()
    };
    let fit_g = fit(Backend::Gpu(gpu()), &data, gd.clone());
    assert_eq!(fit_g.status, softmax_regression::Status::IterationLimit);
    assert!(
        fit_g
            .summary(&gd)
            .starts_with("did not converge: max |∇J| = "),
        "{}",
        fit_g.summary(&gd)
    );
    // GD reaches the same optimum L-BFGS found, to the tolerance it was given.
    let gd_long = Settings {
        epochs: 20000,
        learning_rate: 1.0,
        l2: 1e-2,
        tol: 1e-5,
        ..Settings::default()
    };
    let fit_gl = fit(Backend::Cpu, &data, gd_long);
    assert_eq!(fit_gl.status, softmax_regression::Status::Converged);
    let (a, b) = (
        fit_gl.history.last().unwrap().loss,
        fit_l.history.last().unwrap().loss,
    );
    assert!((a - b).abs() < 1e-6 * b, "GD J = {a}, L-BFGS J = {b}");
}

#[test]
fn divergence_stops_with_the_last_finite_weights() {
    let mut data_x = clusters(200, 5, 3, 1.0, 9).x().unwrap().to_owned();
    data_x.mapv_inplace(|v| v * 1e3);
    let data = softmax_regression::Dataset::new(data_x, &common::labels(200, 3, 10), 3).unwrap();
    let settings = Settings {
        epochs: 50,
        learning_rate: 1e30,
        optimizer: Optimizer::Gd,
        ..Settings::default()
    };
    for backend in [Backend::Cpu, Backend::Gpu(gpu())] {
        let fit = fit(backend, &data, settings.clone());
        assert_eq!(
            fit.status,
            softmax_regression::Status::Diverged,
            "{:?}",
            fit.history.iter().map(|r| r.loss).collect::<Vec<_>>()
        );
        assert!(fit.model.theta().iter().all(|v| v.is_finite()));
        assert!(fit.summary(&settings).contains("smaller learning rate"));
    }
}

#[test]
fn schedules_give_the_documented_rates() {
    use softmax_regression::Schedule;
    assert_eq!(Schedule::Constant.rate(0.1, 7, 10), 0.1);
    let step = Schedule::Step {
        every: 3,
        factor: 0.5,
    };
    let rates: Vec<f32> = (1..=7).map(|e| step.rate(1.0, e, 7)).collect();
    assert_eq!(rates, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    assert_eq!(Schedule::Cosine.rate(2.0, 1, 10), 2.0);
    assert!((Schedule::Cosine.rate(2.0, 6, 10) - 1.0).abs() < 1e-6);
    assert!(Schedule::Cosine.rate(2.0, 10, 10) < 0.05);
    for bad in [
        Schedule::Step {
            every: 0,
            factor: 0.5,
        },
        Schedule::Step {
            every: 2,
            factor: 1.5,
        },
    ] {
        assert!(
            Trainer::new(Settings {
                schedule: bad,
                ..Settings::default()
            })
            .is_err()
        );
    }
}

#[test]
fn early_stopping_keeps_the_best_validation_weights() {
    // The validation labels disagree with the training labels, so the validation loss
    // gets worse as training fits the training data.
    let train = clusters(300, 6, 3, 1.5, 11);
    let wrong: Vec<u32> = train.labels().iter().map(|&y| (y + 1) % 3).collect();
    let held = softmax_regression::Dataset::new(train.x().unwrap().to_owned(), &wrong, 3).unwrap();
    let settings = Settings {
        epochs: 200,
        learning_rate: 0.05,
        optimizer: Optimizer::Adam,
        batch_size: Some(32),
        patience: Some(3),
        tol: 0.0,
        ..Settings::default()
    };
    let fit = Trainer::new(settings.clone())
        .unwrap()
        .fit(Backend::Gpu(gpu()), &train, Some(&held), None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(
        fit.status,
        softmax_regression::Status::EarlyStopped,
        "{}",
        fit.summary(&settings)
    );
    assert!(fit.history.len() < 200);
    let best = fit
        .history
        .iter()
        .map(|r| r.validation.unwrap().log_loss)
        .fold(f64::INFINITY, f64::min);
    let kept = fit.model.evaluate(Backend::Cpu, &held).unwrap().log_loss;
    assert!(
        (kept - best).abs() < 1e-5 * best,
        "model's validation loss {kept}, best seen {best}"
    );
    assert!(fit.summary(&settings).starts_with("early stopped after"));
    // Patience without validation data, or with L-BFGS, is refused.
    assert!(
        Trainer::new(settings.clone())
            .unwrap()
            .fit(Backend::Cpu, &train, None, None, |_| ControlFlow::Continue(
                ()
            ))
            .is_err()
    );
    assert!(
        Trainer::new(Settings {
            optimizer: Optimizer::Lbfgs,
            batch_size: None,
            ..settings
        })
        .is_err()
    );
}

#[test]
fn every_optimizer_repeats_bit_for_bit_on_the_same_adapter() {
    let data = clusters(700, 11, 4, 0.5, 9);
    for optimizer in Optimizer::ALL {
        let settings = Settings {
            epochs: 5,
            learning_rate: 0.05,
            optimizer,
            batch_size: matches!(
                optimizer,
                Optimizer::Sgd | Optimizer::Momentum | Optimizer::Adam
            )
            .then_some(40),
            chunk_rows: Some(250),
            seed: 3,
            tol: 0.0,
            ..Settings::default()
        };
        for backend in [Backend::Gpu(gpu()), Backend::Cpu] {
            let a = fit(backend, &data, settings.clone());
            let b = fit(backend, &data, settings.clone());
            let bits = |f: &Fit| params(f).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{optimizer}: two runs differ");
            assert_eq!(
                a.history
                    .iter()
                    .map(|r| r.loss.to_bits())
                    .collect::<Vec<_>>(),
                b.history
                    .iter()
                    .map(|r| r.loss.to_bits())
                    .collect::<Vec<_>>(),
                "{optimizer}: loss histories differ"
            );
        }
    }
}

#[test]
fn every_optimizer_name_parses_back() {
    for optimizer in Optimizer::ALL {
        assert_eq!(optimizer.name().parse::<Optimizer>().unwrap(), optimizer);
    }
    assert!("newton".parse::<Optimizer>().is_err());
}

//! Compact storage of X (f16, u8 with a scale): every kernel that reads X against the CPU
//! reference on the values the device stores, training runs bit-identical to f32 storage of
//! those values, streamed and resident compact X alike, and clear errors for values f16
//! cannot hold.

mod common;

use std::ops::ControlFlow;

use common::{assert_close, clusters, f64s, labels, mapped, normal, normal_vec, weight_bits};
use ndarray::{Array2, Axis};
use softmax_regression::gpu::{KernelVariant, XStorage, single};
use softmax_regression::reference;
use softmax_regression::{
    AdapterRequest, Backend, Dataset, Error, Fit, GpuContext, GpuOracle, Optimizer, Oracle,
    Settings, Trainer,
};

const COMPACT: [XStorage; 2] = [XStorage::F16, XStorage::U8];

fn open(kernels: KernelVariant, fused: bool, x_storage: XStorage) -> GpuContext {
    GpuContext::new(&AdapterRequest {
        kernels: Some(kernels),
        fused: Some(fused),
        x_storage,
        ..AdapterRequest::default()
    })
    .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
}

/// Contexts storing X as `storage`: register and coalesced kernels and, with the kernel
/// lab, tiled ones and `auto` with the fused kernel for K ≤ 16.
fn contexts(storage: XStorage) -> Vec<GpuContext> {
    #[allow(unused_mut)]
    let mut contexts = vec![
        open(KernelVariant::Register, false, storage),
        open(KernelVariant::Coalesced, false, storage),
    ];
    #[cfg(feature = "kernel-lab")]
    {
        contexts.push(open(KernelVariant::Tiled, false, storage));
        contexts.push(open(KernelVariant::Auto, true, storage));
    }
    contexts
}

/// Integers 0..=255 with a few distinct extremes: 8-bit pixels, exact in u8 and f16.
fn pixels(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = softmax_regression::SplitMix64::new(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.below(256) as f32)
}

#[test]
fn stored_values_are_exact_for_pixels_and_rounded_otherwise() {
    let px = pixels(50, 13, 1);
    for storage in COMPACT {
        assert_eq!(storage.as_stored(px.view()).unwrap(), px, "{storage:?}");
    }
    let x = normal(50, 13, 3.0, 2);
    let f16 = XStorage::F16.as_stored(x.view()).unwrap();
    let u8 = XStorage::U8.as_stored(x.view()).unwrap();
    let span =
        x.iter().fold(f32::MIN, |a, &v| a.max(v)) - x.iter().fold(f32::MAX, |a, &v| a.min(v));
    let max_err = |a: &Array2<f32>| {
        a.iter()
            .zip(&x)
            .fold(0.0f32, |e, (s, v)| e.max((s - v).abs()))
    };
    assert!(max_err(&f16) > 0.0 && max_err(&f16) <= 3.0 * 4.0 * 2f32.powi(-11));
    assert!(max_err(&u8) > 0.0 && max_err(&u8) <= 0.5 * span / 255.0 * 1.001);
}

#[test]
fn logits_match_the_reference_on_stored_values() {
    // Ragged rows and features (n odd, so rows end inside packed words; n = 38, rows
    // that start on f16 words but not on u8 ones; n = 64, on whole words for both), and
    // both the narrow (K ≤ 16) and square tile shapes.
    for storage in COMPACT {
        for ctx in contexts(storage) {
            for (m, n, k, seed) in [
                (259, 37, 10, 11),
                (70, 13, 65, 12),
                (150, 64, 10, 13),
                (90, 38, 20, 14),
            ] {
                let x = normal(m, n, 2.0, seed);
                let stored = storage.as_stored(x.view()).unwrap();
                let theta = normal(n, k, 0.3, seed + 1);
                let bias = normal_vec(k, 0.3, seed + 2);
                let want = reference::logits(
                    stored.view(),
                    theta.mapv(f64::from).view(),
                    bias.mapv(f64::from).view(),
                );
                let got = single::logits(&ctx, x.view(), theta.view(), bias.view()).unwrap();
                assert_close(
                    &format!("logits m={m} n={n} K={k} on {}", ctx.describe()),
                    &f64s(&got),
                    &want.iter().copied().collect::<Vec<_>>(),
                    1e-4,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn gradient_partials_match_the_reference_on_stored_values() {
    for storage in COMPACT {
        for ctx in contexts(storage) {
            // n odd, n ≡ 2 and n ≡ 0 (mod 4), with the bias column n at each place of the
            // four consecutive features that packed X gives an invocation.
            for (m, n, k, seed) in [
                (300, 37, 10, 21),
                (100, 13, 65, 22),
                (200, 64, 10, 23),
                (150, 42, 17, 24),
                (130, 63, 10, 25),
            ] {
                let x = normal(m, n, 2.0, seed);
                let stored = storage.as_stored(x.view()).unwrap().mapv(f64::from);
                let d = normal(m, k, 0.5, seed + 1);
                let loss = normal_vec(m, 1.0, seed + 2);
                let rows_per_block = 64;
                let got = single::gradient_partials(
                    &ctx,
                    x.view(),
                    d.view(),
                    loss.view(),
                    rows_per_block,
                )
                .unwrap();
                let d64 = d.mapv(f64::from);
                for (b, part) in got.outer_iter().enumerate() {
                    let rows = b * rows_per_block..((b + 1) * rows_per_block).min(m);
                    let xb = stored.slice(ndarray::s![rows.clone(), ..]);
                    let db = d64.slice(ndarray::s![rows.clone(), ..]);
                    let mut want: Vec<f64> = xb.t().dot(&db).iter().copied().collect();
                    want.extend(db.sum_axis(Axis(0)));
                    want.push(
                        loss.slice(ndarray::s![rows])
                            .iter()
                            .map(|&v| f64::from(v))
                            .sum(),
                    );
                    assert_close(
                        &format!("partials block {b} m={m} n={n} K={k} on {}", ctx.describe()),
                        &f64s(part),
                        &want,
                        1e-4,
                        1e-4,
                    );
                }
            }
        }
    }
}

#[test]
fn gather_copies_stored_rows_exactly() {
    // n = 7: with f16 and u8 a word holds parts of two rows, in the chunk and in the batch.
    for storage in COMPACT {
        let ctx = open(KernelVariant::Register, false, storage);
        let (m, n) = (41, 7);
        let x = normal(m, n, 5.0, 31);
        let y = labels(m, 3, 32);
        let w: Vec<f32> = (0..m).map(|i| i as f32 * 0.5).collect();
        let idx: Vec<u32> = vec![40, 0, 3, 3, 17, 39, 1, 22, 5];
        let (gx, gl, gw) = single::gather(&ctx, x.view(), &y, &w, &idx).unwrap();
        let stored = storage.as_stored(x.view()).unwrap();
        for (b, &i) in idx.iter().enumerate() {
            let i = i as usize;
            assert_eq!(gx.row(b), stored.row(i), "{storage:?} batch row {b}");
            assert_eq!((gl[b], gw[b]), (y[i], w[i]), "{storage:?} batch row {b}");
        }
    }
}

fn fit(ctx: &GpuContext, data: &Dataset, settings: &Settings) -> Fit {
    Trainer::new(settings.clone())
        .unwrap()
        .fit(Backend::Gpu(ctx), data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
}

/// The kernels decode each stored value exactly, so training on compact X gives the same
/// bits as training on f32 storage of the stored values, full-batch and mini-batch (the
/// gather path) alike, over several chunks.
#[test]
fn training_on_compact_x_equals_f32_training_on_the_stored_values() {
    let (m, n, k) = (600, 9, 4);
    let y = labels(m, k, 41);
    for storage in COMPACT {
        // u8 gets pixel-like integers (step 1); f16 gets real values it rounds.
        let x = match storage {
            XStorage::U8 => pixels(m, n, 42).mapv(|v| v - 100.0),
            _ => normal(m, n, 1.0, 42),
        };
        let stored = storage.as_stored(x.view()).unwrap();
        let compact = open(KernelVariant::Register, false, storage);
        let plain = open(KernelVariant::Register, false, XStorage::F32);
        for (optimizer, batch_size) in [(Optimizer::Gd, None), (Optimizer::Adam, Some(50))] {
            let settings = Settings {
                epochs: 3,
                learning_rate: if batch_size.is_some() { 1e-3 } else { 1e-4 },
                optimizer,
                batch_size,
                chunk_rows: Some(250),
                seed: 5,
                ..Settings::default()
            };
            let got = fit(
                &compact,
                &Dataset::new(x.clone(), &y, k).unwrap(),
                &settings,
            );
            let want = fit(
                &plain,
                &Dataset::new(stored.clone(), &y, k).unwrap(),
                &settings,
            );
            assert_eq!(
                weight_bits(&got),
                weight_bits(&want),
                "{storage:?} {optimizer}: compact X trained differently from its stored values"
            );
            assert!(got.history.last().unwrap().loss < got.history[0].loss);
        }
    }
}

/// Streamed compact X (encoded chunk by chunk as it is read) gives the resident result
/// bit for bit.
#[test]
fn streamed_compact_x_equals_resident() {
    let data = clusters(20000, 31, 5, 0.5, 51);
    let file = mapped(&data, "storage");
    let (theta, bias) = (normal(31, 5, 0.2, 52), normal_vec(5, 0.2, 53));
    for storage in COMPACT {
        let roomy = open(KernelVariant::Register, false, storage);
        let mut resident = GpuOracle::new(&roomy, &data, Some(300)).unwrap();
        let want = resident
            .loss_and_gradient(theta.view(), bias.view(), 1e-3)
            .unwrap();

        let tight = open(KernelVariant::Register, false, storage);
        // Below X's 620 KB as u8 (and its labels and weights), above two slots of 300 rows.
        tight.set_memory_budget(Some(500 * 1024));
        let mut streamed = GpuOracle::new(&tight, &file, Some(300)).unwrap();
        assert!(streamed.is_streamed(), "{storage:?}: X fit the budget?");
        let got = streamed
            .loss_and_gradient(theta.view(), bias.view(), 1e-3)
            .unwrap();
        assert_eq!(got.loss.to_bits(), want.loss.to_bits(), "{storage:?} loss");
        assert_eq!(got.theta, want.theta, "{storage:?} ∇Θ");
        assert_eq!(got.bias, want.bias, "{storage:?} ∇b");
    }
}

#[test]
fn f16_storage_names_the_value_it_cannot_hold() {
    let mut x = normal(20, 6, 1.0, 61);
    x[[13, 4]] = 1.0e5;
    let data = Dataset::new(x.clone(), &labels(20, 3, 62), 3).unwrap();
    let ctx = open(KernelVariant::Register, false, XStorage::F16);
    match GpuOracle::new(&ctx, &data, None) {
        Err(e @ Error::OutOfStorageRange { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("row 14, column 5") && text.contains("f16"),
                "{text}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a value of 1e5 was stored as f16"),
    }
    assert!(XStorage::F16.check(&data).is_err());
    assert!(XStorage::U8.check(&data).is_ok());
    // u8 holds any range, at a coarser step.
    let u8 = open(KernelVariant::Register, false, XStorage::U8);
    assert!(GpuOracle::new(&u8, &data, None).is_ok());
}

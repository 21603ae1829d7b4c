//! The accuracy cost of compact storage of X on the digits data: full-batch L-BFGS to
//! max|∇J| ≤ 1e-6 with X stored as f32, f16 and u8, on the features / 16 (values k/16,
//! exact in f16, rounded to a 1/255 grid in u8), on the raw pixel counts 0–16 (exact in
//! both), and on the features / 16 plus seeded N(0, 0.05²) noise (continuous values, which
//! both round). For each it reports the objective J of the trained model on the true f32 features
//! (the f64 reference), its gap to the f32-trained model's J, the training accuracy, and the
//! test accuracy of a model trained on a seeded 80% and scored on the other 20%.
//!
//! Run with `cargo run --release --example x_storage`.

use std::ops::ControlFlow;

use softmax_regression::gpu::XStorage;
use softmax_regression::{
    AdapterRequest, Backend, CpuOracle, Dataset, GpuContext, Model, Optimizer, Oracle, Settings,
    SplitMix64, Trainer,
};

fn train(ctx: &GpuContext, data: &Dataset, l2: f64) -> Result<Model, Box<dyn std::error::Error>> {
    let settings = Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 2000,
        tol: 1e-6,
        l2,
        ..Settings::default()
    };
    let fit = Trainer::new(settings.clone())?.fit(Backend::Gpu(ctx), data, None, None, |_| {
        ControlFlow::Continue(())
    })?;
    Ok(fit.model)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scaled = softmax_regression::datasets::digits()?;
    let raw = Dataset::new(scaled.x()?.mapv(|v| v * 16.0), scaled.labels(), 10)?;
    let mut rng = SplitMix64::new(16);
    let noisy = Dataset::new(
        scaled.x()?.mapv(|v| v + (0.05 * rng.normal()) as f32),
        scaled.labels(),
        10,
    )?;
    let storages = [XStorage::F32, XStorage::F16, XStorage::U8];
    let contexts: Vec<GpuContext> = storages
        .iter()
        .map(|&x_storage| {
            GpuContext::new(&AdapterRequest {
                x_storage,
                ..AdapterRequest::default()
            })
        })
        .collect::<Result<_, _>>()?;
    println!("adapter: {}", contexts[0].describe());
    println!(
        "{:<14} {:>6} {:>7} {:>16} {:>12} {:>10} {:>9}",
        "features", "λ", "storage", "J (f32 X)", "J − J(f32)", "train acc", "test acc"
    );
    for (name, data) in [
        ("x / 16", &scaled),
        ("raw 0–16", &raw),
        ("x / 16 + noise", &noisy),
    ] {
        let (fit_part, test_part) = data.split(0.2, 0)?;
        for l2 in [1e-3, 1e-4] {
            let mut reference = None;
            for (storage, ctx) in storages.iter().zip(&contexts) {
                let model = train(ctx, data, l2)?;
                // J on the true features, in f64, whatever X was stored as for training.
                let j = CpuOracle::new(data)?
                    .loss_and_gradient(model.theta(), model.bias(), l2)?
                    .loss;
                let base = *reference.get_or_insert(j);
                let train_acc = model.evaluate(Backend::Cpu, data)?.accuracy;
                let held = train(ctx, &fit_part, l2)?;
                let test_acc = held.evaluate(Backend::Cpu, &test_part)?.accuracy;
                println!(
                    "{name:<14} {l2:>6.0e} {:>7} {j:>16.12} {:>+12.2e} {train_acc:>10.4} {test_acc:>9.4}",
                    storage.name(),
                    j - base,
                );
            }
        }
    }
    Ok(())
}

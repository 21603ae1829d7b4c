//! The main job: full-batch gradient descent on the digits data (features / 16, λ = 1e-3)
//! with the GPU oracle, then the result against the optimum J* = 0.261864547218 from
//! ../shared/data/README.md and a seeded 20% hold-out's accuracy.

use std::io::Read;
use std::ops::ControlFlow;

use ndarray::Array2;
use softmax_regression::{Backend, Dataset, GpuContext, Settings, Trainer};

fn digits() -> Result<Dataset, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/digits.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?)
        .read_to_string(&mut text)?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let values = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<Vec<_>, _>>()?;
        let (label, features) = values.split_last().ok_or("empty row")?;
        x.extend(features.iter().map(|v| v / 16.0));
        y.push(*label as u32);
    }
    let m = y.len();
    Ok(Dataset::new(
        Array2::from_shape_vec((m, x.len() / m), x)?,
        &y,
        10,
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = digits()?;
    let ctx = GpuContext::from_env()?;
    println!("adapter: {}", ctx.describe());
    let (l2, optimum) = (1e-3, 0.261864547218);
    let settings = Settings {
        epochs: 2000,
        learning_rate: 1.0,
        l2,
        ..Settings::default()
    };
    let fit = Trainer::new(settings.clone())?.fit(Backend::Gpu(&ctx), &data, None, None, |r| {
        if r.epoch % 200 == 0 {
            println!(
                "epoch {:>5}  J = {:.9}  max|∇J| = {:.2e}  ({:.1} s)",
                r.epoch, r.loss, r.grad_max_norm, r.elapsed
            );
        }
        ControlFlow::Continue(())
    })?;
    let last = fit.history.last().ok_or("no epochs")?;
    println!(
        "all 1797 rows, λ = {l2}: J = {:.9}, J* = {optimum}, relative gap {:.2e}",
        last.loss,
        (last.loss - optimum) / optimum
    );
    let metrics = fit.model.evaluate(Backend::Gpu(&ctx), &data)?;
    println!(
        "training accuracy {:.4} (reference optimum: 0.9789)",
        metrics.accuracy
    );

    let (train, test) = data.split(0.2, 0)?;
    let fit = Trainer::new(settings)?.fit(Backend::Gpu(&ctx), &train, None, None, |_| {
        ControlFlow::Continue(())
    })?;
    let test_metrics = fit.model.evaluate(Backend::Gpu(&ctx), &test)?;
    println!(
        "seeded 80/20 split: test accuracy {:.4}, test log-loss {:.4}",
        test_metrics.accuracy, test_metrics.log_loss
    );
    Ok(())
}

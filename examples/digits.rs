//! Reaching the exact optimum: full-batch L-BFGS with the GPU oracle on the digits data
//! (features / 16, all 1797 rows) for the three λ of ../shared/data/README.md, each
//! compared with its reference optimum J*.

use std::ops::ControlFlow;

use softmax_regression::{Backend, GpuContext, Optimizer, Settings, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = softmax_regression::datasets::digits()?;
    let ctx = GpuContext::from_env()?;
    println!("adapter: {}", ctx.describe());
    for (l2, optimum) in [
        (1e-2, 0.738514081875),
        (1e-3, 0.261864547218),
        (1e-4, 0.087345742989),
    ] {
        let settings = Settings {
            optimizer: Optimizer::Lbfgs,
            epochs: 1000,
            tol: 1e-6,
            l2,
            ..Settings::default()
        };
        let fit =
            Trainer::new(settings.clone())?.fit(Backend::Gpu(&ctx), &data, None, None, |_| {
                ControlFlow::Continue(())
            })?;
        let last = fit.history.last().ok_or("no iterations")?;
        let accuracy = fit.model.evaluate(Backend::Gpu(&ctx), &data)?.accuracy;
        println!(
            "λ = {l2:e}: J = {:.12}, J* = {optimum}, relative gap {:+.1e}, training accuracy {accuracy:.4}, {:.2} s; {}",
            last.loss,
            (last.loss - optimum) / optimum,
            last.elapsed,
            fit.summary(&settings)
        );
    }
    Ok(())
}

//! GPU faults surface as typed errors with a hint, never as a panic or a hang: a problem
//! over the device's buffer limits, a memory budget too small for the data, and a device
//! that was lost. An allocation that fails is retried with smaller chunks before giving up.
//! (Every wait is bounded by the context's timeout too; whether a software driver's work is
//! still running when the wait starts depends on the driver, so that path has no test.)

mod common;

use common::{assert_close, clusters, normal, normal_vec};
use softmax_regression::{
    AdapterRequest, CpuOracle, Dataset, Error, GpuContext, GpuOracle, Oracle,
};

fn fresh(request: AdapterRequest) -> GpuContext {
    GpuContext::new(&request).unwrap_or_else(|e| panic!("no GPU adapter: {e}"))
}

#[test]
fn parameters_over_the_buffer_limit_are_a_typed_error() {
    let ctx = fresh(AdapterRequest::default());
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let n = 4096;
    let k = (limit / (4 * n as u64)) as usize + 16;
    let data = Dataset::new(normal(1, n, 1.0, 1), &[0], k).unwrap();
    match GpuOracle::new(&ctx, &data, None) {
        Err(Error::OutOfMemory { context }) => {
            assert!(context.contains("buffer limit"), "{context}");
            let message = Error::OutOfMemory { context }.to_string();
            assert!(message.contains("try a smaller"), "{message}");
        }
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("{n} × {k} parameters fit a {limit}-byte buffer limit?"),
    }
}

#[test]
fn a_failed_allocation_is_retried_with_smaller_chunks() {
    let ctx = fresh(AdapterRequest::default());
    let data = clusters(3000, 40, 7, 0.5, 4);
    let theta = normal(40, 7, 0.1, 5);
    let bias = normal_vec(7, 0.1, 6);
    // Unconstrained: one chunk; note its peak.
    ctx.reset_memory_peak();
    let whole = GpuOracle::new(&ctx, &data, None).unwrap();
    let roomy = ctx.memory_peak();
    assert_eq!(whole.chunk_plan().chunks, 1);
    drop(whole);
    // A budget just under that peak makes the first plan fail; the retry with smaller
    // chunks (smaller logits and partials scratch) fits and still computes the gradient.
    let budget = roomy - 1;
    ctx.set_memory_budget(Some(budget));
    ctx.reset_memory_peak();
    let mut oracle = GpuOracle::new(&ctx, &data, None).expect("smaller chunks fit the budget");
    assert!(oracle.chunk_plan().chunks > 1, "{:?}", oracle.chunk_plan());
    let got = oracle
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    assert!(
        ctx.memory_peak() <= budget,
        "{} > {budget}",
        ctx.memory_peak()
    );
    let want = CpuOracle::new(&data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    assert_close("loss", &[got.loss], &[want.loss], 0.0, 1e-6);
    assert_close(
        "gradient",
        &got.theta.iter().copied().collect::<Vec<_>>(),
        &want.theta.iter().copied().collect::<Vec<_>>(),
        1e-6,
        1e-4,
    );
}

#[test]
fn a_budget_too_small_for_the_model_and_one_row_is_a_typed_error() {
    let ctx = fresh(AdapterRequest {
        memory_budget: Some(2 * 1024),
        ..AdapterRequest::default()
    });
    // 40 × 5 + 5 parameters: w, g and two moment buffers alone need 3.2 KiB.
    let data = clusters(2000, 40, 5, 0.5, 4);
    match GpuOracle::new(&ctx, &data, None) {
        Err(e @ Error::BudgetTooSmall { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("budget of 2.0 KiB") && message.contains("--max-gpu-memory"),
                "{message}"
            )
        }
        Err(e) => panic!("expected BudgetTooSmall, got {e}"),
        Ok(_) => panic!("the model fit a 2 KiB budget?"),
    }
    assert_eq!(ctx.memory_in_use(), 0, "a failed plan kept buffers");
}

#[test]
fn a_lost_device_is_a_typed_error() {
    let ctx = fresh(AdapterRequest::default());
    let data = clusters(500, 10, 3, 0.5, 4);
    let mut oracle = GpuOracle::new(&ctx, &data, None).unwrap();
    let (theta, bias) = (normal(10, 3, 0.1, 1), normal_vec(3, 0.1, 2));
    oracle
        .loss_and_gradient(theta.view(), bias.view(), 0.0)
        .unwrap();
    ctx.destroy_device();
    match oracle.loss_and_gradient(theta.view(), bias.view(), 0.0) {
        Err(Error::DeviceLost { message }) => assert!(!message.is_empty()),
        Err(e) => panic!("expected DeviceLost, got {e}"),
        Ok(_) => panic!("a destroyed device computed a gradient"),
    }
}

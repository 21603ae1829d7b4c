//! Prints the adapter the environment selects (what the tests will run on), or fails
//! with the reason there is none.

fn main() -> std::process::ExitCode {
    match softmax_regression::GpuContext::from_env() {
        Ok(ctx) => {
            let l = ctx.limits();
            println!(
                "adapter: {} (max storage binding {} MiB, max buffer {} MiB)",
                ctx.describe(),
                l.max_storage_buffer_binding_size >> 20,
                l.max_buffer_size >> 20
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `info`: the adapters wgpu finds, their limits, and what `--backend auto` picks.

use std::io::Write;

use serde_json::json;
use softmax_regression::AdapterRequest;

use crate::CliResult;
use crate::args::{BackendArg, InfoArgs, XStorageArg};
use crate::engine::choose_engine;

pub fn info(a: InfoArgs) -> CliResult<()> {
    let (adapters, pick) = softmax_regression::gpu::list_adapters(&AdapterRequest::default());
    if a.json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "index": i,
                    "name": s.name,
                    "backend": format!("{:?}", s.backend),
                    "device_type": format!("{:?}", s.device_type),
                    "driver": s.driver,
                    "compute": s.compute,
                    "auto": pick == Some(i),
                    "max_storage_buffer_binding_size": s.limits.max_storage_buffer_binding_size,
                    "max_buffer_size": s.limits.max_buffer_size,
                    "max_compute_workgroups_per_dimension": s.limits.max_compute_workgroups_per_dimension,
                    "max_compute_invocations_per_workgroup": s.limits.max_compute_invocations_per_workgroup,
                    "max_compute_workgroup_storage_size": s.limits.max_compute_workgroup_storage_size,
                })
            })
            .collect();
        outln!("{}", json!({ "adapters": list }));
        return Ok(());
    }
    if adapters.is_empty() {
        outln!(
            "no adapters found; on Linux without a GPU install mesa-vulkan-drivers, or use WGPU_BACKEND=gl"
        );
    }
    for (i, s) in adapters.iter().enumerate() {
        let l = &s.limits;
        outln!(
            "{}{i}: {} ({:?}, {:?}){}",
            if pick == Some(i) { "* " } else { "  " },
            s.name,
            s.backend,
            s.device_type,
            if s.compute {
                ""
            } else {
                " — no compute shaders"
            }
        );
        outln!("    driver: {}", s.driver);
        outln!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroups ≤ {} per dimension, ≤ {} invocations, {} KiB workgroup memory",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size >> 10
        );
    }
    let engine = choose_engine(BackendArg::Auto, XStorageArg::F32, None)?;
    match (&engine.why, pick.is_some()) {
        (Some(why), _) if !engine.is_gpu() => {
            outln!("--backend auto trains on the CPU engine here: {why}")
        }
        (_, true) => outln!(
            "* = picked by --backend auto; `train --devices 0,1` trains on the numbered adapters at once"
        ),
        _ => {}
    }
    Ok(())
}

//! Each kernel run on its own, on arrays from the host: what the kernel tests compare
//! against the CPU reference, and what the per-kernel benchmarks time. Training goes
//! through [`crate::GpuOracle`] and [`crate::Trainer`], which keep data on the device.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::context::DeviceBuffer;
use crate::gpu::kernels::{
    GatherDims, GradientDims, LogitsDims, ReduceDims, SoftmaxDims, UpdateDims, UpdateEntry,
};
use crate::gpu::storage::XCodec;
use crate::step::{Step, StepDims};

fn std_slice<'a>(a: &'a ndarray::CowArray<'a, f32, ndarray::Ix2>) -> &'a [f32] {
    a.as_slice().unwrap_or(&[])
}

/// Uploads x stored as the context stores X, with the codec it was encoded with: the
/// kernels then compute with [`XStorage::as_stored`](crate::gpu::XStorage::as_stored)`(x)`.
fn x_buffer(ctx: &GpuContext, x: ArrayView2<'_, f32>) -> Result<(DeviceBuffer, XCodec)> {
    let xs = x.as_standard_layout();
    let flat = std_slice(&xs);
    let codec = XCodec::for_values(ctx.x_storage(), x.ncols(), flat)?;
    let mut words = Vec::new();
    Ok((
        ctx.storage_buffer_with("x", codec.stored(flat, &mut words))?,
        codec,
    ))
}

fn run(
    ctx: &GpuContext,
    label: &str,
    record: impl FnOnce(&mut wgpu::ComputePass<'_>),
) -> Result<()> {
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        record(&mut pass);
    }
    ctx.submit(encoder.finish());
    ctx.check(label)
}

/// logits.wgsl: Z = XΘ + 1bᵀ for x (rows, n), theta (n, K), bias (K), with x stored as the
/// context stores X.
pub fn logits(
    ctx: &GpuContext,
    x: ArrayView2<'_, f32>,
    theta: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
) -> Result<Array2<f32>> {
    let ((rows, n), k) = (x.dim(), bias.len());
    crate::params::check_params(theta, bias, n, k)?;
    let (xb, codec) = x_buffer(ctx, x)?;
    let wb = ctx.storage_buffer_with("w", &crate::params::flatten(theta, bias))?;
    let zb = ctx.storage_buffer("z", 4 * (rows * k) as u64)?;
    let dims = LogitsDims::new(rows, n, k, codec);
    let bound = ctx.scoped("binding logits", |d| {
        ctx.kernels.logits.bind(d, &xb, &wb, &zb, dims)
    })?;
    run(ctx, "logits", |pass| {
        ctx.kernels.logits.encode(pass, &bound)
    })?;
    let z = ctx
        .read_f32(&[(&zb, 0, rows * k)], "reading logits")?
        .remove(0);
    Array2::from_shape_vec((rows, k), z).map_err(|e| Error::Gpu {
        context: "logits".into(),
        message: e.to_string(),
    })
}

/// softmax.wgsl: (w·(P − Y), per-row w·(−log P[r, y])) from logits z (rows, K), with
/// sample weights w (1 when `None`). With no labels, P and zero losses.
pub fn softmax(
    ctx: &GpuContext,
    z: ArrayView2<'_, f32>,
    labels: Option<&[u32]>,
    weights: Option<&[f32]>,
) -> Result<(Array2<f32>, Array1<f32>)> {
    let (rows, k) = z.dim();
    let zs = z.as_standard_layout();
    let lb = match labels {
        Some(l) => ctx.storage_buffer_with("labels", l)?,
        None => ctx.storage_buffer("no labels", 4)?,
    };
    let wb = match weights {
        Some(w) => ctx.storage_buffer_with("weights", w)?,
        None => ctx.storage_buffer("no weights", 4)?,
    };
    let zb = ctx.storage_buffer_with("z", std_slice(&zs))?;
    let rb = ctx.storage_buffer("row loss", 4 * rows as u64)?;
    let dims = SoftmaxDims::new(rows, k, labels.is_some(), weights.is_some());
    let bound = ctx.scoped("binding softmax", |d| {
        ctx.kernels.softmax.bind(d, [&lb, &wb, &zb, &rb], dims)
    })?;
    run(ctx, "softmax", |pass| {
        ctx.kernels.softmax.encode(pass, &bound)
    })?;
    let mut out = ctx.read_f32(&[(&zb, 0, rows * k), (&rb, 0, rows)], "reading softmax")?;
    let loss = Array1::from_vec(out.pop().unwrap_or_default());
    let p = Array2::from_shape_vec((rows, k), out.pop().unwrap_or_default()).map_err(|e| {
        Error::Gpu {
            context: "softmax".into(),
            message: e.to_string(),
        }
    })?;
    Ok((p, loss))
}

/// gradient.wgsl: per-block partials (blocks, n·K + K + 1) of Xᵀd, Σd and Σ row_loss,
/// for blocks of `rows_per_block` rows (a multiple of 16), with x stored as the context
/// stores X.
pub fn gradient_partials(
    ctx: &GpuContext,
    x: ArrayView2<'_, f32>,
    d: ArrayView2<'_, f32>,
    row_loss: ArrayView1<'_, f32>,
    rows_per_block: usize,
) -> Result<Array2<f32>> {
    let ((rows, n), k) = (x.dim(), d.ncols());
    if d.nrows() != rows || row_loss.len() != rows {
        return Err(Error::shape("d", &[rows, k], d.shape()));
    }
    if rows_per_block == 0 || !rows_per_block.is_multiple_of(16) {
        return Err(Error::setting(
            "rows_per_block",
            rows_per_block,
            "must be a positive multiple of 16",
        ));
    }
    let stride = n * k + k + 1;
    let (xb, codec) = x_buffer(ctx, x)?;
    let dims = GradientDims {
        rows: rows as u32,
        n: n as u32,
        k: k as u32,
        rows_per_block: rows_per_block as u32,
        stride: stride as u32,
        x_lo: codec.lo,
        x_step: codec.step,
        _pad: 0,
    };
    let blocks = dims.blocks() as usize;
    let ds = d.as_standard_layout();
    let db = ctx.storage_buffer_with("d", std_slice(&ds))?;
    let rb = ctx.storage_buffer_with("row loss", &row_loss.to_vec())?;
    let pb = ctx.storage_buffer("partials", 4 * (blocks * stride) as u64)?;
    let bound = ctx.scoped("binding gradient", |dev| {
        ctx.kernels.gradient.bind(dev, &xb, &db, &rb, &pb, dims)
    })?;
    run(ctx, "gradient", |pass| {
        ctx.kernels.gradient.encode(pass, &bound)
    })?;
    let p = ctx
        .read_f32(&[(&pb, 0, blocks * stride)], "reading partials")?
        .remove(0);
    Array2::from_shape_vec((blocks, stride), p).map_err(|e| Error::Gpu {
        context: "gradient".into(),
        message: e.to_string(),
    })
}

/// reduce.wgsl: `initial + Σ_p partials[p, :]` (summed in order p = 0, 1, …).
pub fn reduce(
    ctx: &GpuContext,
    partials: ArrayView2<'_, f32>,
    initial: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let (parts, len) = partials.dim();
    let ps = partials.as_standard_layout();
    let pb = ctx.storage_buffer_with("partials", std_slice(&ps))?;
    let ob = match initial {
        Some(v) => ctx.storage_buffer_with("out", v)?,
        None => ctx.storage_buffer("out", 4 * len as u64)?,
    };
    let dims = ReduceDims::new(len, parts as u32, initial.is_some());
    let bound = ctx.scoped("binding reduce", |d| {
        ctx.kernels.reduce.bind(d, &pb, &ob, dims)
    })?;
    run(ctx, "reduce", |pass| {
        ctx.kernels.reduce.encode(pass, &bound)
    })?;
    Ok(ctx.read_f32(&[(&ob, 0, len)], "reading reduce")?.remove(0))
}

/// Optimizer state after [`update`]: (w, g, m1, m2).
pub type UpdateOutput = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// update.wgsl: finalize `g = sums·inv_m + λw` (first n·K entries) then apply `step`.
#[allow(clippy::too_many_arguments)]
pub fn update(
    ctx: &GpuContext,
    step: Step,
    lr: f32,
    l2: f32,
    inv_m: f32,
    nk: usize,
    sums: &[f32],
    w: &[f32],
    m1: &[f32],
    m2: &[f32],
) -> Result<UpdateOutput> {
    let len = w.len();
    let sb = ctx.storage_buffer_with("sums", sums)?;
    let wb = ctx.storage_buffer_with("w", w)?;
    let gb = ctx.storage_buffer("g", 4 * len as u64)?;
    let m1b = ctx.storage_buffer_with("m1", m1)?;
    let m2b = ctx.storage_buffer_with("m2", m2)?;
    let entry = UpdateEntry::of_step(step);
    let dims = UpdateDims {
        len: len as u32,
        nk: nk as u32,
        inv_m,
        step: StepDims::of_step(step, lr, l2),
        ..bytemuck::Zeroable::zeroed()
    };
    let bound = ctx.scoped("binding update", |d| {
        ctx.kernels.update.bind(d, &sb, &wb, &gb, &m1b, &m2b, dims)
    })?;
    run(ctx, "update", |pass| {
        ctx.kernels
            .update
            .encode(pass, &bound, UpdateEntry::Finalize);
        ctx.kernels.update.encode(pass, &bound, entry);
    })?;
    let mut out = ctx.read_f32(
        &[(&wb, 0, len), (&gb, 0, len), (&m1b, 0, len), (&m2b, 0, len)],
        "reading update",
    )?;
    let m2 = out.pop().unwrap_or_default();
    let m1 = out.pop().unwrap_or_default();
    let g = out.pop().unwrap_or_default();
    let w = out.pop().unwrap_or_default();
    Ok((w, g, m1, m2))
}

/// Rows gathered by [`gather`]: (x, labels, weights).
pub type Gathered = (Array2<f32>, Vec<u32>, Vec<f32>);

/// gather.wgsl: rows `idx` of x (rows, n), of the labels and of the weights, with x stored
/// as the context stores X (so the rows come back as [`XStorage::as_stored`](crate::gpu::XStorage::as_stored) gives them).
pub fn gather(
    ctx: &GpuContext,
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    weights: &[f32],
    idx: &[u32],
) -> Result<Gathered> {
    let (rows, n) = x.dim();
    if let Some(&bad) = idx.iter().find(|&&i| i as usize >= rows) {
        return Err(Error::setting("idx", bad, format!("must be below {rows}")));
    }
    let b = idx.len();
    let (xb, codec) = x_buffer(ctx, x)?;
    let lb = ctx.storage_buffer_with("labels", labels)?;
    let wb = ctx.storage_buffer_with("weights", weights)?;
    let ib = ctx.storage_buffer_with("idx", idx)?;
    let words = codec.storage.words(b * n);
    let bx = ctx.storage_buffer("batch x", 4 * words as u64)?;
    let bl = ctx.storage_buffer("batch labels", 4 * b as u64)?;
    let bw = ctx.storage_buffer("batch weights", 4 * b as u64)?;
    let dims = GatherDims {
        batch: b as u32,
        n: n as u32,
        has_weights: 1,
        _pad: 0,
    };
    let bound = ctx.scoped("binding gather", |d| {
        ctx.kernels
            .gather
            .bind(d, [&xb, &lb, &wb, &ib, &bx, &bl, &bw], dims)
    })?;
    run(ctx, "gather", |pass| {
        ctx.kernels.gather.encode(pass, &bound)
    })?;
    let mut out = ctx.read_f32(
        &[(&bx, 0, words), (&bl, 0, b), (&bw, 0, b)],
        "reading gather",
    )?;
    let w = out.pop().unwrap_or_default();
    // Labels and packed X come back as words read through f32.
    let mut words_of = || -> Vec<u32> {
        out.pop()
            .unwrap_or_default()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    };
    let l = words_of();
    let packed = words_of();
    let xg =
        Array2::from_shape_vec((b, n), codec.unpack(&packed, b * n)).map_err(|e| Error::Gpu {
            context: "gather".into(),
            message: e.to_string(),
        })?;
    Ok((xg, l, w))
}

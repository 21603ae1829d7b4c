//! Putting a problem on the device: planning its buffers within the device's limits,
//! uploading or preparing to stream X, and binding every chunk's kernels once.

use super::sparse;
use super::*;

/// The range of every value of X (for fitting a compact storage's codec).
pub(super) fn scan(x: &Rows<'_>) -> Result<XRange> {
    match x {
        Rows::View(view) => Ok(XRange::of_values(
            view.as_standard_layout().as_slice().unwrap_or(&[]),
        )),
        Rows::Shared(source) => XRange::of_source(source.as_ref()),
        Rows::Sparse(csr) => XRange::of_source(csr.as_ref()),
    }
}

/// X's chunks on the device and, when streamed, the stream's state.
struct Placed {
    xs: Vec<DeviceBuffer>,
    sparse_xs: Vec<SparseBuffers>,
    /// A sparse X's chunk shapes.
    shapes: Vec<SparseShape>,
    stream: Option<RefCell<Stream>>,
}

impl<'c> DeviceChunks<'c> {
    /// How X's rows are cut into chunks: by rows (dense), or by rows and stored values
    /// (sparse).
    pub(super) fn plan(
        x: &Rows<'_>,
        k: usize,
        codec: XCodec,
        limits: &wgpu::Limits,
        chunk_rows: Option<usize>,
    ) -> Result<ChunkPlan> {
        match x {
            Rows::Sparse(csr) => sparse::sparse_plan(csr, k, limits, chunk_rows),
            _ => {
                let (m, n) = x.dim();
                ChunkPlan::new(m, n, k, codec.storage, limits, chunk_rows)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn allocate(
        ctx: &'c GpuContext,
        x: &Rows<'_>,
        codec: XCodec,
        (labels, weights): (Option<&[u32]>, Option<&[f32]>),
        (k, models): (usize, usize),
        chunk_rows: Option<usize>,
        batch_capacity: Option<usize>,
        streamed: bool,
    ) -> Result<Self> {
        let (m, n) = x.dim();
        let plan = Self::plan(x, k, codec, ctx.limits(), chunk_rows)?;
        let (len, stride) = (n * k + k, n * k + k + 1);
        let max_blocks = check_limits(ctx, n, k, stride, matches!(x, Rows::Sparse(_)))?;
        let batch_capacity = batch_capacity.map(|b| b.min(plan.chunk_rows));
        let scratch_rows = plan.chunk_rows.max(batch_capacity.unwrap_or(0));
        // The sparse kernels write one block of partials per chunk.
        let partial_blocks = match x {
            Rows::Sparse(_) => 1,
            _ => gradient_dims(&ctx.kernels.gradient, scratch_rows, n, k, max_blocks, codec)
                .blocks() as u64,
        };

        let w = ctx.storage_buffer("parameters w", 4 * len as u64)?;
        let g = ctx.storage_buffer("gradient g", 4 * len as u64)?;
        let m1 = ctx.storage_buffer("optimizer state m1", 4 * len as u64)?;
        let m2 = ctx.storage_buffer("optimizer state m2", 4 * len as u64)?;
        let sums = ctx.storage_buffer("reduced sums", 4 * stride as u64)?;
        let z = ctx.storage_buffer("logits z", 4 * (scratch_rows * k) as u64)?;
        // One loss per row and model, laid out (rows, models).
        let row_loss = ctx.storage_buffer("row losses", 4 * (scratch_rows * models) as u64)?;
        let loss_sums = match models {
            1 => None,
            _ => Some(ctx.storage_buffer("loss sums per model", 4 * models as u64)?),
        };
        let partials =
            ctx.storage_buffer("gradient partials", 4 * stride as u64 * partial_blocks)?;

        let kernels = &ctx.kernels;
        let placed = match x {
            Rows::Sparse(csr) if streamed => sparse_slots(ctx, csr, &plan)?,
            Rows::Sparse(csr) => resident_sparse(ctx, csr, &plan)?,
            Rows::Shared(source) if streamed => {
                stream_slots(ctx, source, codec.storage.bytes(plan.chunk_rows * n))?
            }
            _ => Placed {
                xs: resident_chunks(ctx, x, &plan, codec)?,
                sparse_xs: Vec::new(),
                shapes: Vec::new(),
                stream: None,
            },
        };
        let max_pieces = placed.shapes.iter().map(|s| s.max_pieces()).max();
        let scratch = match max_pieces {
            Some(pieces) => {
                Some(ctx.storage_buffer("sparse piece partials", 4 * (pieces * k) as u64)?)
            }
            None => None,
        };
        let Placed {
            xs,
            sparse_xs,
            shapes,
            stream,
        } = placed;
        let common = ChunkCommon {
            w: &w,
            z: &z,
            row_loss: &row_loss,
            partials: &partials,
            sums: &sums,
            labels,
            weights,
            m,
            n,
            k,
            models,
            loss_sums: loss_sums.as_ref(),
            stride,
            max_blocks,
            codec,
            scratch: scratch.as_ref(),
        };
        let mut chunks = Vec::with_capacity(plan.chunks);
        for c in 0..plan.chunks {
            let slot = if stream.is_some() { c % 2 } else { c };
            let x = match shapes.get(c) {
                Some(&shape) => ChunkX::Sparse(&sparse_xs[slot], shape),
                None => ChunkX::Dense(&xs[slot]),
            };
            chunks.push(common.bind_chunk(ctx, &plan, c, slot, x)?);
        }
        let update_dims = UpdateDims {
            len: len as u32,
            nk: (n * k) as u32,
            inv_m: 1.0 / m as f32,
            ..bytemuck::Zeroable::zeroed()
        };
        let update_full = ctx.scoped("binding the update", |device| {
            kernels
                .update
                .bind(device, &sums, &w, &g, &m1, &m2, update_dims)
        })?;

        let (readback, overhead) = readback_and_overhead(
            ctx,
            &plan,
            (len, k, models),
            batch_capacity,
            !sparse_xs.is_empty(),
        )?;
        let mut problem = DeviceChunks {
            ctx,
            m,
            n,
            k,
            models,
            slots: models,
            loss_sums,
            plan,
            chunks,
            xs,
            sparse_xs,
            stream,
            w,
            g,
            sums,
            z,
            row_loss,
            update_full,
            batch: None,
            max_blocks,
            partials,
            m1,
            m2,
            has_weights: weights.is_some(),
            codec,
            _overhead: overhead,
            readback,
        };
        if let (Some(capacity), Some(labels)) = (batch_capacity, labels) {
            let sparse = match x {
                Rows::Sparse(csr) => Some((csr, labels, weights)),
                _ => None,
            };
            problem.batch = Some(problem.bind_batch(capacity, update_dims, sparse)?);
        }
        Ok(problem)
    }
}

/// Checks that the device can dispatch the kernels over n features and K classes and hold
/// one block of gradient partials; returns how many blocks of partials one buffer holds.
fn check_limits(ctx: &GpuContext, n: usize, k: usize, stride: usize, sparse: bool) -> Result<u64> {
    // The dense kernels dispatch one workgroup per 16 features or classes along one grid
    // dimension; the sparse ones fold theirs into two.
    let max_dim = ctx.limits().max_compute_workgroups_per_dimension as usize;
    let over = |count: usize| count.div_ceil(TILE as usize) > max_dim;
    if (!sparse && over(n)) || over(k) {
        return Err(Error::OutOfMemory {
            context: format!(
                "planning dispatches: {n} features × {k} classes is over the device's limit of {} per dimension",
                16 * max_dim
            ),
        });
    }
    let max_bytes = binding_limit(ctx.limits());
    let max_blocks = max_bytes / (4 * stride as u64);
    if max_blocks == 0 {
        return Err(Error::OutOfMemory {
            context: format!(
                "allocating the gradient: {n}×{k} parameters are over the device's {max_bytes}-byte buffer limit"
            ),
        });
    }
    Ok(max_blocks)
}

/// The two chunk-sized slots a streamed X takes turns in, and the stream's state.
fn stream_slots(ctx: &GpuContext, source: &Arc<dyn ChunkSource>, bytes: u64) -> Result<Placed> {
    let xs = vec![
        ctx.storage_buffer("x slot 0", bytes)?,
        ctx.storage_buffer("x slot 1", bytes)?,
    ];
    let stream = new_stream(ctx, Arc::clone(source), 2 * bytes, None)?;
    Ok(Placed {
        xs,
        sparse_xs: Vec::new(),
        shapes: Vec::new(),
        stream: Some(RefCell::new(stream)),
    })
}

/// A stream's state, with wgpu's staging of the two slots' uploads (`staging` bytes)
/// reserved against the budget.
fn new_stream(
    ctx: &GpuContext,
    source: Arc<dyn ChunkSource>,
    staging: u64,
    sparse: Option<(Arc<Csr>, Vec<SparseShape>, SparseHost)>,
) -> Result<Stream> {
    Ok(Stream {
        source,
        holds: [None, None],
        last_use: [None, None],
        host: Vec::new(),
        words: Vec::new(),
        sparse,
        _staging: ctx.reservation("x upload staging", staging)?,
    })
}

/// A sparse X streamed: two slots able to hold any of its chunks.
fn sparse_slots(ctx: &GpuContext, csr: &Arc<Csr>, plan: &ChunkPlan) -> Result<Placed> {
    let shapes = sparse::shapes(csr, plan);
    let slot = sparse::slot_shape(&shapes);
    let sparse_xs = vec![
        SparseBuffers::slot(ctx, slot, "x slot 0")?,
        SparseBuffers::slot(ctx, slot, "x slot 1")?,
    ];
    let stream = new_stream(
        ctx,
        Arc::clone(csr) as Arc<dyn ChunkSource>,
        2 * slot.bytes(),
        Some((Arc::clone(csr), shapes.clone(), SparseHost::default())),
    )?;
    Ok(Placed {
        xs: Vec::new(),
        sparse_xs,
        shapes,
        stream: Some(RefCell::new(stream)),
    })
}

/// Every chunk of a resident sparse X in buffers of its own, uploaded once.
fn resident_sparse(ctx: &GpuContext, csr: &Csr, plan: &ChunkPlan) -> Result<Placed> {
    let mut host = SparseHost::default();
    let mut sparse_xs = Vec::with_capacity(plan.chunks);
    let mut shapes = Vec::with_capacity(plan.chunks);
    for c in 0..plan.chunks {
        let start = c * plan.chunk_rows;
        let shape = host.build(csr, start, plan.rows_in(c, csr.n_rows()));
        let label = format!("x chunk {c}");
        sparse_xs.push(SparseBuffers::upload(
            ctx, csr, start, &host, shape, &label,
        )?);
        shapes.push(shape);
    }
    Ok(Placed {
        xs: Vec::new(),
        sparse_xs,
        shapes,
        stream: None,
    })
}

/// Every chunk of a resident X in its own buffer, uploaded once in the storage format.
fn resident_chunks(
    ctx: &GpuContext,
    x: &Rows<'_>,
    plan: &ChunkPlan,
    codec: XCodec,
) -> Result<Vec<DeviceBuffer>> {
    let (m, n) = x.dim();
    let mut xs = Vec::with_capacity(plan.chunks);
    let mut host = Vec::new();
    let mut words = Vec::new();
    let x_std = match x {
        Rows::View(view) => Some(view.as_standard_layout()),
        _ => None,
    };
    let flat = x_std.as_ref().and_then(|v| v.as_slice()).unwrap_or(&[]);
    for c in 0..plan.chunks {
        let (start, rows) = (c * plan.chunk_rows, plan.rows_in(c, m));
        let values = match x {
            Rows::View(_) => &flat[start * n..(start + rows) * n],
            Rows::Shared(source) => {
                host.resize(rows * n, 0.0);
                read_rows_parallel(source.as_ref(), start, n, &mut host)?;
                &host[..]
            }
            Rows::Sparse(csr) => {
                host.resize(rows * n, 0.0);
                read_rows_parallel(csr.as_ref(), start, n, &mut host)?;
                &host[..]
            }
        };
        let label = format!("x chunk {c}");
        xs.push(ctx.storage_buffer_with(&label, codec.stored(values, &mut words))?);
    }
    Ok(xs)
}

/// What every chunk's kernels bind besides the chunk's own rows.
struct ChunkCommon<'a> {
    w: &'a DeviceBuffer,
    z: &'a DeviceBuffer,
    row_loss: &'a DeviceBuffer,
    partials: &'a DeviceBuffer,
    sums: &'a DeviceBuffer,
    labels: Option<&'a [u32]>,
    weights: Option<&'a [f32]>,
    m: usize,
    n: usize,
    /// Columns of the products (models × K).
    k: usize,
    models: usize,
    loss_sums: Option<&'a DeviceBuffer>,
    stride: usize,
    max_blocks: u64,
    codec: XCodec,
    /// The sparse kernels' piece partials (sparse X only).
    scratch: Option<&'a DeviceBuffer>,
}

/// A chunk's X on the device: dense rows, or sparse arrays of a known shape.
enum ChunkX<'a> {
    Dense(&'a DeviceBuffer),
    Sparse(&'a SparseBuffers, SparseShape),
}

impl ChunkCommon<'_> {
    /// Chunk `c`'s labels and weights uploaded, and its kernels bound to its X buffer.
    fn bind_chunk(
        &self,
        ctx: &GpuContext,
        plan: &ChunkPlan,
        c: usize,
        slot: usize,
        x: ChunkX<'_>,
    ) -> Result<Chunk> {
        let (n, k, codec, labels, weights) =
            (self.n, self.k, self.codec, self.labels, self.weights);
        let (stride, max_blocks) = (self.stride, self.max_blocks);
        let (m, kernels) = (self.m, &ctx.kernels);
        let rows = plan.rows_in(c, m);
        let start = c * plan.chunk_rows;
        let models = self.models;
        let rows_of = |what: &str| (format!("{what} chunk {c}"), start..start + rows);
        let labels_buf = upload_rows(ctx, labels, rows_of("labels"))?;
        let weights_buf = upload_rows(ctx, weights, rows_of("weights"))?;
        ctx.scoped(&format!("binding chunk {c}"), |device| {
            let gdims = gradient_dims(&kernels.gradient, rows, n, k, max_blocks, codec);
            let parts = match x {
                ChunkX::Dense(_) => gdims.blocks(),
                ChunkX::Sparse(..) => 1,
            };
            // The first chunk overwrites the sums; later ones add to them.
            let reduce = |accumulate: bool| {
                kernels.reduce.bind(
                    device,
                    self.partials,
                    self.sums,
                    ReduceDims::new(stride, parts, accumulate),
                )
            };
            let products = match x {
                ChunkX::Dense(x_buf) => Products::Dense {
                    logits: kernels.logits.bind(
                        device,
                        x_buf,
                        self.w,
                        self.z,
                        LogitsDims::new(rows, n, k, codec),
                    ),
                    gradient: kernels.gradient.bind(
                        device,
                        x_buf,
                        self.z,
                        self.row_loss,
                        self.partials,
                        gdims,
                    ),
                },
                ChunkX::Sparse(buffers, shape) => {
                    let common = SparseCommon {
                        w: self.w,
                        z: self.z,
                        row_loss: self.row_loss,
                        partials: self.partials,
                        scratch: self.scratch.unwrap_or(self.partials),
                        n,
                        k,
                    };
                    let pair = (&kernels.sparse_pieces, &kernels.sparse_segments);
                    Products::Sparse(Box::new(common.bind(device, pair, buffers, shape)))
                }
            };
            // Each model's row losses, summed over the chunk's rows in order.
            let loss_reduce = self.loss_sums.map(|sums| {
                [false, true].map(|accumulate| {
                    kernels.reduce.bind(
                        device,
                        self.row_loss,
                        sums,
                        ReduceDims::new(models, rows as u32, accumulate),
                    )
                })
            });
            // Same row blocks as the gradient kernel, so the same reductions apply.
            #[cfg(feature = "kernel-lab")]
            let fused = match x {
                ChunkX::Dense(x_buf)
                    if kernels.fused.enabled
                        && k <= FUSED_MAX_CLASSES
                        && labels.is_some()
                        && models == 1 =>
                {
                    Some(kernels.fused.bind(
                        device,
                        [x_buf, self.w, &labels_buf, &weights_buf, self.partials],
                        FusedDims {
                            rows: rows as u32,
                            n: n as u32,
                            k: k as u32,
                            rows_per_block: gdims.rows_per_block,
                            stride: gdims.stride,
                            has_weights: weights.is_some() as u32,
                            x_lo: codec.lo,
                            x_step: codec.step,
                        },
                    ))
                }
                _ => None,
            };
            Chunk {
                rows,
                slot,
                products,
                softmax: kernels.softmax.bind(
                    device,
                    [&labels_buf, &weights_buf, self.z, self.row_loss],
                    softmax_dims(rows, k, models, (labels.is_some(), weights.is_some())),
                ),
                #[cfg(feature = "kernel-lab")]
                fused,
                reduce_first: reduce(false),
                reduce_next: reduce(true),
                loss_reduce,
                labels: labels_buf,
                weights: weights_buf,
            }
        })
    }
}

/// The softmax of `rows` data rows whose products have `k` columns: `models` models of
/// k / models classes each.
pub(super) fn softmax_dims(
    rows: usize,
    k: usize,
    models: usize,
    (labels, weights): (bool, bool),
) -> SoftmaxDims {
    SoftmaxDims {
        rows: (rows * models) as u32,
        models: models as u32,
        ..SoftmaxDims::new(rows, k / models, labels, weights)
    }
}

/// The chunk's rows of per-row values (labels or weights) in a buffer of their own, or a
/// placeholder binding when there are none.
fn upload_rows<T: bytemuck::Pod>(
    ctx: &GpuContext,
    values: Option<&[T]>,
    (label, rows): (String, std::ops::Range<usize>),
) -> Result<DeviceBuffer> {
    match values {
        Some(v) => ctx.storage_buffer_with(&label, &v[rows]),
        None => ctx.storage_buffer(&format!("no {label}"), 4),
    }
}

/// The staging buffer every readback goes through, and the memory outside the crate's own
/// buffers (each kernel binding's uniform buffer, wgpu's staging of uploads) reserved
/// against the budget.
fn readback_and_overhead(
    ctx: &GpuContext,
    plan: &ChunkPlan,
    (len, k, models): (usize, usize, usize),
    batch_capacity: Option<usize>,
    sparse: bool,
) -> Result<(DeviceBuffer, Reservation)> {
    // Five bindings per chunk (nine with the sparse kernels; two more for the loss sums
    // of several models), the full-batch update, and for mini-batches one gather per chunk
    // plus five more (nine for sparse batches); uploads of w, m1 and m2 each stage `len`
    // values.
    let (per_chunk, batch) = if sparse {
        (9, 9)
    } else {
        (5, plan.chunks as u64 + 5)
    };
    let per_chunk = per_chunk + if models > 1 { 2 } else { 0 };
    let bindings = per_chunk * plan.chunks as u64 + 1 + batch_capacity.map_or(0, |_| batch);
    // Reads: (loss, g, w), (w, m1, m2), or one chunk's (z, row losses).
    let readback =
        ctx.readback_buffer(4 * ((3 * len) as u64).max((plan.chunk_rows * (k + 1)) as u64))?;
    let overhead = ctx.reservation(
        "uniform buffers and upload staging",
        bindings * UNIFORM_BYTES + 3 * 4 * len as u64,
    )?;
    Ok((readback, overhead))
}

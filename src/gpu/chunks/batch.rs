//! Mini-batches: rows gathered from the chunks into one batch buffer, then one step of
//! the optimizer on them.

use super::sparse::{self, SparseCommon};
use super::*;

impl<'c> DeviceChunks<'c> {
    pub(super) fn bind_batch(
        &self,
        capacity: usize,
        update_dims: UpdateDims,
        sparse: Option<SparseRowsOf<'_>>,
    ) -> Result<BatchSlot> {
        let (n, k) = (self.n, self.k);
        let ctx = self.ctx;
        let bl = ctx.storage_buffer("batch labels", 4 * capacity as u64)?;
        let bw = ctx.storage_buffer("batch weights", 4 * capacity as u64)?;
        let has_weights = self.has_weights as u32;
        let kernels = &ctx.kernels;
        let gdims = gradient_dims(
            &kernels.gradient,
            capacity,
            n,
            k,
            self.max_blocks,
            self.codec,
        );
        let x = match sparse {
            Some((csr, labels, weights)) => {
                BatchX::Sparse(self.sparse_batch(capacity, csr, labels, weights)?)
            }
            None => self.dense_batch(capacity, gdims, &bl, &bw)?,
        };
        let parts = match x {
            BatchX::Dense { .. } => gdims.blocks(),
            BatchX::Sparse(_) => 1,
        };
        ctx.scoped("binding the mini-batch kernels", |device| BatchSlot {
            capacity,
            x,
            softmax: kernels.softmax.bind(
                device,
                [&bl, &bw, &self.z, &self.row_loss],
                SoftmaxDims::new(0, k, true, has_weights != 0),
            ),
            reduce: kernels.reduce.bind(
                device,
                &self.partials,
                &self.sums,
                ReduceDims::new(n * k + k + 1, parts, false),
            ),
            update: kernels.update.bind(
                device,
                &self.sums,
                &self.w,
                &self.g,
                &self.m1,
                &self.m2,
                update_dims,
            ),
            labels: bl,
            weights: bw,
        })
    }

    /// Dense mini-batches: the gather of each chunk's rows into one batch buffer, and the
    /// products bound to it.
    fn dense_batch(
        &self,
        capacity: usize,
        gdims: GradientDims,
        bl: &DeviceBuffer,
        bw: &DeviceBuffer,
    ) -> Result<BatchX> {
        let (n, k) = (self.n, self.k);
        let ctx = self.ctx;
        let idx = ctx.storage_buffer("batch indices", 4 * capacity as u64)?;
        let bx = ctx.storage_buffer("batch x", self.codec.storage.bytes(capacity * n))?;
        let has_weights = self.has_weights as u32;
        let kernels = &ctx.kernels;
        ctx.scoped("binding the mini-batch gathers", |device| BatchX::Dense {
            gathers: self
                .chunks
                .iter()
                .map(|c| {
                    kernels.gather.bind(
                        device,
                        [&self.xs[c.slot], &c.labels, &c.weights, &idx, &bx, bl, bw],
                        GatherDims {
                            batch: 0,
                            n: n as u32,
                            has_weights,
                            _pad: 0,
                        },
                    )
                })
                .collect(),
            logits: kernels.logits.bind(
                device,
                &bx,
                &self.w,
                &self.z,
                LogitsDims::new(0, n, k, self.codec),
            ),
            gradient: kernels.gradient.bind(
                device,
                &bx,
                &self.z,
                &self.row_loss,
                &self.partials,
                gdims,
            ),
            idx,
        })
    }

    /// Sparse mini-batches: buffers for the arrays of any batch of at most `capacity`
    /// rows, which the host gathers and uploads each step, and the sparse kernels bound
    /// to them.
    fn sparse_batch(
        &self,
        capacity: usize,
        csr: &Arc<Csr>,
        labels: &[u32],
        weights: Option<&[f32]>,
    ) -> Result<SparseBatch> {
        let ctx = self.ctx;
        let shape = sparse::batch_shape(csr, capacity);
        let buffers = SparseBuffers::slot(ctx, shape, "batch x")?;
        let scratch = ctx.storage_buffer(
            "batch piece partials",
            4 * (shape.max_pieces() * self.k) as u64,
        )?;
        let common = SparseCommon {
            w: &self.w,
            z: &self.z,
            row_loss: &self.row_loss,
            partials: &self.partials,
            scratch: &scratch,
            n: self.n,
            k: self.k,
        };
        let kernels = (&ctx.kernels.sparse_pieces, &ctx.kernels.sparse_segments);
        let bound = ctx.scoped("binding the sparse mini-batch kernels", |device| {
            common.bind(device, kernels, &buffers, SparseShape::default())
        })?;
        Ok(SparseBatch {
            csr: Arc::clone(csr),
            labels: labels.to_vec(),
            weights: weights.map(<[f32]>::to_vec),
            host: SparseHost::default(),
            buffers,
            bound,
            _scratch: scratch,
            batch_labels: Vec::with_capacity(capacity),
            batch_weights: Vec::with_capacity(capacity),
        })
    }

    /// One mini-batch step: the rows `local` of chunk `chunk` (gathered on the device
    /// from a dense chunk, or on the host from a sparse X), their gradient (mean over the
    /// batch, + λΘ), then the optimizer step, as one submission.
    pub(crate) fn batch_step(
        &mut self,
        chunk: usize,
        local: &[u32],
        dims: StepDims,
        entry: UpdateEntry,
    ) -> Result<()> {
        let queue = &self.ctx.queue;
        let (n, k) = (self.n, self.k);
        let max_blocks = self.max_blocks;
        let rows = local.len();
        let no_slot = || Error::setting("batch_size", rows, "no mini-batch buffers were reserved");
        let capacity = self.batch.as_ref().ok_or_else(no_slot)?.capacity;
        if rows == 0 || rows > capacity || chunk >= self.chunks.len() {
            return Err(Error::setting(
                "batch_size",
                rows,
                format!("must be between 1 and {capacity}"),
            ));
        }
        let start = chunk * self.plan.chunk_rows;
        let sparse = matches!(self.batch.as_ref().map(|b| &b.x), Some(BatchX::Sparse(_)));
        if !sparse {
            self.ensure_chunk(chunk)?;
        }
        let slot = self.batch.as_mut().ok_or_else(no_slot)?;
        let parts = match &mut slot.x {
            BatchX::Dense {
                idx,
                gathers,
                logits,
                gradient,
            } => {
                queue.write_buffer(idx, 0, bytemuck::cast_slice(local));
                let g = &mut gathers[chunk];
                g.set(
                    queue,
                    GatherDims {
                        batch: rows as u32,
                        ..g.dims
                    },
                );
                logits.set(
                    queue,
                    LogitsDims {
                        rows: rows as u32,
                        ..logits.dims
                    },
                );
                let gdims = gradient_dims(
                    &self.ctx.kernels.gradient,
                    rows,
                    n,
                    k,
                    max_blocks,
                    self.codec,
                );
                gradient.set(queue, gdims);
                gdims.blocks()
            }
            BatchX::Sparse(b) => {
                let batch_rows: Vec<usize> = local.iter().map(|&l| start + l as usize).collect();
                let shape = b.host.gather(&b.csr, &batch_rows);
                b.buffers.write_gathered(queue, &b.host);
                b.bound.set_shape(queue, shape, n);
                b.batch_labels.clear();
                b.batch_labels
                    .extend(batch_rows.iter().map(|&r| b.labels[r]));
                queue.write_buffer(&slot.labels, 0, bytemuck::cast_slice(&b.batch_labels));
                if let Some(w) = &b.weights {
                    b.batch_weights.clear();
                    b.batch_weights.extend(batch_rows.iter().map(|&r| w[r]));
                    queue.write_buffer(&slot.weights, 0, bytemuck::cast_slice(&b.batch_weights));
                }
                1
            }
        };
        slot.softmax.set(
            queue,
            SoftmaxDims {
                rows: rows as u32,
                ..slot.softmax.dims
            },
        );
        slot.reduce.set(
            queue,
            ReduceDims {
                parts,
                ..slot.reduce.dims
            },
        );
        let mut ud = UpdateDims {
            step: dims,
            ..slot.update.dims
        };
        ud.inv_m = 1.0 / rows as f32;
        slot.update.set(queue, ud);

        let kernels = &self.ctx.kernels;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("mini-batch step"),
            });
        if sparse {
            // A sparse batch's gradient writes only the columns its rows touch.
            encoder.clear_buffer(&self.partials, 0, Some(4 * (n * k + k + 1) as u64));
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("mini-batch step"),
                timestamp_writes: None,
            });
            let slot = self.batch.as_ref().ok_or_else(no_slot)?;
            match &slot.x {
                BatchX::Dense {
                    gathers, logits, ..
                } => {
                    kernels.gather.encode(&mut pass, &gathers[chunk]);
                    kernels.logits.encode(&mut pass, logits);
                }
                BatchX::Sparse(b) => b.bound.encode_logits(kernels, &mut pass),
            }
            kernels.softmax.encode(&mut pass, &slot.softmax);
            match &slot.x {
                BatchX::Dense { gradient, .. } => kernels.gradient.encode(&mut pass, gradient),
                BatchX::Sparse(b) => b.bound.encode_gradient(kernels, &mut pass),
            }
            kernels.reduce.encode(&mut pass, &slot.reduce);
            kernels
                .update
                .encode(&mut pass, &slot.update, UpdateEntry::Finalize);
            kernels.update.encode(&mut pass, &slot.update, entry);
        }
        let index = self.ctx.submit(encoder.finish());
        if !sparse {
            self.used(chunk, index);
        }
        self.ctx.check("a mini-batch step")
    }
}

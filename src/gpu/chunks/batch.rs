//! Mini-batches: rows gathered from the chunks into one batch buffer, then one step of
//! the optimizer on them.

use super::*;

impl<'c> DeviceChunks<'c> {
    pub(super) fn bind_batch(&self, capacity: usize, update_dims: UpdateDims) -> Result<BatchSlot> {
        let (n, k) = (self.n, self.k);
        let ctx = self.ctx;
        let idx = ctx.storage_buffer("batch indices", 4 * capacity as u64)?;
        let bx = ctx.storage_buffer("batch x", self.codec.storage.bytes(capacity * n))?;
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
        ctx.scoped("binding the mini-batch kernels", |device| BatchSlot {
            capacity,
            gathers: self
                .chunks
                .iter()
                .map(|c| {
                    kernels.gather.bind(
                        device,
                        [&self.xs[c.slot], &c.labels, &c.weights, &idx, &bx, &bl, &bw],
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
                LogitsDims {
                    rows: 0,
                    n: n as u32,
                    k: k as u32,
                    x_lo: self.codec.lo,
                    x_step: self.codec.step,
                    _pad: [0; 3],
                },
            ),
            softmax: kernels.softmax.bind(
                device,
                [&bl, &bw, &self.z, &self.row_loss],
                SoftmaxDims {
                    rows: 0,
                    k: k as u32,
                    has_labels: 1,
                    has_weights,
                },
            ),
            gradient: kernels.gradient.bind(
                device,
                &bx,
                &self.z,
                &self.row_loss,
                &self.partials,
                gdims,
            ),
            reduce: kernels.reduce.bind(
                device,
                &self.partials,
                &self.sums,
                ReduceDims {
                    len: (n * k + k + 1) as u32,
                    parts: gdims.blocks(),
                    accumulate: 0,
                    _pad: 0,
                },
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
            idx,
        })
    }

    /// One mini-batch step: gather rows `local` of chunk `chunk`, its gradient (mean over
    /// the batch, + λΘ), then the optimizer step, as one submission.
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
        let (capacity, chunks) = self
            .batch
            .as_ref()
            .map(|slot| (slot.capacity, slot.gathers.len()))
            .ok_or_else(no_slot)?;
        if rows == 0 || rows > capacity || chunk >= chunks {
            return Err(Error::setting(
                "batch_size",
                rows,
                format!("must be between 1 and {capacity}"),
            ));
        }
        self.ensure_chunk(chunk)?;
        let slot = self.batch.as_mut().ok_or_else(no_slot)?;
        queue.write_buffer(&slot.idx, 0, bytemuck::cast_slice(local));
        let g = &mut slot.gathers[chunk];
        g.set(
            queue,
            GatherDims {
                batch: rows as u32,
                ..g.dims
            },
        );
        slot.logits.set(
            queue,
            LogitsDims {
                rows: rows as u32,
                ..slot.logits.dims
            },
        );
        slot.softmax.set(
            queue,
            SoftmaxDims {
                rows: rows as u32,
                ..slot.softmax.dims
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
        slot.gradient.set(queue, gdims);
        slot.reduce.set(
            queue,
            ReduceDims {
                parts: gdims.blocks(),
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
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("mini-batch step"),
                timestamp_writes: None,
            });
            kernels.gather.encode(&mut pass, &slot.gathers[chunk]);
            kernels.logits.encode(&mut pass, &slot.logits);
            kernels.softmax.encode(&mut pass, &slot.softmax);
            kernels.gradient.encode(&mut pass, &slot.gradient);
            kernels.reduce.encode(&mut pass, &slot.reduce);
            kernels
                .update
                .encode(&mut pass, &slot.update, UpdateEntry::Finalize);
            kernels.update.encode(&mut pass, &slot.update, entry);
        }
        let index = self.ctx.submit(encoder.finish());
        self.used(chunk, index);
        self.ctx.check("a mini-batch step")
    }
}

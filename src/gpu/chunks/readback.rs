//! Reading results back from the device: the loss, gradient and parameters, per-kernel
//! timings, and each chunk's forward pass for prediction.

use super::*;

impl<'c> DeviceChunks<'c> {
    /// Runs the full-batch gradient pass one kernel at a time, waiting after each, and
    /// returns the seconds spent in each kernel (summed over chunks), in pass order, and
    /// whether they come from GPU timestamps (else from the wall clock around each
    /// submission and its wait).
    pub(crate) fn profile_full(&self) -> Result<(Vec<(&'static str, f64)>, bool)> {
        let kernels = &self.ctx.kernels;
        let fused = self.is_fused();
        let names: &[&'static str] = if fused {
            &["fused", "reduce", "finalize"]
        } else {
            &["logits", "softmax", "gradient", "reduce", "finalize"]
        };
        let mut times: Vec<(&'static str, f64)> = names.iter().map(|&k| (k, 0.0)).collect();
        let last = times.len() - 1;
        let stamps = match self.ctx.has_timestamps() {
            true => Some((
                self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                self.ctx.query_buffer(16)?,
                self.ctx.storage_buffer("timestamp copy", 16)?,
            )),
            false => None,
        };
        let period = f64::from(self.ctx.queue.get_timestamp_period()) * 1e-9;
        let mut timed = |slot: usize, record: &dyn Fn(&mut wgpu::ComputePass<'_>)| -> Result<()> {
            let mut encoder = self.encoder(times[slot].0);
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(times[slot].0),
                    timestamp_writes: stamps.as_ref().map(|(set, _, _)| {
                        wgpu::ComputePassTimestampWrites {
                            query_set: set,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }
                    }),
                });
                record(&mut pass);
            }
            if let Some((set, resolved, copy)) = &stamps {
                encoder.resolve_query_set(set, 0..2, resolved, 0);
                encoder.copy_buffer_to_buffer(resolved, 0, copy, 0, 16);
            }
            let started = std::time::Instant::now();
            self.ctx.submit_and_wait(encoder.finish(), times[slot].0)?;
            let wall = started.elapsed().as_secs_f64();
            times[slot].1 += match &stamps {
                Some((_, _, copy)) => {
                    // Two u64 ticks, read as four 32-bit words.
                    let words: Vec<u32> = self
                        .ctx
                        .read_f32(&[(copy, 0, 4)], "reading timestamps")?
                        .concat()
                        .iter()
                        .map(|w| w.to_bits())
                        .collect();
                    let tick =
                        |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
                    tick(1).saturating_sub(tick(0)) as f64 * period
                }
                None => wall,
            };
            Ok(())
        };
        for (c, chunk) in self.chunks.iter().enumerate() {
            self.ensure_chunk(c)?;
            #[cfg(feature = "kernel-lab")]
            if let Some(f) = &chunk.fused {
                timed(0, &|p| kernels.fused.encode(p, f))?;
                timed(1, &|p| kernels.reduce.encode(p, chunk.reduce(c)))?;
                continue;
            }
            timed(0, &|p| chunk.encode_logits(kernels, p))?;
            timed(1, &|p| kernels.softmax.encode(p, &chunk.softmax))?;
            timed(2, &|p| chunk.encode_gradient(kernels, p))?;
            let reduce_slot = 3;
            timed(reduce_slot, &|p| kernels.reduce.encode(p, chunk.reduce(c)))?;
        }
        timed(last, &|p| {
            kernels
                .update
                .encode(p, &self.update_full, UpdateEntry::Finalize)
        })?;
        Ok((times, stamps.is_some()))
    }

    /// Reads back (Σ_i −log P[i, y], g, w) after a full-batch gradient pass.
    pub(crate) fn read_loss_gradient_params(&self) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let (loss_sum, mut out) =
            self.read_loss_and(&[&self.g, &self.w], bytemuck::pod_collect_to_vec::<u8, f32>)?;
        let w = out.pop().unwrap_or_default();
        let g = out.pop().unwrap_or_default();
        Ok((loss_sum, g, w))
    }

    /// Reads back the summed loss and the gradient g, without the parameters (which the
    /// caller already has), widened to f64 as they leave the staging buffer.
    pub(crate) fn read_loss_gradient(&self) -> Result<(f64, Vec<f64>)> {
        let (loss_sum, mut out) = self.read_loss_and(&[&self.g], widen_f32)?;
        Ok((loss_sum, out.pop().unwrap_or_default()))
    }

    /// With several models: each model's summed loss and the gradient g (of all models,
    /// side by side), in one readback, widened to f64.
    pub(crate) fn read_model_losses_gradient(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let Some(loss_sums) = &self.loss_sums else {
            let (loss, g) = self.read_loss_gradient()?;
            return Ok((vec![loss], g));
        };
        let mut out = self.ctx.read_via(
            Some(&self.readback),
            &[(&**loss_sums, 0, self.models), (&*self.g, 0, self.len())],
            "reading the models' losses and gradient",
            widen_f32,
        )?;
        let g = out.pop().unwrap_or_default();
        let losses = out.pop().unwrap_or_default();
        Ok((losses, g))
    }

    /// The summed loss and whole copies of `buffers` (each of `len` values), in one
    /// readback, each decoded by `decode`.
    fn read_loss_and<T: Copy + Into<f64>>(
        &self,
        buffers: &[&DeviceBuffer],
        decode: impl Fn(&[u8]) -> Vec<T>,
    ) -> Result<(f64, Vec<Vec<T>>)> {
        let mut out = self.ctx.read_via(
            Some(&self.readback),
            &self.loss_and_ranges(buffers),
            "reading the loss and gradient",
            decode,
        )?;
        let rest = out.split_off(1.min(out.len()));
        let loss_sum = out.pop().and_then(|v| v.first().copied());
        Ok((loss_sum.map_or(f64::NAN, Into::into), rest))
    }

    /// The readback ranges of the summed loss followed by whole copies of `buffers`.
    fn loss_and_ranges<'b>(
        &'b self,
        buffers: &[&'b DeviceBuffer],
    ) -> Vec<(&'b wgpu::Buffer, u64, usize)> {
        let len = self.len();
        std::iter::once((&*self.sums, len as u64, 1))
            .chain(buffers.iter().map(|&b| (&**b, 0, len)))
            .collect()
    }

    /// Runs logits and softmax chunk by chunk and hands each chunk's (row offset, z, row
    /// losses) to `each`: z holds P (no labels) or P − Y (with labels).
    pub(crate) fn forward_chunks(&self, mut each: impl FnMut(usize, &[f32], &[f32])) -> Result<()> {
        let kernels = &self.ctx.kernels;
        for (c, chunk) in self.chunks.iter().enumerate() {
            self.ensure_chunk(c)?;
            let index = self.submit_pass("forward", |pass| {
                chunk.encode_logits(kernels, pass);
                kernels.softmax.encode(pass, &chunk.softmax);
            });
            self.used(c, index);
            let out = self.ctx.read_f32_via(
                Some(&self.readback),
                &[
                    (&self.z, 0, chunk.rows * self.k),
                    (&self.row_loss, 0, chunk.rows),
                ],
                "reading predictions",
            )?;
            each(c * self.plan.chunk_rows, &out[0], &out[1]);
        }
        Ok(())
    }
}

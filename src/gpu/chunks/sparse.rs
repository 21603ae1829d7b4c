//! Sparse X on the device: each row chunk as its CSR rows and a CSC copy of the same
//! entries (with the bias column of ones appended), both cut into pieces of at most
//! [`PIECE_LEN`] entries, so that the logits gather over each row's stored values and the
//! gradient over each feature's, with no float atomics and a fixed order of sums.
//!
//! Chunks are cut by stored values as well as by rows: the chunk size is the largest whose
//! every chunk keeps its entries, pieces and logits within the device's binding limit.

use super::plan::check_requested;
use super::*;
use crate::data::Csr;
use crate::gpu::kernels::{PIECE_LEN, PieceDims, SegmentDims, SparsePieces, SparseSegments};

/// One chunk's arrays as the kernels read them, built on the host.
#[derive(Default)]
pub(super) struct SparseHost {
    /// Row pieces: piece q covers CSR entries `r_bounds[q]..r_bounds[q + 1]` of the chunk.
    r_bounds: Vec<u32>,
    /// Row r's pieces are `r_seg[r]..r_seg[r + 1]`.
    r_seg: Vec<u32>,
    /// Column pieces over the CSC entries, and column j's pieces `c_seg[j]..c_seg[j + 1]`
    /// (j = n is the bias column).
    c_bounds: Vec<u32>,
    c_seg: Vec<u32>,
    /// The CSC entries: row within the chunk and value, column by column, rows increasing.
    c_idx: Vec<u32>,
    c_val: Vec<f32>,
    /// A mini-batch's CSR entries, copied out of the matrix (empty for a chunk, whose
    /// entries are the matrix's own).
    r_idx: Vec<u32>,
    r_val: Vec<f32>,
    /// Column offsets of the CSC copy, and the next free entry of each column (scratch
    /// for the build).
    col_ptr: Vec<u32>,
    next: Vec<u32>,
    /// A mini-batch's CSC copy holds only the columns its rows touch: `c_col[s]` is the
    /// column of segment s (the last is the bias column n), built from `entries`, the
    /// batch's (column, row, value) sorted by column.
    c_col: Vec<u32>,
    entries: Vec<(u32, u32, f32)>,
}

/// The sizes of one chunk's arrays: what its buffers and dispatches need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SparseShape {
    /// Stored values of the chunk.
    nnz: usize,
    rows: usize,
    r_pieces: usize,
    c_pieces: usize,
    /// The first piece of the bias column.
    bias_piece: usize,
    /// Column segments of the CSC copy, the bias column's included: n + 1 for a chunk
    /// (every column), the touched columns + 1 for a mini-batch (`by_cols`).
    col_segments: usize,
    by_cols: bool,
}

impl SparseShape {
    /// Pieces of the larger of the two products: the rows of the piece partials scratch.
    pub(super) fn max_pieces(&self) -> usize {
        self.r_pieces.max(self.c_pieces)
    }

    /// The element-wise maximum: what a streaming slot must hold for every chunk.
    fn max(self, o: SparseShape) -> SparseShape {
        SparseShape {
            nnz: self.nnz.max(o.nnz),
            rows: self.rows.max(o.rows),
            r_pieces: self.r_pieces.max(o.r_pieces),
            c_pieces: self.c_pieces.max(o.c_pieces),
            bias_piece: 0,
            col_segments: self.col_segments.max(o.col_segments),
            by_cols: self.by_cols || o.by_cols,
        }
    }

    /// Device bytes of a chunk of this shape (a streaming slot's, for the slot shape).
    pub(super) fn bytes(&self) -> u64 {
        let words = (self.r_pieces + 1)
            + (self.rows + 1)
            + 2 * self.nnz
            + (self.c_pieces + 1)
            + (self.col_segments + 1)
            + 2 * (self.nnz + self.rows);
        4 * words as u64
    }
}

/// Appends the pieces of one compressed line of `len` entries starting at `start`.
fn push_pieces(bounds: &mut Vec<u32>, start: usize, len: usize) {
    let mut at = start;
    while at < start + len {
        bounds.push(at as u32);
        at += PIECE_LEN;
    }
}

impl SparseHost {
    /// Starts the row pieces of a new set of rows.
    fn clear_rows(&mut self) {
        self.r_bounds.clear();
        self.r_seg.clear();
        self.r_idx.clear();
        self.r_val.clear();
    }

    /// Appends the pieces of the next row, of `len` entries from entry `at`.
    fn push_row(&mut self, at: usize, len: usize) {
        self.r_seg.push(self.r_bounds.len() as u32);
        push_pieces(&mut self.r_bounds, at, len);
    }

    /// Ends the row pieces after `nnz` entries; returns the number of pieces.
    fn end_rows(&mut self, nnz: usize) -> usize {
        self.r_seg.push(self.r_bounds.len() as u32);
        let pieces = self.r_bounds.len();
        self.r_bounds.push(nnz as u32);
        pieces
    }

    /// Builds the arrays of the rows `rows` of `csr`, in that order (a mini-batch),
    /// copying their CSR entries into `r_idx` and `r_val`. The CSC copy holds only the
    /// columns the rows touch, so the work and the upload follow the batch's stored
    /// values, not n.
    pub(super) fn gather(&mut self, csr: &Csr, rows: &[usize]) -> SparseShape {
        let n = csr.n_cols();
        self.clear_rows();
        self.entries.clear();
        for (i, &r) in rows.iter().enumerate() {
            let (cols, vals) = csr.row(r);
            self.push_row(self.r_idx.len(), cols.len());
            self.r_idx.extend_from_slice(cols);
            self.r_val.extend_from_slice(vals);
            self.entries
                .extend(cols.iter().zip(vals).map(|(&j, &v)| (j, i as u32, v)));
        }
        let nnz = self.r_idx.len();
        let r_pieces = self.end_rows(nnz);

        // Stable: within a column the rows stay in batch order. The bias column n, every
        // row with x = 1, comes last.
        self.entries.sort_by_key(|e| e.0);
        self.entries
            .extend((0..rows.len() as u32).map(|i| (n as u32, i, 1.0)));
        self.c_idx.clear();
        self.c_val.clear();
        self.c_col.clear();
        self.c_seg.clear();
        self.c_bounds.clear();
        let mut start = 0;
        while start < self.entries.len() {
            let column = self.entries[start].0;
            let end = start
                + self.entries[start..]
                    .iter()
                    .take_while(|e| e.0 == column)
                    .count();
            self.c_col.push(column);
            self.c_seg.push(self.c_bounds.len() as u32);
            push_pieces(&mut self.c_bounds, start, end - start);
            start = end;
        }
        self.c_seg.push(self.c_bounds.len() as u32);
        self.c_idx.extend(self.entries.iter().map(|e| e.1));
        self.c_val.extend(self.entries.iter().map(|e| e.2));
        let c_pieces = self.c_bounds.len();
        self.c_bounds.push(self.entries.len() as u32);
        let col_segments = self.c_col.len();
        SparseShape {
            nnz,
            rows: rows.len(),
            r_pieces,
            c_pieces,
            bias_piece: self.c_seg[col_segments - 1] as usize,
            col_segments,
            by_cols: true,
        }
    }

    /// Builds the arrays of rows `start..start + count` of `csr` and returns their shape.
    /// Their CSR entries are `csr`'s own, uploaded from its arrays without a copy.
    pub(super) fn build(&mut self, csr: &Csr, start: usize, count: usize) -> SparseShape {
        let n = csr.n_cols();
        self.clear_rows();
        self.col_ptr.clear();
        self.col_ptr.resize(n + 2, 0);
        let mut nnz = 0;
        for i in 0..count {
            let cols = csr.row(start + i).0;
            self.push_row(nnz, cols.len());
            nnz += cols.len();
            for &j in cols {
                self.col_ptr[j as usize + 1] += 1;
            }
        }
        let r_pieces = self.end_rows(nnz);

        // The CSC copy by counting sort: rows are visited in order, so each column's
        // entries come out by increasing row. The bias column n holds every row.
        self.col_ptr[n + 1] = count as u32;
        for j in 0..=n {
            self.col_ptr[j + 1] += self.col_ptr[j];
        }
        let entries = nnz + count;
        self.c_idx.clear();
        self.c_idx.resize(entries, 0);
        self.c_val.clear();
        self.c_val.resize(entries, 0.0);
        self.next.clear();
        self.next.extend_from_slice(&self.col_ptr);
        for i in 0..count {
            let (cols, vals) = csr.row(start + i);
            for (&j, &v) in cols.iter().zip(vals).chain([(&(n as u32), &1.0)]) {
                let slot = &mut self.next[j as usize];
                self.c_idx[*slot as usize] = i as u32;
                self.c_val[*slot as usize] = v;
                *slot += 1;
            }
        }

        self.c_bounds.clear();
        self.c_seg.clear();
        for j in 0..=n {
            self.c_seg.push(self.c_bounds.len() as u32);
            let (a, b) = (self.col_ptr[j] as usize, self.col_ptr[j + 1] as usize);
            push_pieces(&mut self.c_bounds, a, b - a);
        }
        self.c_seg.push(self.c_bounds.len() as u32);
        let c_pieces = self.c_bounds.len();
        self.c_bounds.push(entries as u32);
        SparseShape {
            nnz,
            rows: count,
            r_pieces,
            c_pieces,
            bias_piece: self.c_seg[n] as usize,
            col_segments: n + 1,
            by_cols: false,
        }
    }
}

/// One chunk's arrays on the device (a resident chunk's own, or a streaming slot).
pub(super) struct SparseBuffers {
    r_bounds: DeviceBuffer,
    r_seg: DeviceBuffer,
    r_idx: DeviceBuffer,
    r_val: DeviceBuffer,
    c_bounds: DeviceBuffer,
    c_seg: DeviceBuffer,
    c_idx: DeviceBuffer,
    c_val: DeviceBuffer,
    /// Each column segment's column, for a mini-batch's CSC copy (a placeholder for a
    /// chunk's, which holds every column).
    c_col: DeviceBuffer,
}

impl SparseBuffers {
    /// Buffers holding `host` (rows `start..` of `csr`), uploaded at creation.
    pub(super) fn upload(
        ctx: &GpuContext,
        csr: &Csr,
        start: usize,
        host: &SparseHost,
        shape: SparseShape,
        label: &str,
    ) -> Result<Self> {
        let base = csr.indptr()[start] as usize;
        let entries = base..base + shape.nnz;
        let buffer =
            |what: &str, words: &[u32]| ctx.storage_buffer_with(&format!("{label} {what}"), words);
        Ok(SparseBuffers {
            r_bounds: buffer("row pieces", &host.r_bounds)?,
            r_seg: buffer("row segments", &host.r_seg)?,
            r_idx: buffer("column indices", &csr.indices()[entries.clone()])?,
            r_val: ctx.storage_buffer_with(&format!("{label} values"), &csr.values()[entries])?,
            c_bounds: buffer("column pieces", &host.c_bounds)?,
            c_seg: buffer("column segments", &host.c_seg)?,
            c_idx: buffer("row indices", &host.c_idx)?,
            c_val: ctx.storage_buffer_with(&format!("{label} column values"), &host.c_val)?,
            c_col: buffer("no column map", &[0])?,
        })
    }

    /// Empty buffers able to hold any chunk of at most `shape` (a streaming slot).
    pub(super) fn slot(ctx: &GpuContext, shape: SparseShape, label: &str) -> Result<Self> {
        let buffer = |what: &str, words: usize| {
            ctx.storage_buffer(&format!("{label} {what}"), 4 * words as u64)
        };
        let entries = shape.nnz + shape.rows;
        Ok(SparseBuffers {
            r_bounds: buffer("row pieces", shape.r_pieces + 1)?,
            r_seg: buffer("row segments", shape.rows + 1)?,
            r_idx: buffer("column indices", shape.nnz)?,
            r_val: buffer("values", shape.nnz)?,
            c_bounds: buffer("column pieces", shape.c_pieces + 1)?,
            c_seg: buffer("column segments", shape.col_segments + 1)?,
            c_idx: buffer("row indices", entries)?,
            c_val: buffer("column values", entries)?,
            c_col: buffer(
                "column map",
                if shape.by_cols { shape.col_segments } else { 1 },
            )?,
        })
    }

    /// Queues the upload of `host` (rows `start..` of `csr`) into these buffers.
    pub(super) fn write(
        &self,
        queue: &wgpu::Queue,
        csr: &Csr,
        start: usize,
        host: &SparseHost,
        shape: SparseShape,
    ) {
        let base = csr.indptr()[start] as usize;
        let entries = base..base + shape.nnz;
        self.write_with(
            queue,
            host,
            (&csr.indices()[entries.clone()], &csr.values()[entries]),
        );
    }

    /// Queues the upload of a mini-batch gathered by [`SparseHost::gather`].
    pub(super) fn write_gathered(&self, queue: &wgpu::Queue, host: &SparseHost) {
        self.write_with(queue, host, (&host.r_idx, &host.r_val));
    }

    fn write_with(&self, queue: &wgpu::Queue, host: &SparseHost, (idx, val): (&[u32], &[f32])) {
        let put = |buffer: &DeviceBuffer, bytes: &[u8]| {
            if !bytes.is_empty() {
                queue.write_buffer(buffer, 0, bytes);
            }
        };
        put(&self.r_bounds, bytemuck::cast_slice(&host.r_bounds));
        put(&self.r_seg, bytemuck::cast_slice(&host.r_seg));
        put(&self.r_idx, bytemuck::cast_slice(idx));
        put(&self.r_val, bytemuck::cast_slice(val));
        put(&self.c_bounds, bytemuck::cast_slice(&host.c_bounds));
        put(&self.c_seg, bytemuck::cast_slice(&host.c_seg));
        put(&self.c_idx, bytemuck::cast_slice(&host.c_idx));
        put(&self.c_val, bytemuck::cast_slice(&host.c_val));
        put(&self.c_col, bytemuck::cast_slice(&host.c_col));
    }
}

/// A sparse chunk's products bound to its buffers: the logits (row pieces, then each
/// row's pieces plus the bias into z) and the gradient partials (column pieces against d,
/// then each feature's pieces into the partials block; then the row losses).
pub(super) struct SparseBound {
    /// The shape of the arrays the kernels point at.
    shape: SparseShape,
    logits_pieces: Bound<PieceDims>,
    logits_sums: Bound<SegmentDims>,
    gradient_pieces: Bound<PieceDims>,
    gradient_sums: Bound<SegmentDims>,
    loss_pieces: Bound<PieceDims>,
    loss_sums: Bound<SegmentDims>,
}

/// What a sparse chunk's kernels bind besides its own arrays.
pub(super) struct SparseCommon<'a> {
    pub w: &'a DeviceBuffer,
    pub z: &'a DeviceBuffer,
    pub row_loss: &'a DeviceBuffer,
    pub partials: &'a DeviceBuffer,
    /// The piece partials of both products, (pieces, K).
    pub scratch: &'a DeviceBuffer,
    pub n: usize,
    pub k: usize,
}

/// The dims of the six bindings of a chunk of `shape`: logits pieces and sums, gradient
/// pieces and sums, loss pieces and sums.
fn shape_dims(
    shape: SparseShape,
    n: usize,
    k: usize,
) -> (
    PieceDims,
    SegmentDims,
    PieceDims,
    SegmentDims,
    PieceDims,
    SegmentDims,
) {
    let sums = |segs: usize, k: usize, seg_base: usize, piece_base: usize| SegmentDims {
        segments: segs as u32,
        k: k as u32,
        seg_base: seg_base as u32,
        piece_base: piece_base as u32,
        out_offset: 0,
        init_offset: 0,
        has_init: 0,
        has_cols: 0,
    };
    (
        PieceDims::new(shape.r_pieces, k, 0),
        SegmentDims {
            init_offset: (n * k) as u32,
            has_init: 1,
            ..sums(shape.rows, k, 0, 0)
        },
        PieceDims::new(shape.c_pieces, k, 0),
        SegmentDims {
            has_cols: shape.by_cols as u32,
            ..sums(shape.col_segments, k, 0, 0)
        },
        PieceDims::new(shape.c_pieces - shape.bias_piece, 1, shape.bias_piece),
        SegmentDims {
            out_offset: (n * k + k) as u32,
            ..sums(1, 1, shape.col_segments.saturating_sub(1), shape.bias_piece)
        },
    )
}

impl SparseCommon<'_> {
    pub(super) fn bind(
        &self,
        device: &wgpu::Device,
        kernels: (&SparsePieces, &SparseSegments),
        buffers: &SparseBuffers,
        shape: SparseShape,
    ) -> SparseBound {
        let (pieces, segments) = kernels;
        let b = buffers;
        let dims = shape_dims(shape, self.n, self.k);
        SparseBound {
            shape,
            logits_pieces: pieces.bind(
                device,
                [&b.r_bounds, &b.r_idx, &b.r_val, self.w, self.scratch],
                dims.0,
            ),
            logits_sums: segments.bind(
                device,
                [&b.r_seg, self.scratch, self.w, self.z, &b.c_col],
                dims.1,
            ),
            gradient_pieces: pieces.bind(
                device,
                [&b.c_bounds, &b.c_idx, &b.c_val, self.z, self.scratch],
                dims.2,
            ),
            gradient_sums: segments.bind(
                device,
                [&b.c_seg, self.scratch, self.w, self.partials, &b.c_col],
                dims.3,
            ),
            loss_pieces: pieces.bind(
                device,
                [&b.c_bounds, &b.c_idx, &b.c_val, self.row_loss, self.scratch],
                dims.4,
            ),
            loss_sums: segments.bind(
                device,
                [&b.c_seg, self.scratch, self.w, self.partials, &b.c_col],
                dims.5,
            ),
        }
    }
}

impl SparseBound {
    /// Points the kernels at arrays of another `shape` in the same buffers (the next
    /// mini-batch).
    pub(super) fn set_shape(&mut self, queue: &wgpu::Queue, shape: SparseShape, n: usize) {
        let k = self.logits_pieces.dims.k as usize;
        self.set_dims(queue, shape, n, k);
    }

    /// Products of `k` columns over the same arrays (the models of a path still running).
    pub(super) fn set_width(&mut self, queue: &wgpu::Queue, n: usize, k: usize) {
        self.set_dims(queue, self.shape, n, k);
    }

    fn set_dims(&mut self, queue: &wgpu::Queue, shape: SparseShape, n: usize, k: usize) {
        self.shape = shape;
        let dims = shape_dims(shape, n, k);
        self.logits_pieces.set(queue, dims.0);
        self.logits_sums.set(queue, dims.1);
        self.gradient_pieces.set(queue, dims.2);
        self.gradient_sums.set(queue, dims.3);
        self.loss_pieces.set(queue, dims.4);
        self.loss_sums.set(queue, dims.5);
    }

    /// z = XΘ + 1bᵀ for the chunk's rows.
    pub(super) fn encode_logits(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>) {
        kernels.sparse_pieces.encode(pass, &self.logits_pieces);
        kernels.sparse_segments.encode(pass, &self.logits_sums);
    }

    /// One block of gradient partials (Xᵀd, Σd, Σ row losses) for the chunk's rows.
    pub(super) fn encode_gradient(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>) {
        kernels.sparse_pieces.encode(pass, &self.gradient_pieces);
        kernels.sparse_segments.encode(pass, &self.gradient_sums);
        kernels.sparse_pieces.encode(pass, &self.loss_pieces);
        kernels.sparse_segments.encode(pass, &self.loss_sums);
    }
}

/// The largest chunk of rows (at most `requested` when given) whose every chunk keeps its
/// entries (with the bias column), its piece partials over K classes, its column
/// segments and its logits within the device's binding limit.
pub(super) fn sparse_plan(
    csr: &Csr,
    k: usize,
    limits: &wgpu::Limits,
    requested: Option<usize>,
) -> Result<ChunkPlan> {
    check_requested(requested)?;
    let (m, n) = (csr.n_rows(), csr.n_cols());
    let max_bytes = binding_limit(limits);
    let max_words = max_bytes / 4;
    if (n as u64 + 2) > max_words {
        return Err(Error::OutOfMemory {
            context: format!(
                "planning sparse chunks: the column offsets of {n} features are over the device's {max_bytes}-byte buffer limit"
            ),
        });
    }
    let indptr = csr.indptr();
    // Whether every chunk of `rows` rows fits, with the pieces bounded from above: a line
    // of len entries makes at most 1 + len / PIECE_LEN pieces.
    let fits = |rows: usize| {
        (0..m.div_ceil(rows)).all(|c| {
            let (a, b) = (c * rows, ((c + 1) * rows).min(m));
            let (nnz, rows) = (indptr[b] - indptr[a], (b - a) as u64);
            let entries = nnz + rows;
            let lines = |count: u64| count + entries / PIECE_LEN as u64;
            let pieces = lines(rows).max(lines(nnz.min(n as u64) + 1));
            entries <= max_words && (pieces + 1) * (k as u64) <= max_words
        })
    };
    let by_z = (max_words / k as u64).min(m.max(1) as u64) as usize;
    let mut rows = requested.map_or(by_z, |r| r.min(by_z)).max(1);
    while !fits(rows) {
        if rows == 1 {
            return Err(Error::OutOfMemory {
                context: format!(
                    "planning sparse chunks: one row's stored values and {k} classes are over the device's {max_bytes}-byte buffer limit"
                ),
            });
        }
        rows /= 2;
    }
    Ok(ChunkPlan {
        chunk_rows: rows,
        chunks: m.div_ceil(rows),
    })
}

/// Every chunk's shape, building each on the host once (a streamed X's slots and every
/// chunk's dispatches are sized from them).
pub(super) fn shapes(csr: &Csr, plan: &ChunkPlan) -> Vec<SparseShape> {
    let mut host = SparseHost::default();
    (0..plan.chunks)
        .map(|c| host.build(csr, c * plan.chunk_rows, plan.rows_in(c, csr.n_rows())))
        .collect()
}

/// The shape a streaming slot needs to hold any of `shapes`.
pub(super) fn slot_shape(shapes: &[SparseShape]) -> SparseShape {
    shapes
        .iter()
        .fold(SparseShape::default(), |acc, &s| acc.max(s))
}

/// Device bytes of every chunk held at once, from the stored values and the plan alone
/// (a bound on the pieces rather than their count), to decide between resident and
/// streamed before building any chunk.
pub(super) fn estimated_bytes(csr: &Csr, plan: &ChunkPlan) -> u64 {
    let (m, n, nnz) = (csr.n_rows() as u64, csr.n_cols() as u64, csr.nnz() as u64);
    let pieces = 2 * (m + nnz / PIECE_LEN as u64) + (n + 1) * plan.chunks as u64;
    4 * (4 * nnz + 4 * m + pieces + (n + 2) * plan.chunks as u64)
}

/// A shape that holds any mini-batch of at most `capacity` rows of `csr`: the stored
/// values of its `capacity` longest rows, and the pieces those can make.
pub(super) fn batch_shape(csr: &Csr, capacity: usize) -> SparseShape {
    let indptr = csr.indptr();
    let mut lengths: Vec<u64> = indptr.windows(2).map(|w| w[1] - w[0]).collect();
    let capacity = capacity.min(lengths.len());
    if capacity < lengths.len() {
        lengths.select_nth_unstable_by(capacity, |a, b| b.cmp(a));
    }
    let nnz = lengths[..capacity].iter().sum::<u64>() as usize;
    let entries = nnz + capacity;
    SparseShape {
        nnz,
        rows: capacity,
        r_pieces: capacity + nnz / PIECE_LEN,
        c_pieces: nnz.min(csr.n_cols()) + 1 + entries / PIECE_LEN,
        bias_piece: 0,
        col_segments: nnz.min(csr.n_cols()) + 1,
        by_cols: true,
    }
}

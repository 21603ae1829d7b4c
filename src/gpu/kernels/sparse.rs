//! The kernels of sparse row chunks: the products of pieces of stored entries
//! (shaders/sparse_pieces.wgsl) and the in-order sums of each row's or column's pieces
//! (shaders/sparse_segments.wgsl). Together they compute the logits XΘ + 1bᵀ and the
//! gradient partials Xᵀd of a chunk held as CSR plus a CSC copy; the softmax, reduce and
//! update kernels are the dense path's.

use super::*;

/// Most stored entries in one piece: rows and columns longer than this are cut, so that
/// one long row or one feature present in every row spreads over many invocations.
pub(crate) const PIECE_LEN: usize = 128;

/// `Dims` of sparse_pieces.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct PieceDims {
    pub pieces: u32,
    pub k: u32,
    pub lanes: u32,
    pub piece_base: u32,
}

impl PieceDims {
    /// `pieces` pieces from `piece_base` against a dense matrix of `k` columns.
    pub(crate) fn new(pieces: usize, k: usize, piece_base: usize) -> Self {
        PieceDims {
            pieces: pieces as u32,
            k: k as u32,
            lanes: (k as u32).next_power_of_two().min(64),
            piece_base: piece_base as u32,
        }
    }
}

/// `Dims` of sparse_segments.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SegmentDims {
    pub segments: u32,
    pub k: u32,
    pub seg_base: u32,
    pub piece_base: u32,
    pub out_offset: u32,
    pub init_offset: u32,
    pub has_init: u32,
    pub has_cols: u32,
}

/// Products of pieces of stored entries with a dense matrix (sparse_pieces.wgsl): entry
/// point `main` (the invocations of a piece over consecutive classes) on GPUs, `by_piece`
/// (one invocation per piece and 16 classes) with the register kernels of CPU adapters.
/// Each class sums the same terms in the same order in both.
pub(crate) struct SparsePieces {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    by_piece: bool,
    max_dim: u32,
}

impl SparsePieces {
    pub(super) fn new(device: &wgpu::Device, variant: KernelVariant, max_dim: u32) -> Self {
        let r = Access::Read;
        let layout = layout(
            device,
            "sparse_pieces",
            &[r, r, r, r, Access::ReadWrite, Access::Uniform],
        );
        let by_piece = variant.product_kind() == ProductKind::Register;
        let entry = if by_piece { "by_piece" } else { "main" };
        let pipeline = pipelines(device, Shader::SparsePieces, &layout, &[entry], &[]).remove(0);
        SparsePieces {
            layout,
            pipeline,
            by_piece,
            max_dim,
        }
    }

    /// [bounds (pieces + 1), idx (entries), val (entries), m (rows, K), out (pieces, K)].
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        buffers: [&wgpu::Buffer; 5],
        dims: PieceDims,
    ) -> Bound<PieceDims> {
        Bound::new(device, "sparse_pieces", &self.layout, &buffers, dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<PieceDims>) {
        let d = b.dims;
        if d.pieces == 0 {
            return;
        }
        if self.by_piece {
            let (x, y) = grid(d.pieces.div_ceil(64), self.max_dim);
            dispatch(pass, &self.pipeline, &b.group, (x, y, d.k.div_ceil(16)));
            return;
        }
        let (x, y) = grid(d.pieces.div_ceil(64 / d.lanes), self.max_dim);
        dispatch(
            pass,
            &self.pipeline,
            &b.group,
            (x, y, d.k.div_ceil(d.lanes)),
        );
    }
}

/// In-order sums of each segment's pieces (sparse_segments.wgsl).
pub(crate) struct SparseSegments {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    max_dim: u32,
}

impl SparseSegments {
    pub(super) fn new(device: &wgpu::Device, max_dim: u32) -> Self {
        let r = Access::Read;
        let layout = layout(
            device,
            "sparse_segments",
            &[r, r, r, Access::ReadWrite, r, Access::Uniform],
        );
        let pipeline = pipelines(device, Shader::SparseSegments, &layout, &["main"], &[]).remove(0);
        SparseSegments {
            layout,
            pipeline,
            max_dim,
        }
    }

    /// [seg (segments + 1), partials (pieces, K), init, out, cols].
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        buffers: [&wgpu::Buffer; 5],
        dims: SegmentDims,
    ) -> Bound<SegmentDims> {
        Bound::new(device, "sparse_segments", &self.layout, &buffers, dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<SegmentDims>) {
        let d = b.dims;
        let (x, y) = grid((d.segments * d.k).div_ceil(256), self.max_dim);
        dispatch(pass, &self.pipeline, &b.group, (x, y, 1));
    }
}

//! The kernels of sparse row chunks: the products of pieces of stored entries
//! (shaders/sparse_pieces.wgsl) and the in-order sums of each row's or column's pieces
//! (shaders/sparse_segments.wgsl). Together they compute the logits XΘ + 1bᵀ and the
//! gradient partials Xᵀd of a chunk held as CSR plus a CSC copy; the softmax, reduce and
//! update kernels are the dense path's.

use std::sync::Mutex;

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
/// point `main` (the invocations of a piece over consecutive classes) on GPUs; with the
/// register kernels of CPU adapters, `by_piece4` (one invocation per piece and up to 24
/// classes, M read as vec4s) when K is a multiple of 4 and `by_piece` (16 classes, M read
/// value by value) otherwise. Each class sums the same terms in the same order in all
/// three.
pub(crate) struct SparsePieces {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    by_piece: bool,
    /// `by_piece4` pipelines by their TILE4, compiled when a K first needs one.
    by_vec4: Mutex<Vec<(u32, wgpu::ComputePipeline)>>,
    max_dim: u32,
}

/// Most vec4s of M one `by_piece4` invocation sums (24 classes): the sums of 20 classes
/// stay in registers on a CPU adapter's 256-bit lanes, and each entry's index and value
/// are loaded once per tile.
const MAX_TILE4: u32 = 6;

/// `by_piece4`'s TILE4 for K classes: the fewest tiles of at most [`MAX_TILE4`] vec4s,
/// split evenly; `None` when K is not a multiple of 4.
fn tile4(k: u32) -> Option<u32> {
    if k == 0 || !k.is_multiple_of(4) {
        return None;
    }
    let k4 = k / 4;
    Some(k4.div_ceil(k4.div_ceil(MAX_TILE4)))
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
            by_vec4: Mutex::new(Vec::new()),
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
        self.prepare(device, dims.k);
        Bound::new(device, "sparse_pieces", &self.layout, &buffers, dims)
    }

    /// Compiles what products with `k` columns run, if not yet compiled (`by_piece4`'s
    /// pipeline for that K on CPU adapters).
    pub(crate) fn prepare(&self, device: &wgpu::Device, k: u32) {
        if let Some(tile) = tile4(k).filter(|_| self.by_piece) {
            let mut compiled = self.by_vec4.lock().unwrap_or_else(|e| e.into_inner());
            if !compiled.iter().any(|(t, _)| *t == tile) {
                let constants = [("TILE4", f64::from(tile))];
                let pipeline = pipelines(
                    device,
                    Shader::SparsePieces,
                    &self.layout,
                    &["by_piece4"],
                    &constants,
                )
                .remove(0);
                compiled.push((tile, pipeline));
            }
        }
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<PieceDims>) {
        let d = b.dims;
        if d.pieces == 0 {
            return;
        }
        if self.by_piece {
            let (x, y) = grid(d.pieces.div_ceil(64), self.max_dim);
            let vec4 = tile4(d.k).and_then(|tile| {
                let compiled = self.by_vec4.lock().unwrap_or_else(|e| e.into_inner());
                let found = compiled.iter().find(|(t, _)| *t == tile);
                found.map(|(_, pipeline)| (tile, pipeline.clone()))
            });
            match vec4 {
                Some((tile, pipeline)) => {
                    let z = (d.k / 4).div_ceil(tile);
                    dispatch(pass, &pipeline, &b.group, (x, y, z));
                }
                None => dispatch(pass, &self.pipeline, &b.group, (x, y, d.k.div_ceil(16))),
            }
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

#[cfg(test)]
mod tests {
    use super::tile4;

    /// The tiles of `by_piece4` cover K/4 vec4s in the fewest tiles of at most six,
    /// evenly; K not a multiple of 4 has none.
    #[test]
    fn vec4_tiles_split_k_evenly() {
        assert_eq!(tile4(20), Some(5));
        assert_eq!(tile4(24), Some(6));
        assert_eq!(tile4(28), Some(4));
        assert_eq!(tile4(4), Some(1));
        assert_eq!(tile4(1000), Some(6));
        for k in [2, 10, 1, 0, 999] {
            assert_eq!(tile4(k), None, "K = {k}");
        }
        for k in (4..=4000).step_by(4) {
            let tile = tile4(k).unwrap();
            let tiles = (k / 4).div_ceil(tile);
            assert!(
                tile <= 6 && tiles * tile >= k / 4 && (tiles - 1) * tile < k / 4,
                "K = {k}"
            );
        }
    }
}

//! How the rows of X are cut into chunks for a device, and the dispatch sizes of the
//! gradient kernel for a chunk.

use super::*;

/// How the rows of a dataset are laid out in chunks on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Rows in every chunk but possibly the last.
    pub chunk_rows: usize,
    /// Number of chunks.
    pub chunks: usize,
}

/// Workgroups the tiled gradient kernel aims for per chunk (tiles × row blocks).
const TARGET_WORKGROUPS: u64 = 1024;

#[cfg(feature = "kernel-lab")]
/// Fewest rows in one block of the tiled gradient kernel: shorter blocks would spend more
/// on partials (one n×K copy per block) and their reduction than they gain in parallelism.
const MIN_TILED_BLOCK_ROWS: u64 = 256;

/// Most rows in one block of the register gradient kernel.
const REGISTER_BLOCK_ROWS: u64 = 1024;

/// Fewest rows each row slice of the coalesced gradient kernel sums in a block.
const MIN_SLICE_ROWS: u64 = 16;

impl ChunkPlan {
    /// The largest chunk that keeps X (rows·n values stored as `storage`), Z (rows·K·4
    /// bytes) and every dispatch dimension within the device's limits, capped by
    /// `requested` when given.
    pub fn new(
        m: usize,
        n: usize,
        k: usize,
        storage: XStorage,
        limits: &wgpu::Limits,
        requested: Option<usize>,
    ) -> Result<Self> {
        check_requested(requested)?;
        let max_bytes = binding_limit(limits);
        // Whole groups of four words of X (as XStorage::bytes allocates them): a chunk's
        // rows may end inside a group, never past the limit.
        let by_x = (max_bytes / 16 * 4 * storage.per_word() as u64) / n as u64;
        let by_z = max_bytes / (4 * k as u64);
        let by_dispatch = TILE as u64 * limits.max_compute_workgroups_per_dimension as u64;
        let limit = by_x.min(by_z).min(by_dispatch).min(m as u64) as usize;
        if limit == 0 {
            return Err(Error::OutOfMemory {
                context: format!(
                    "planning row chunks: one row of {n} features or {k} classes is over the device's {max_bytes}-byte buffer limit"
                ),
            });
        }
        let chunk_rows = requested.map_or(limit, |r| r.min(limit));
        Ok(ChunkPlan {
            chunk_rows,
            chunks: m.div_ceil(chunk_rows),
        })
    }

    /// Rows of chunk `c` of a dataset of m rows.
    pub fn rows_in(&self, c: usize, m: usize) -> usize {
        (m - c * self.chunk_rows).min(self.chunk_rows)
    }
}

/// Refuses a requested chunk of no rows.
pub(super) fn check_requested(requested: Option<usize>) -> Result<()> {
    match requested {
        Some(0) => Err(Error::setting("chunk_rows", 0, "must be at least 1")),
        _ => Ok(()),
    }
}

/// Row blocks for the gradient kernel: enough workgroups to fill the device, within the
/// partials capacity; X decoded with `codec`.
pub(super) fn gradient_dims(
    gradient: &Gradient,
    rows: usize,
    n: usize,
    k: usize,
    max_blocks: u64,
    codec: XCodec,
) -> GradientDims {
    let (wanted, max_useful) = match gradient.kind() {
        #[cfg(feature = "kernel-lab")]
        ProductKind::Tiled => {
            let (bm, bn) = tile_shape(k as u32);
            let tiles = (n as u64 + 1).div_ceil(bm as u64) * (k as u64).div_ceil(bn as u64);
            (
                TARGET_WORKGROUPS.div_ceil(tiles),
                (rows as u64).div_ceil(MIN_TILED_BLOCK_ROWS),
            )
        }
        // Each invocation sums its block's rows one after another; blocks of at most
        // REGISTER_BLOCK_ROWS rows keep those f32 sums short.
        ProductKind::Register => (
            (rows as u64).div_ceil(REGISTER_BLOCK_ROWS),
            (rows as u64).div_ceil(TILE as u64),
        ),
        // Enough workgroups to fill the device, each slice summing at least
        // MIN_SLICE_ROWS rows.
        ProductKind::Coalesced => {
            let tiles = (n as u64 + 1).div_ceil(SLICES_FEATURES as u64)
                * (k as u64).div_ceil(CLASS_TILE as u64);
            (
                TARGET_WORKGROUPS.div_ceil(tiles),
                (rows as u64).div_ceil(SLICES as u64 * MIN_SLICE_ROWS),
            )
        }
    };
    let blocks = wanted.clamp(1, max_useful.max(1)).min(max_blocks.max(1));
    let rows_per_block = (rows as u64).div_ceil(blocks).next_multiple_of(TILE as u64) as u32;
    GradientDims {
        rows: rows as u32,
        n: n as u32,
        k: k as u32,
        rows_per_block,
        stride: (n * k + k + 1) as u32,
        x_lo: codec.lo,
        x_step: codec.step,
        _pad: 0,
    }
}

//! MPI ranks through the `mpi` crate (rsmpi): the processes `mpirun -n R` starts, in
//! `MPI_COMM_WORLD`. The caller initializes MPI (`mpi::initialize`) and keeps its
//! `Universe` until training ends.

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::Ranks;
use crate::error::Result;

/// This process's place among the ranks of `MPI_COMM_WORLD`.
#[derive(Debug, Clone, Copy)]
pub struct MpiRanks {
    rank: usize,
    size: usize,
}

impl MpiRanks {
    /// The world communicator's ranks, as this process sees them (MPI must be
    /// initialized).
    pub fn world() -> Self {
        let world = SimpleCommunicator::world();
        MpiRanks {
            rank: usize::try_from(world.rank()).unwrap_or(0),
            size: usize::try_from(world.size()).unwrap_or(1),
        }
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): what a rank that cannot go on
    /// does, so that the others do not wait for it forever.
    pub fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }
}

impl Ranks for MpiRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>> {
        let mut all = vec![0.0f64; local.len() * self.size];
        SimpleCommunicator::world().all_gather_into(local, &mut all[..]);
        Ok(all)
    }

    /// Each rank adds one shard of the vector over every rank, in rank order, and the
    /// sums are shared: an all-to-all and an all-gather, which move about twice the
    /// vector's bytes per rank whatever the number of ranks (gathering every rank's whole
    /// vector would move ranks times as many), for the same bits.
    fn sum_in_rank_order(&self, local: &[f64]) -> Result<Vec<f64>> {
        let world = SimpleCommunicator::world();
        let shard = local.len().div_ceil(self.size).max(1);
        // Shard r of this rank's values (zero-padded) goes to rank r.
        let mut send = vec![0.0f64; shard * self.size];
        send[..local.len()].copy_from_slice(local);
        let mut mine = vec![0.0f64; shard * self.size];
        world.all_to_all_into(&send[..], &mut mine[..]);
        // `mine` holds this rank's shard of every rank's values, in rank order.
        let sums = super::add_in_order(shard, mine.chunks(shard));
        let mut all = vec![0.0f64; shard * self.size];
        world.all_gather_into(&sums[..], &mut all[..]);
        all.truncate(local.len());
        Ok(all)
    }
}

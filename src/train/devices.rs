//! Several devices in one process: X's rows split evenly between them, in the order the
//! devices are given, each device's oracle over its share, and their partials summed in
//! that order ([`SumOracle`]).
//!
//! The split is by rows, not by measured speed: a split that followed timings would change
//! from run to run, and with it which rows each device sums, so runs would no longer
//! repeat bit for bit. Devices of unequal speed therefore wait for the slowest.

use std::ops::Range;

use super::*;

/// `parts` consecutive ranges covering rows 0..m, their sizes differing by at most one.
pub fn even_row_ranges(m: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|p| (p * m / parts)..((p + 1) * m / parts))
        .collect()
}

/// The oracle of `data` on every device of `all`, each holding its share of the rows and
/// up to `models` models per pass over them (a regularisation path's, halved until they
/// fit when `models` > 1).
pub(super) fn device_oracle<'c>(
    all: &'c [GpuContext],
    data: &Dataset,
    chunk_rows: Option<usize>,
    models: usize,
) -> Result<SumOracle<'c>> {
    if data.n_rows() < all.len() {
        return Err(Error::setting(
            "devices",
            all.len(),
            format!(
                "the data has {} rows, fewer than the devices to share them",
                data.n_rows()
            ),
        ));
    }
    let mut parts: Vec<Box<dyn Oracle + Send + 'c>> = Vec::with_capacity(all.len());
    for (ctx, rows) in all.iter().zip(even_row_ranges(data.n_rows(), all.len())) {
        let share = data.row_range(rows)?;
        parts.push(if models > 1 {
            Box::new(super::path::path_oracle(ctx, &share, chunk_rows, models)?)
        } else {
            Box::new(GpuOracle::new(ctx, &share, chunk_rows)?)
        });
    }
    SumOracle::new(parts)
}

impl Trainer {
    /// The oracle of this process's rows on `backend`: the CPU reference, one device, or
    /// every device's share summed.
    pub(super) fn local_oracle<'c>(
        &self,
        backend: Backend<'c>,
        data: &Dataset,
    ) -> Result<Box<dyn Oracle + 'c>> {
        let chunk_rows = self.settings.chunk_rows;
        Ok(match backend {
            Backend::Cpu => Box::new(CpuOracle::new(data)?),
            Backend::Gpu(ctx) => Box::new(GpuOracle::new(ctx, data, chunk_rows)?),
            Backend::Devices(all) => Box::new(device_oracle(all, data, chunk_rows, 1)?),
        })
    }

    /// `local` summed over every rank's rows, with ranks; `local` itself without.
    pub(super) fn over_ranks<'c>(
        &self,
        local: Box<dyn Oracle + 'c>,
    ) -> Result<Box<dyn Oracle + 'c>> {
        Ok(match self.ranks() {
            Some(ranks) => Box::new(RankOracle::new(local, Arc::clone(ranks))?),
            None => local,
        })
    }
}

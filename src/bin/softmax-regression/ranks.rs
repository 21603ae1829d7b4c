//! `train` under `mpirun`: this process is one rank of several, trains on its own share of
//! the rows with the others (through the library's `Trainer::with_ranks`), and only rank 0
//! prints progress and writes files. A rank that fails ends every rank (`MPI_Abort`)
//! rather than leave them waiting for it.

use std::sync::Arc;

use softmax_regression::ranks::Ranks;

use crate::{CliResult, Failure};

/// How many ranks `mpirun` (OpenMPI's, or a PMI launcher's) started this process among,
/// from its environment; `None` outside a launcher.
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|v| v.parse().ok())
}

/// The run's ranks: none outside `mpirun` (or with one rank), else this process joined to
/// the others through MPI.
pub struct Job {
    ranks: Option<Arc<dyn Ranks>>,
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl Job {
    /// Joins the ranks `mpirun` started, if it started several.
    pub fn join() -> CliResult<Job> {
        let size = launched_size().unwrap_or(1);
        if size <= 1 {
            return Ok(Job {
                ranks: None,
                #[cfg(feature = "mpi")]
                _universe: None,
            });
        }
        #[cfg(feature = "mpi")]
        {
            let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            else {
                return Err(Failure::Runtime("MPI could not be initialized".to_string()));
            };
            // A panic must not leave the other ranks waiting in a collective for this one.
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                report(info);
                softmax_regression::ranks::mpi::MpiRanks::world().abort(101);
            }));
            Ok(Job {
                ranks: Some(Arc::new(softmax_regression::ranks::mpi::MpiRanks::world())),
                _universe: Some(universe),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Err(Failure::Input(format!(
            "mpirun started this process as one of {size} ranks, but this build has no MPI support; build it with `cargo build --release --features mpi` (or run it without mpirun)"
        )))
    }

    /// The ranks, when there are several.
    pub fn ranks(&self) -> Option<&Arc<dyn Ranks>> {
        self.ranks.as_ref()
    }

    /// Ends a failed rank: with several ranks, the message names the rank and every rank
    /// of the job ends with `code`; else nothing happens here.
    pub fn fail(&self, message: &str, code: u8) {
        let Some(ranks) = &self.ranks else {
            return;
        };
        eprintln!("rank {} of {}: {message}", ranks.rank(), ranks.size());
        #[cfg(feature = "mpi")]
        softmax_regression::ranks::mpi::MpiRanks::world().abort(i32::from(code));
        #[cfg(not(feature = "mpi"))]
        let _ = code;
    }
}

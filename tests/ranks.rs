//! Training across ranks, with the ranks as threads of this process
//! ([`LocalRanks`]; the same code runs MPI ranks under `--features mpi`, tests/mpi.rs):
//! every rank trains on its share of the rows, the ranks end with the same model bit for
//! bit, and that model is the single-process fit (the digits optima of ../shared/data to
//! 1e-6); an interrupt on one rank stops every rank after the same iteration; rank 0
//! alone writes the checkpoint, and every rank resumes from it to the uninterrupted model.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{digits, gpu};
use softmax_regression::ranks::{LocalRanks, Ranks};
use softmax_regression::train::even_row_ranges;
use softmax_regression::{Backend, Dataset, Optimizer, Settings, Status, Trainer};

fn lbfgs(l2: f64) -> Settings {
    Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 1000,
        tol: 1e-6,
        l2,
        ..Settings::default()
    }
}

/// Rank r's rows of `data`, in memory (the CPU reference needs them there).
fn share(data: &Dataset, r: usize, size: usize) -> Dataset {
    let rows: Vec<usize> = even_row_ranges(data.n_rows(), size)[r].clone().collect();
    data.select_rows(&rows).unwrap()
}

/// Runs `train(rank, trainer)` on one thread per rank and returns the results in rank
/// order.
fn on_ranks<T: Send>(
    size: usize,
    trainer: impl Fn(Arc<dyn Ranks>) -> Trainer + Sync,
    train: impl Fn(usize, &Trainer) -> T + Sync,
) -> Vec<T> {
    let ranks = LocalRanks::group(size);
    std::thread::scope(|scope| {
        let running: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, handle)| {
                let (trainer, train) = (&trainer, &train);
                scope.spawn(move || train(r, &trainer(handle)))
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

use common::{final_loss as loss, fit};

#[test]
fn three_ranks_reach_the_digits_optima_and_agree_bit_for_bit() {
    let data = digits();
    for (l2, optimum) in [(1e-2, 0.738514081875), (1e-4, 0.087345742989)] {
        let fits = on_ranks(
            3,
            |ranks| Trainer::new(lbfgs(l2)).unwrap().with_ranks(ranks),
            |r, trainer| fit(trainer, Backend::Cpu, &share(&data, r, 3)),
        );
        let rel = (loss(&fits[0]) - optimum) / optimum;
        eprintln!(
            "3 ranks, λ = {l2:e}: J = {:.12}, relative {rel:.2e}",
            loss(&fits[0])
        );
        assert_eq!(fits[0].status, Status::Converged);
        assert!(rel.abs() <= 1e-6, "λ = {l2}: relative {rel:e}");
        for f in &fits[1..] {
            assert_eq!(common::weight_bits(f), common::weight_bits(&fits[0]));
            assert_eq!(f.history.len(), fits[0].history.len());
        }
    }
}

/// Two ranks on the GPU, each its own share on the device, against one process.
#[test]
fn two_ranks_on_the_gpu_end_where_one_process_ends() {
    let data = common::clusters(20_000, 64, 10, 0.5, 5);
    let single = fit(
        &Trainer::new(lbfgs(1e-3)).unwrap(),
        Backend::Gpu(gpu()),
        &data,
    );
    let fits = on_ranks(
        2,
        |ranks| Trainer::new(lbfgs(1e-3)).unwrap().with_ranks(ranks),
        |r, trainer| {
            let range = even_row_ranges(data.n_rows(), 2)[r].clone();
            fit(
                trainer,
                Backend::Gpu(gpu()),
                &data.row_range(range).unwrap(),
            )
        },
    );
    let (a, b) = (loss(&single), loss(&fits[0]));
    assert!(
        ((a - b) / a).abs() <= 1e-6,
        "J {a} in one process, {b} on two ranks"
    );
    assert!(single.history.len().abs_diff(fits[0].history.len()) <= 2);
    assert_eq!(common::weight_bits(&fits[0]), common::weight_bits(&fits[1]));
}

#[test]
fn gd_on_ranks_follows_gd_in_one_process() {
    let data = digits();
    let settings = Settings {
        optimizer: Optimizer::Gd,
        learning_rate: 0.5,
        epochs: 15,
        tol: 0.0,
        l2: 1e-3,
        track_accuracy: true,
        ..Settings::default()
    };
    let single = fit(
        &Trainer::new(settings.clone()).unwrap(),
        Backend::Cpu,
        &data,
    );
    let fits = on_ranks(
        2,
        |ranks| Trainer::new(settings.clone()).unwrap().with_ranks(ranks),
        |r, trainer| fit(trainer, Backend::Cpu, &share(&data, r, 2)),
    );
    for (a, b) in single.history.iter().zip(&fits[0].history) {
        assert!(
            ((a.loss - b.loss) / a.loss).abs() <= 1e-9,
            "epoch {}",
            a.epoch
        );
        let (x, y) = (a.train_accuracy.unwrap(), b.train_accuracy.unwrap());
        assert!(
            (x - y).abs() < 1e-12,
            "epoch {}: accuracy {x} vs {y}",
            a.epoch
        );
    }
    assert_eq!(common::weight_bits(&fits[0]), common::weight_bits(&fits[1]));
}

/// An interrupt raised on rank 1 alone stops both ranks after the same iteration; rank 0
/// writes the checkpoint, and both ranks resume from it to the uninterrupted model.
#[test]
fn an_interrupt_on_one_rank_stops_all_and_they_resume_together() {
    let data = digits();
    let dir = common::scratch("ranks-resume");
    let file = dir.join("run.ckpt");
    let whole = on_ranks(
        2,
        |ranks| Trainer::new(lbfgs(1e-3)).unwrap().with_ranks(ranks),
        |r, trainer| fit(trainer, Backend::Cpu, &share(&data, r, 2)),
    );
    let flags: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let stopped = on_ranks(
        2,
        |ranks| {
            let r = ranks.rank();
            Trainer::new(lbfgs(1e-3))
                .unwrap()
                .with_checkpoints(&file, 1000)
                .unwrap()
                .with_interrupt(Arc::clone(&flags[r]))
                .with_ranks(ranks)
        },
        |r, trainer| {
            trainer
                .fit(Backend::Cpu, &share(&data, r, 2), None, None, |report| {
                    if r == 1 && report.epoch == 7 {
                        flags[1].store(true, Ordering::SeqCst);
                    }
                    ControlFlow::Continue(())
                })
                .unwrap()
        },
    );
    for f in &stopped {
        assert_eq!(f.status, Status::Interrupted);
        assert_eq!(f.history.len(), 7, "every rank stops after iteration 7");
    }
    let checkpoint = softmax_regression::Checkpoint::load(&file).unwrap();
    assert_eq!(checkpoint.epochs_done, 7);
    assert!(
        checkpoint.data.starts_with("1797 64 10 "),
        "{}",
        checkpoint.data
    );
    let resumed = on_ranks(
        2,
        |ranks| {
            Trainer::new(lbfgs(1e-3))
                .unwrap()
                .resume_from(&file)
                .unwrap()
                .with_ranks(ranks)
        },
        |r, trainer| fit(trainer, Backend::Cpu, &share(&data, r, 2)),
    );
    for f in &resumed {
        assert_eq!(common::weight_bits(f), common::weight_bits(&whole[0]));
    }
}

#[test]
fn ranks_refuse_standardizing_and_paths() {
    let data = digits();
    let refusals: Vec<(String, String)> = on_ranks(
        2,
        |ranks| {
            Trainer::new(Settings {
                standardize: true,
                ..lbfgs(1e-3)
            })
            .unwrap()
            .with_ranks(ranks)
        },
        |r, trainer| {
            let mine = share(&data, r, 2);
            let fit = trainer
                .fit(Backend::Cpu, &mine, None, None, |_| {
                    ControlFlow::Continue(())
                })
                .unwrap_err();
            let path = trainer
                .fit_path(Backend::Cpu, &mine, &[1e-2, 1e-3], false, |_, _| {
                    ControlFlow::Continue(())
                })
                .unwrap_err();
            (fit.to_string(), path.to_string())
        },
    );
    for (fit, path) in refusals {
        assert!(fit.contains("not supported across ranks"), "{fit}");
        assert!(path.contains("one process"), "{path}");
    }
}

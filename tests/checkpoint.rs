//! Checkpoints and interruption: a run stopped (between epochs or between two mini-batches
//! of an epoch) and resumed from its checkpoint ends with the same parameters, bit for bit,
//! as the run that was never stopped, for every optimizer on the GPU and the CPU; a
//! checkpoint refuses other data or other settings.

mod common;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{clusters, gpu};
use softmax_regression::{
    Backend, Checkpoint, Dataset, Error, Fit, Optimizer, Settings, Status, Trainer,
};

use common::weight_bits as params;

fn settings(optimizer: Optimizer) -> Settings {
    Settings {
        epochs: 6,
        learning_rate: if optimizer == Optimizer::Adam {
            0.01
        } else {
            0.2
        },
        optimizer,
        batch_size: match optimizer {
            Optimizer::Gd | Optimizer::Lbfgs => None,
            _ => Some(50),
        },
        chunk_rows: Some(160),
        seed: 7,
        tol: 0.0,
        ..Settings::default()
    }
}

fn uninterrupted(backend: Backend<'_>, data: &Dataset, s: &Settings) -> Fit {
    Trainer::new(s.clone())
        .unwrap()
        .fit(backend, data, None, None, |_| ControlFlow::Continue(()))
        .unwrap()
}

/// Runs with an interrupt raised after `stop_after` epochs (0: before the first step ends,
/// so a mini-batch run stops between two mini-batches), then resumes.
fn interrupted_then_resumed(
    backend: Backend<'_>,
    data: &Dataset,
    s: &Settings,
    stop_after: usize,
    checkpoint: &Path,
) -> (Fit, Fit) {
    let flag = Arc::new(AtomicBool::new(stop_after == 0));
    let raise = flag.clone();
    let first = Trainer::new(s.clone())
        .unwrap()
        .with_checkpoints(checkpoint, 1000)
        .unwrap()
        .with_interrupt(flag)
        .fit(backend, data, None, None, |r| {
            if r.epoch == stop_after {
                raise.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let second = Trainer::new(s.clone())
        .unwrap()
        .resume_from(checkpoint)
        .unwrap()
        .fit(backend, data, None, None, |_| ControlFlow::Continue(()))
        .unwrap();
    (first, second)
}

fn resume_is_bit_exact(backend: Backend<'_>, label: &str, data: &Dataset) {
    let dir = common::scratch(&format!("checkpoint-{}", label));
    for optimizer in Optimizer::ALL {
        let s = settings(optimizer);
        let full = uninterrupted(backend, data, &s);
        assert_eq!(
            full.history.len(),
            6,
            "{optimizer}: the reference run stopped early"
        );
        let stops: &[usize] = match s.batch_size {
            Some(_) => &[0, 3],
            None => &[3],
        };
        for &stop_after in stops {
            let path = dir.join(format!("{optimizer}-{stop_after}.ckpt"));
            let (first, second) = interrupted_then_resumed(backend, data, &s, stop_after, &path);
            assert_eq!(
                first.status,
                Status::Interrupted,
                "{label} {optimizer}: interrupt after {stop_after}"
            );
            assert_eq!(first.history.len(), stop_after);
            let saved = Checkpoint::load(&path).unwrap();
            assert_eq!(saved.epochs_done, stop_after);
            if stop_after == 0 {
                assert_eq!(
                    saved.batches_done, 1,
                    "{optimizer}: stopped after one batch"
                );
            }
            assert_eq!(
                second.history.first().map(|r| r.epoch),
                Some(stop_after + 1),
                "{optimizer}: resumed at the wrong epoch"
            );
            assert_eq!(
                params(&second),
                params(&full),
                "{label} {optimizer}: resumed after {stop_after} epochs, the final weights differ from the uninterrupted run"
            );
            assert_eq!(
                second.history.last().map(|r| r.loss.to_bits()),
                full.history.last().map(|r| r.loss.to_bits()),
                "{label} {optimizer}: final loss differs"
            );
        }
    }
}

#[test]
fn resumed_runs_equal_uninterrupted_runs_bit_for_bit_gpu() {
    resume_is_bit_exact(Backend::Gpu(gpu()), "gpu", &clusters(500, 13, 4, 0.6, 11));
}

#[test]
fn resumed_runs_equal_uninterrupted_runs_bit_for_bit_cpu() {
    resume_is_bit_exact(Backend::Cpu, "cpu", &clusters(500, 13, 4, 0.6, 11));
}

/// The same data with its small values dropped, held as CSR.
fn sparse_clusters() -> Dataset {
    let dense = clusters(500, 13, 4, 0.6, 11);
    let x = dense
        .x()
        .unwrap()
        .mapv(|v| if v.abs() < 0.8 { 0.0 } else { v });
    let csr = softmax_regression::data::Csr::from_dense(x.view()).unwrap();
    assert!(csr.nnz() < 500 * 13 / 2, "{} values stored", csr.nnz());
    Dataset::from_csr(csr, dense.labels(), 4).unwrap()
}

#[test]
fn resumed_runs_on_sparse_x_equal_uninterrupted_runs_bit_for_bit_gpu() {
    resume_is_bit_exact(Backend::Gpu(gpu()), "sparse-gpu", &sparse_clusters());
}

#[test]
fn resumed_runs_on_sparse_x_equal_uninterrupted_runs_bit_for_bit_cpu() {
    resume_is_bit_exact(Backend::Cpu, "sparse-cpu", &sparse_clusters());
}

#[test]
fn periodic_checkpoints_do_not_change_the_run_and_resume_exactly() {
    let data = clusters(400, 9, 3, 0.6, 5);
    let dir = common::scratch("checkpoint-periodic");
    let path = dir.join("adam.ckpt");
    let s = settings(Optimizer::Adam);
    let plain = uninterrupted(Backend::Gpu(gpu()), &data, &s);
    let with = Trainer::new(s.clone())
        .unwrap()
        .with_checkpoints(&path, 4)
        .unwrap()
        .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(params(&with), params(&plain));
    assert_eq!(Checkpoint::load(&path).unwrap().epochs_done, 4);
    let resumed = Trainer::new(s)
        .unwrap()
        .resume_from(&path)
        .unwrap()
        .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(params(&resumed), params(&plain));
}

#[test]
fn a_checkpoint_refuses_other_data_and_other_settings() {
    let data = clusters(300, 9, 3, 0.6, 5);
    let dir = common::scratch("checkpoint-refuse");
    let path = dir.join("sgd.ckpt");
    let s = settings(Optimizer::Sgd);
    Trainer::new(s.clone())
        .unwrap()
        .with_checkpoints(&path, 2)
        .unwrap()
        .fit(Backend::Cpu, &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let resume = |s: Settings, data: &Dataset| {
        Trainer::new(s).unwrap().resume_from(&path).unwrap().fit(
            Backend::Cpu,
            data,
            None,
            None,
            |_| ControlFlow::Continue(()),
        )
    };
    let other_rate = Settings {
        learning_rate: 0.5,
        ..s.clone()
    };
    match resume(other_rate, &data) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("learning_rate"), "{message}")
        }
        other => panic!("resumed with another learning rate: {other:?}"),
    }
    let other_data = clusters(300, 9, 3, 0.6, 6);
    match resume(s.clone(), &other_data) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("different data"), "{message}")
        }
        other => panic!("resumed on other data: {other:?}"),
    }
    let other_shape = clusters(200, 9, 3, 0.6, 5);
    match resume(s.clone(), &other_shape) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("300 9 3"), "{message}")
        }
        other => panic!("resumed on data of another shape: {other:?}"),
    }
    // More epochs than the first run asked for are allowed: training continues.
    let longer = resume(
        Settings {
            epochs: 9,
            ..s.clone()
        },
        &data,
    )
    .unwrap();
    assert_eq!(longer.history.first().map(|r| r.epoch), Some(5));
    // The cosine schedule's rates depend on the epoch count, so that may not change.
    let cosine = Settings {
        schedule: softmax_regression::Schedule::Cosine,
        ..s.clone()
    };
    let cosine_path = dir.join("cosine.ckpt");
    Trainer::new(cosine.clone())
        .unwrap()
        .with_checkpoints(&cosine_path, 2)
        .unwrap()
        .fit(Backend::Cpu, &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    match Trainer::new(Settings {
        epochs: 9,
        ..cosine
    })
    .unwrap()
    .resume_from(&cosine_path)
    .unwrap()
    .fit(Backend::Cpu, &data, None, None, |_| {
        ControlFlow::Continue(())
    }) {
        Err(Error::Checkpoint { message, .. }) => assert!(message.contains("epochs"), "{message}"),
        other => panic!("resumed a cosine schedule with other epochs: {other:?}"),
    }
    // Not a checkpoint at all.
    let model = dir.join("not-a-checkpoint");
    std::fs::write(&model, b"hello").unwrap();
    match Trainer::new(s).unwrap().resume_from(&model) {
        Err(Error::Checkpoint { .. }) => {}
        other => panic!("read a non-checkpoint: {other:?}"),
    }
}

#[test]
fn an_lbfgs_checkpoint_refuses_other_device_chunks() {
    let data = clusters(400, 9, 3, 0.6, 5);
    let dir = common::scratch("checkpoint-lbfgs-chunks");
    let path = dir.join("lbfgs.ckpt");
    let s = settings(Optimizer::Lbfgs);
    Trainer::new(s.clone())
        .unwrap()
        .with_checkpoints(&path, 2)
        .unwrap()
        .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    match Trainer::new(Settings {
        chunk_rows: Some(100),
        ..s
    })
    .unwrap()
    .resume_from(&path)
    .unwrap()
    .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
        ControlFlow::Continue(())
    }) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("chunks of 160 rows"), "{message}")
        }
        other => panic!("resumed L-BFGS with other chunks: {other:?}"),
    }
}

#[test]
fn a_checkpoint_refuses_another_storage_of_x_and_resumes_with_its_own() {
    use softmax_regression::gpu::XStorage;
    use softmax_regression::{AdapterRequest, GpuContext};
    let open = |x_storage| {
        GpuContext::new(&AdapterRequest {
            x_storage,
            ..AdapterRequest::default()
        })
        .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
    };
    let (u8, f32) = (open(XStorage::U8), open(XStorage::F32));
    let data = clusters(400, 9, 3, 0.6, 6);
    let dir = common::scratch("checkpoint-storage");
    let s = settings(Optimizer::Adam);
    let (stopped, resumed) =
        interrupted_then_resumed(Backend::Gpu(&u8), &data, &s, 2, &dir.join("u8.ckpt"));
    assert_eq!(stopped.status, Status::Interrupted);
    assert_eq!(
        params(&resumed),
        params(&uninterrupted(Backend::Gpu(&u8), &data, &s)),
        "a u8 run resumed with u8 storage"
    );
    match Trainer::new(s)
        .unwrap()
        .resume_from(dir.join("u8.ckpt"))
        .unwrap()
        .fit(Backend::Gpu(&f32), &data, None, None, |_| {
            ControlFlow::Continue(())
        }) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("X stored as u8"), "{message}")
        }
        other => panic!("resumed a u8 run with f32 storage: {other:?}"),
    }
}

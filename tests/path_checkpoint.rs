//! Checkpoints of regularisation paths: a path (lockstep or warm-started), or a
//! cross-validation over folds, stopped by an interrupt and resumed from its checkpoint
//! ends every model bit for bit where the run that was never stopped ends, on the GPU and
//! the CPU, also when the device holds fewer models per pass than the path has; a
//! checkpoint refuses another path, and a path's checkpoint refuses a one-strength run.

mod common;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{clusters, digits, gpu};
use softmax_regression::{
    Backend, Choice, Dataset, Error, Folds, Optimizer, PathCheckpoint, PathModel, Score, Selection,
    Settings, Status, Strength, Trainer,
};

fn trainer() -> Trainer {
    Trainer::new(Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 1000,
        tol: 1e-5,
        ..Settings::default()
    })
    .unwrap()
}

/// A model's results as bits.
fn bits(m: &PathModel) -> (Vec<u32>, Vec<u32>, u64, usize, usize, Status) {
    (
        m.model.theta().iter().map(|v| v.to_bits()).collect(),
        m.model.bias().iter().map(|v| v.to_bits()).collect(),
        m.loss.to_bits(),
        m.iterations,
        m.evaluations,
        m.status,
    )
}

/// A trainer writing checkpoints to `path` every `every` iterations, interrupted once
/// model `model` reaches iteration `at` (through the flag it is given).
fn interrupting(path: &Path, every: usize) -> (Trainer, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let trainer = trainer()
        .with_checkpoints(path, every)
        .unwrap()
        .with_interrupt(flag.clone());
    (trainer, flag)
}

fn resumed(path: &Path) -> Trainer {
    trainer().resume_from(path).unwrap()
}

/// A lockstep or warm-started path interrupted when model `model` reaches iteration `at`,
/// then resumed, against the same path with checkpoints and no interrupt.
fn path_resumes(
    backend: Backend<'_>,
    data: &Dataset,
    warm_start: bool,
    (model, at): (usize, usize),
    label: &str,
) {
    let dir = common::scratch(&format!("path-checkpoint-{label}"));
    let l2s = [1e-2, 1e-3, 3e-4];
    let whole = trainer()
        .with_checkpoints(dir.join("whole.ckpt"), 5)
        .unwrap()
        .fit_path(backend, data, &l2s, warm_start, |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap();
    for m in &whole {
        assert_eq!(m.status, Status::Converged, "{label}: λ = {}", m.l2);
        assert!(
            m.iterations > at,
            "{label}: the interrupt must come before the end"
        );
    }
    let file = dir.join("path.ckpt");
    let (first, flag) = interrupting(&file, 7);
    let stopped = first
        .fit_path(backend, data, &l2s, warm_start, |s, r| {
            if s == model && r.epoch == at {
                flag.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(
        stopped.iter().any(|m| m.status == Status::Interrupted),
        "{label}: the interrupt stopped no model"
    );
    let checkpoint = PathCheckpoint::load(&file).unwrap();
    assert_eq!(checkpoint.stage, 0);
    assert_eq!(checkpoint.models.len(), l2s.len());
    let mut seen = vec![0usize; l2s.len()];
    let again = resumed(&file)
        .fit_path(backend, data, &l2s, warm_start, |s, r| {
            // Each model goes on from the iteration after the one it was saved at.
            if seen[s] == 0 {
                let saved = checkpoint.models[s].as_ref().map_or(0, |st| st.iteration);
                assert_eq!(r.epoch, saved + 1, "{label}: model {s}");
            }
            seen[s] = r.epoch;
            ControlFlow::Continue(())
        })
        .unwrap();
    for (a, b) in whole.iter().zip(&again) {
        assert!(
            bits(a) == bits(b),
            "{label}: λ = {}: the resumed model differs from the uninterrupted one (J {} vs {}, {} vs {} iterations)",
            a.l2,
            a.loss,
            b.loss,
            a.iterations,
            b.iterations
        );
    }
}

#[test]
fn a_lockstep_path_resumes_bit_for_bit_on_the_gpu() {
    path_resumes(
        Backend::Gpu(gpu()),
        &digits(),
        false,
        (0, 12),
        "gpu-lockstep",
    );
}

#[test]
fn a_lockstep_path_resumes_bit_for_bit_on_the_cpu() {
    path_resumes(Backend::Cpu, &digits(), false, (1, 9), "cpu-lockstep");
}

#[test]
fn a_warm_started_path_resumes_bit_for_bit() {
    // Interrupted in the second model, the first one done.
    path_resumes(Backend::Gpu(gpu()), &digits(), true, (1, 6), "gpu-warm");
}

/// A path under a memory budget that holds fewer models per pass than it has, so each
/// round runs in groups.
#[test]
fn a_path_in_groups_resumes_bit_for_bit() {
    use softmax_regression::{AdapterRequest, GpuContext, GpuOracle};
    let data = clusters(400, 3000, 10, 0.5, 3);
    let ctx = GpuContext::new(&AdapterRequest::default()).unwrap();
    // The smallest whole number of MiB that holds two models per pass but not three.
    let budget = (1..64u64)
        .map(|mib| mib << 20)
        .find(|&budget| {
            ctx.set_memory_budget(Some(budget));
            GpuOracle::with_models(&ctx, &data, None, 2).is_ok()
        })
        .unwrap();
    ctx.set_memory_budget(Some(budget));
    assert!(GpuOracle::with_models(&ctx, &data, None, 3).is_err());
    path_resumes(Backend::Gpu(&ctx), &data, false, (2, 4), "gpu-groups");
}

fn cv(
    trainer: &Trainer,
    data: &Dataset,
    folds: &Folds,
    mut each: impl FnMut(Option<usize>, usize),
) -> Selection {
    let strengths = [Strength::C(0.1), Strength::C(10.0)];
    trainer
        .cross_validate(
            Backend::Gpu(gpu()),
            data,
            folds,
            Choice {
                strengths: &strengths,
                score: Score::LogLoss,
                warm_start: false,
            },
            |step| {
                each(step.fold, step.report.epoch);
                ControlFlow::Continue(())
            },
        )
        .unwrap()
}

/// Cross-validation interrupted in its second fold, then resumed: the same scores for
/// every fold, the same choice, the same refit, bit for bit; and interrupted in the
/// refit, the folds are not trained again.
#[test]
fn a_cross_validation_resumes_bit_for_bit() {
    let data = digits();
    let folds = Folds::stratified(data.labels(), 10, 3, 4).unwrap();
    let dir = common::scratch("path-checkpoint-cv");
    let whole = cv(
        &trainer()
            .with_checkpoints(dir.join("whole.ckpt"), 10)
            .unwrap(),
        &data,
        &folds,
        |_, _| {},
    );
    assert_eq!(whole.chosen.status, Status::Converged);
    for (stop_in, at) in [(Some(1), 8), (None, 5)] {
        let file = dir.join("cv.ckpt");
        let (first, flag) = interrupting(&file, 10);
        let stopped = cv(&first, &data, &folds, |fold, epoch| {
            if fold == stop_in && epoch == at {
                flag.store(true, Ordering::SeqCst);
            }
        });
        assert_eq!(stopped.chosen.status, Status::Interrupted);
        let checkpoint = PathCheckpoint::load(&file).unwrap();
        assert_eq!(checkpoint.stage, stop_in.unwrap_or(3));
        let mut folds_trained = Vec::new();
        let again = cv(&resumed(&file), &data, &folds, |fold, _| {
            if folds_trained.last() != Some(&fold) {
                folds_trained.push(fold);
            }
        });
        let expected: Vec<Option<usize>> = match stop_in {
            Some(f) => (f..3).map(Some).chain([None]).collect(),
            None => vec![None],
        };
        assert_eq!(folds_trained, expected, "the folds a resumed run trains");
        assert_eq!(again.candidates, whole.candidates);
        assert_eq!(again.best, whole.best);
        assert!(
            bits(&again.chosen) == bits(&whole.chosen),
            "the refit differs"
        );
    }
}

/// A path's checkpoint continues only the same path on the same data, and the checkpoint
/// of a one-strength run no path; each refusal names the difference.
#[test]
fn a_path_checkpoint_refuses_another_run() {
    let data = digits();
    let dir = common::scratch("path-checkpoint-refusals");
    let file = dir.join("path.ckpt");
    let (first, flag) = interrupting(&file, 1);
    first
        .fit_path(Backend::Cpu, &data, &[1e-2, 1e-3], false, |_, r| {
            if r.epoch == 3 {
                flag.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let refusal = |e: Error| match e {
        Error::Checkpoint { message, .. } => message,
        other => panic!("not a checkpoint error: {other}"),
    };
    let other_path = resumed(&file)
        .fit_path(Backend::Cpu, &data, &[1e-2, 1e-4], false, |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(refusal(other_path).contains("path = l2:0.01,0.001"));
    let other_data = clusters(100, 64, 10, 1.0, 1);
    let message = refusal(
        resumed(&file)
            .fit_path(Backend::Cpu, &other_data, &[1e-2, 1e-3], false, |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap_err(),
    );
    assert!(message.contains("shape (m n K) 1797 64 10"), "{message}");
    let one = resumed(&file)
        .fit(Backend::Cpu, &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(refusal(one).contains("is the checkpoint of a regularisation path"));
    // A one-strength checkpoint given to a path.
    let single = dir.join("single.ckpt");
    let (one_run, flag) = interrupting(&single, 1);
    one_run
        .fit(Backend::Cpu, &data, None, None, |r| {
            if r.epoch == 2 {
                flag.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let message = refusal(
        resumed(&single)
            .fit_path(Backend::Cpu, &data, &[1e-2, 1e-3], false, |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap_err(),
    );
    assert!(message.contains("one-strength run"), "{message}");
}

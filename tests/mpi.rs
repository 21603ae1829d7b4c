//! The binary under `mpirun` (build and run with `--features mpi`; CI does): 2 and 3 ranks
//! reach the digits optima of ../shared/data; on a 200,000 × 256 × 10 problem they end
//! within 1e-6 of the single-process fit in the same iterations ± 2, and a repeated run
//! writes the same model bit for bit; a rank killed mid-run, or a bad row in one rank's
//! share of the file, ends every rank with a non-zero exit within seconds; a run stopped
//! at an iteration limit resumes on the same ranks to the uninterrupted model. These tests
//! need OpenMPI's mpirun; its absence fails them.
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use softmax_regression::Model;

const BIN: &str = env!("CARGO_BIN_EXE_softmax-regression");

/// The tests start several processes each; one at a time keeps them off each other's
/// cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `mpirun -n ranks` of the binary with `args` (as root where the tests run as root, and
/// with more ranks than cores).
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", &ranks.to_string(), "--oversubscribe", BIN])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    c
}

fn output(mut c: Command) -> Output {
    c.output()
        .expect("mpirun runs (install OpenMPI: apt-get install openmpi-bin libopenmpi-dev)")
}

/// The `--json` summary of a run that must succeed.
fn summary(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| panic!("no summary line in {text}"));
    serde_json::from_str(line).unwrap()
}

fn bits(path: &Path) -> Vec<u32> {
    let (model, _) = Model::load(path).unwrap();
    model
        .theta()
        .iter()
        .chain(model.bias().iter())
        .map(|v| v.to_bits())
        .collect()
}

/// The digits (features / 16) as x.npy (float32) and y.npy (int64) in `dir`.
fn digits_files(dir: &Path) -> (String, String) {
    let data = common::digits();
    let x: Vec<u8> = data
        .x()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let y: Vec<u8> = data
        .labels()
        .iter()
        .flat_map(|&l| i64::from(l).to_le_bytes())
        .collect();
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    common::write_npy(&xp, "<f4", &[data.n_rows(), data.n_features()], &x);
    common::write_npy(&yp, "<i8", &[data.n_rows()], &y);
    (xp.display().to_string(), yp.display().to_string())
}

#[test]
fn two_and_three_ranks_reach_the_digits_optima() {
    let _serial = serial();
    let dir = common::scratch("mpi-digits");
    let (x, y) = digits_files(&dir);
    let out = dir.join("m.safetensors").display().to_string();
    for ranks in [2, 3] {
        for backend in ["cpu", "vulkan"] {
            for (l2, optimum) in [(1e-2, 0.738514081875), (1e-4, 0.087345742989)] {
                let l2 = format!("{l2}");
                let o = output(mpirun(
                    ranks,
                    &[
                        "train",
                        "--data",
                        &x,
                        "--labels",
                        &y,
                        "--backend",
                        backend,
                        "--l2",
                        &l2,
                        "--tol",
                        "1e-6",
                        "--epochs",
                        "2000",
                        "--json",
                        "--out",
                        &out,
                    ],
                ));
                let s = summary(&o);
                let j = s["loss"].as_f64().unwrap();
                let rel = (j - optimum) / optimum;
                eprintln!("{ranks} ranks, {backend}, λ = {l2}: J = {j:.12}, relative {rel:.2e}");
                assert_eq!(s["status"], "converged", "{ranks} ranks {backend} λ {l2}");
                assert!(rel.abs() <= 1e-6, "{ranks} ranks {backend} λ {l2}: {rel:e}");
            }
        }
    }
}

#[test]
fn ranks_end_where_one_process_ends_and_repeat_bit_for_bit() {
    let _serial = serial();
    let dir = common::scratch("mpi-large");
    let p = |name: &str| dir.join(name).display().to_string();
    let synth = common::run(&[
        "synth",
        "--rows",
        "200000",
        "--features",
        "256",
        "--classes",
        "10",
        "--seed",
        "4",
        "--out",
        &p("x.npy"),
        "--labels",
        &p("y.npy"),
    ]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let args = |out: &str| -> Vec<String> {
        [
            "train",
            "--data",
            &p("x.npy"),
            "--labels",
            &p("y.npy"),
            "--backend",
            "vulkan",
            "--l2",
            "1e-4",
            "--tol",
            "1e-5",
            "--epochs",
            "1000",
            "--json",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    let one = Command::new(BIN)
        .args(args(&p("one.safetensors")))
        .output()
        .unwrap();
    let one = summary(&one);
    let (j1, it1) = (
        one["loss"].as_f64().unwrap(),
        one["epochs"].as_u64().unwrap(),
    );
    for ranks in [2, 3] {
        let out = p(&format!("r{ranks}.safetensors"));
        let arg_refs = args(&out);
        let s = summary(&output(mpirun(ranks, &refs(&arg_refs))));
        let (j, it) = (s["loss"].as_f64().unwrap(), s["epochs"].as_u64().unwrap());
        eprintln!("one process: J = {j1:.12} after {it1}; {ranks} ranks: J = {j:.12} after {it}");
        assert_eq!(s["status"], "converged");
        assert!(
            ((j - j1) / j1).abs() <= 1e-6,
            "{ranks} ranks: J {j} against {j1}"
        );
        assert!(
            it.abs_diff(it1) <= 2,
            "{ranks} ranks: {it} iterations against {it1}"
        );
        if ranks == 2 {
            let again = p("r2-again.safetensors");
            let arg_refs = args(&again);
            summary(&output(mpirun(2, &refs(&arg_refs))));
            assert_eq!(
                bits(Path::new(&out)),
                bits(Path::new(&again)),
                "repeated runs differ"
            );
        }
    }
}

/// Rank 1 killed while the ranks train: mpirun ends the others, non-zero, within seconds.
#[test]
fn a_killed_rank_ends_every_rank() {
    let _serial = serial();
    let dir = common::scratch("mpi-kill");
    let (x, y) = digits_files(&dir);
    let out = dir.join("m.safetensors").display().to_string();
    let mut child = training_without_end(3, &x, &y, &["--out", &out, "--quiet"]);
    // The ranks are mpirun's children; wait until all three run, then train a while.
    let ranks = rank_pids(&child, 3);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the kill"
    );
    let killed = Instant::now();
    Command::new("kill")
        .args(["-9", &ranks[1]])
        .status()
        .unwrap();
    let (status, seconds) = exit_after(&mut child, killed, "one rank was killed");
    eprintln!("mpirun exited {status:?} {seconds:.1} s after the kill");
    assert!(!status.success());
    assert!(seconds < 10.0, "took {seconds} s");
    assert_ended(&ranks);
}

/// A NaN in the rows of the last rank's share: that rank names the file's row, and every
/// rank exits non-zero.
#[test]
fn a_bad_row_in_one_ranks_share_ends_every_rank() {
    let _serial = serial();
    let dir = common::scratch("mpi-bad-row");
    let data = common::digits();
    let mut x: Vec<f32> = data.x().unwrap().iter().copied().collect();
    let n = data.n_features();
    x[1700 * n + 3] = f32::NAN;
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let xp = dir.join("x.npy");
    common::write_npy(&xp, "<f4", &[data.n_rows(), n], &bytes);
    let (_, y) = digits_files(&common::scratch("mpi-bad-row-labels"));
    let out = dir.join("m.safetensors").display().to_string();
    let started = Instant::now();
    let o = output(mpirun(
        3,
        &[
            "train",
            "--data",
            xp.to_str().unwrap(),
            "--labels",
            &y,
            "--backend",
            "vulkan",
            "--out",
            &out,
        ],
    ));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(stderr.contains("rank 2 of 3"), "{stderr}");
    assert!(stderr.contains("row 1701"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!Path::new(&out).exists(), "a model was written");
}

/// `mpirun -n ranks` of gd on the digits files `x`, `y` for as long as it is let run
/// (plus `extra` flags), started with stderr piped.
fn training_without_end(ranks: usize, x: &str, y: &str, extra: &[&str]) -> std::process::Child {
    let mut args = vec![
        "train",
        "--data",
        x,
        "--labels",
        y,
        "--backend",
        "cpu",
        "--optimizer",
        "gd",
        "--epochs",
        "100000000",
        "--tol",
        "0",
    ];
    args.extend(extra);
    mpirun(ranks, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs")
}

/// The pids of mpirun's `count` rank processes, once they all run.
fn rank_pids(child: &std::process::Child, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let out = Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the ranks did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for mpirun to exit, at most 20 s after `since` (when `what` happened); returns
/// its status and the seconds since then.
fn exit_after(
    child: &mut std::process::Child,
    since: Instant,
    what: &str,
) -> (std::process::ExitStatus, f64) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, since.elapsed().as_secs_f64());
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "still running 20 s after {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails if any of the rank processes still runs (a zombie awaiting its parent has ended).
fn assert_ended(pids: &[String]) {
    for pid in pids {
        let alive = Command::new("kill")
            .args(["-0", pid])
            .status()
            .unwrap()
            .success();
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        assert!(!alive || zombie, "rank process {pid} still runs");
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A run stopped by its iteration limit with a checkpoint continues, on the same ranks
/// with more iterations, to the model of the run that was never stopped.
#[test]
fn ranks_resume_from_their_checkpoint() {
    let _serial = serial();
    let dir = common::scratch("mpi-resume");
    let (x, y) = digits_files(&dir);
    let p = |name: &str| dir.join(name).display().to_string();
    let base = [
        "train",
        "--data",
        &x,
        "--labels",
        &y,
        "--backend",
        "cpu",
        "--l2",
        "1e-3",
        "--tol",
        "1e-6",
        "--json",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let full = with(&["--epochs", "1000", "--out", &p("full.safetensors")]);
    summary(&output(mpirun(2, &refs(&full))));
    let part = with(&[
        "--epochs",
        "30",
        "--checkpoint",
        &p("run.ckpt"),
        "--checkpoint-every",
        "10",
        "--out",
        &p("part.safetensors"),
    ]);
    let first = summary(&output(mpirun(2, &refs(&part))));
    assert_eq!(first["status"], "iteration limit");
    let resume = with(&[
        "--epochs",
        "1000",
        "--checkpoint",
        &p("run.ckpt"),
        "--resume",
        &p("run.ckpt"),
        "--out",
        &p("part.safetensors"),
    ]);
    summary(&output(mpirun(2, &refs(&resume))));
    assert_eq!(
        bits(Path::new(&p("part.safetensors"))),
        bits(Path::new(&p("full.safetensors")))
    );
    // Another rank count is another split of the rows: refused.
    let o = output(mpirun(3, &refs(&resume)));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("run.ckpt"));
}

/// Two MPI ranks (which add their partials shard by shard: an all-to-all and an
/// all-gather) write the model that two ranks as threads of one process (which gather
/// every partial) reach, bit for bit: both add every value in rank order.
#[test]
fn mpi_ranks_and_thread_ranks_give_the_same_bits() {
    use softmax_regression::ranks::LocalRanks;
    use softmax_regression::train::even_row_ranges;
    use softmax_regression::{Backend, Optimizer, Settings, Trainer};
    use std::ops::ControlFlow;
    let _serial = serial();
    let dir = common::scratch("mpi-threads");
    let (x, y) = digits_files(&dir);
    let out = dir.join("m.safetensors");
    let o = output(mpirun(
        2,
        &[
            "train",
            "--data",
            &x,
            "--labels",
            &y,
            "--backend",
            "cpu",
            "--l2",
            "1e-3",
            "--tol",
            "1e-6",
            "--epochs",
            "500",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = common::digits();
    let settings = Settings {
        optimizer: Optimizer::Lbfgs,
        l2: 1e-3,
        tol: 1e-6,
        epochs: 500,
        ..Settings::default()
    };
    let ranks = LocalRanks::group(2);
    let fits: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let running: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, handle)| {
                let (data, settings) = (&data, &settings);
                scope.spawn(move || {
                    let rows: Vec<usize> = even_row_ranges(data.n_rows(), 2)[r].clone().collect();
                    let fit = Trainer::new(settings.clone())
                        .unwrap()
                        .with_ranks(handle)
                        .fit(
                            Backend::Cpu,
                            &data.select_rows(&rows).unwrap(),
                            None,
                            None,
                            |_| ControlFlow::Continue(()),
                        )
                        .unwrap();
                    common::weight_bits(&fit)
                })
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(fits[0], fits[1]);
    assert_eq!(
        bits(&out),
        fits[0],
        "the MPI ranks' model differs from the threads'"
    );
}

/// Ctrl-C reaches mpirun, which passes SIGTERM to the ranks: every rank ends, non-zero,
/// within seconds, and none is left running.
#[test]
fn ctrl_c_to_mpirun_ends_every_rank() {
    let _serial = serial();
    let dir = common::scratch("mpi-ctrl-c");
    let (x, y) = digits_files(&dir);
    let out = dir.join("m.safetensors").display().to_string();
    let ckpt = dir.join("run.ckpt").display().to_string();
    let mut child = training_without_end(
        2,
        &x,
        &y,
        &[
            "--out",
            &out,
            "--checkpoint",
            &ckpt,
            "--checkpoint-every",
            "50",
        ],
    );
    let ranks = rank_pids(&child, 2);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before Ctrl-C"
    );
    let sent = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let (status, seconds) = exit_after(&mut child, sent, "Ctrl-C");
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("mpirun exited {status:?} {seconds:.1} s after Ctrl-C:\n{stderr}");
    assert!(!status.success());
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    assert_ended(&ranks);
    // What a checkpoint holds is a whole step of every rank.
    if let Ok(cp) = softmax_regression::Checkpoint::load(Path::new(&ckpt)) {
        assert!(cp.data.starts_with("1797 64 10 "), "{}", cp.data);
    }
}

/// Shard files: `{rank}` in --data and --labels names each rank's own file. Shard 0 holds
/// the digits of classes 0–4 and shard 1 those of 5–9, so their labels alone say K = 5 and
/// K = 10: the ranks agree on 10 and reach the optimum of all the rows.
#[test]
fn each_rank_reads_its_own_shard_files() {
    let _serial = serial();
    let dir = common::scratch("mpi-shards");
    let data = common::digits();
    let x = data.x().unwrap();
    for (shard, classes) in [(0, 0..5u32), (1, 5..10u32)] {
        let rows: Vec<usize> = (0..data.n_rows())
            .filter(|&r| classes.contains(&data.labels()[r]))
            .collect();
        let xs: Vec<u8> = rows
            .iter()
            .flat_map(|&r| x.row(r).to_vec())
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let ys: Vec<u8> = rows
            .iter()
            .flat_map(|&r| i64::from(data.labels()[r]).to_le_bytes())
            .collect();
        common::write_npy(
            &dir.join(format!("x.{shard}.npy")),
            "<f4",
            &[rows.len(), 64],
            &xs,
        );
        common::write_npy(
            &dir.join(format!("y.{shard}.npy")),
            "<i8",
            &[rows.len()],
            &ys,
        );
    }
    let p = |name: &str| dir.join(name).display().to_string();
    let s = summary(&output(mpirun(
        2,
        &[
            "train",
            "--data",
            &p("x.{rank}.npy"),
            "--labels",
            &p("y.{rank}.npy"),
            "--backend",
            "cpu",
            "--l2",
            "1e-3",
            "--tol",
            "1e-6",
            "--epochs",
            "2000",
            "--json",
            "--out",
            &p("m.safetensors"),
        ],
    )));
    let (j, optimum) = (s["loss"].as_f64().unwrap(), 0.261864547218);
    assert!(((j - optimum) / optimum).abs() <= 1e-6, "J = {j}");
    let (model, _) = Model::load(Path::new(&p("m.safetensors"))).unwrap();
    assert_eq!(model.bias().len(), 10);
}

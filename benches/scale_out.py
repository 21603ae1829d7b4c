#!/usr/bin/env python3
"""Scaling out, side by side in one run: full-batch L-BFGS on one device, on two devices
in one process (`--devices vulkan,gl`: lavapipe and llvmpipe), and on two MPI ranks
(`mpirun -n 2`, each rank on lavapipe), for two shapes: n·K = 256 × 10 and 1024 × 1000.

Usage: benches/scale_out.py [BINARY]    (default target/release/softmax-regression, which
       must be built with --features mpi for the MPI rows)
Environment: SCALE_SMALL_ROWS (200000), SCALE_WIDE_ROWS (4000), SCALE_ITERATIONS (20).

Each run trains a fixed number of iterations (tol 0). It reports the binary's own clock
from after the data is read: seconds per L-BFGS iteration and per oracle call (a pass
over X), and the time spent combining partials (adding them; with ranks also gathering
them, which includes waiting for the slower rank) with its share of the run. On a machine
whose devices share the same CPU cores this measures the overhead of scaling out, not a
speed-up.
"""
import json, os, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/release/softmax-regression"
SHAPES = [
    (int(os.environ.get("SCALE_SMALL_ROWS", 200000)), 256, 10),
    (int(os.environ.get("SCALE_WIDE_ROWS", 4000)), 1024, 1000),
]
ITERATIONS = int(os.environ.get("SCALE_ITERATIONS", 20))
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def run(command, env=None):
    out = subprocess.run(command, capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)}: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def train(data, how):
    args = ["train", *data, "--l2", "1e-4", "--tol", "0", "--epochs", str(ITERATIONS),
            "--json", "--out", "/tmp/scale-out.safetensors"]
    if how == "1 device":
        command = [str(BINARY), *args, "--backend", "vulkan"]
    elif how == "2 devices":
        command = [str(BINARY), *args, "--devices", "vulkan,gl"]
    else:
        command = ["mpirun", "-n", "2", "--oversubscribe", str(BINARY), *args,
                   "--backend", "vulkan"]
    summary = run(command, MPI_ENV)[-1]
    return summary["seconds"], summary["epochs"], summary["evaluations"], summary["combining_seconds"]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'shape':<22} {'engine':<28} {'s/iteration':>11} {'s/pass':>8} "
              f"{'combining s':>11} {'share':>7}")
        for m, n, k in SHAPES:
            x, y = f"{tmp}/x{n}.npy", f"{tmp}/y{n}.npy"
            run([str(BINARY), "synth", "--rows", str(m), "--features", str(n), "--classes",
                 str(k), "--seed", "5", "--out", x, "--labels", y])
            data = ["--data", x, "--labels", y]
            for how in ["1 device", "2 devices", "2 MPI ranks"]:
                seconds, iterations, passes, combining = train(data, how)
                print(f"{f'{m} × {n} × {k}':<22} {how:<28} {seconds / iterations:>11.4f} "
                      f"{seconds / passes:>8.4f} {combining:>11.4f} {combining / seconds:>7.1%}")


if __name__ == "__main__":
    main()

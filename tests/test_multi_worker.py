"""Training a SUGAR model across 2 local processes with the backend's own
engine (torch DDP, jax.distributed + DataParallel, TF
MultiWorkerMirroredStrategy) matches single-process training."""

import os
import re
import subprocess
import sys

from tests.testing import BACKEND

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_two_processes_match_one_process():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "multi_worker.py"),
         "--backend", BACKEND, "--workers", "2"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"matches single-process training: True \(max "
                         r"weight difference (\S+)\)", last)
    assert match, last
    assert float(match.group(1)) <= 1e-5
    # The comparison is not vacuous: training moved the weights.
    moved = re.search(r"weights moved by up to (\S+)\)", proc.stdout)
    assert float(moved.group(1)) > 1e-2


def test_workers_must_divide_the_global_batch():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "multi_worker.py"),
         "--backend", BACKEND, "--workers", "3"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode != 0
    assert "--workers must divide the global batch (16)" in proc.stderr

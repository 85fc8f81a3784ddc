"""Runs the test suite once per backend, each in its own process.

Usage: python tests/run_all_backends.py [--python BACKEND=PYTHON ...]
    [pytest args...]

TensorFlow, JAX and PyTorch run the whole suite; numpy and OpenVINO, which
run inference only, the tests marked `inference` (tests/conftest.py
deselects the others). Each runs with this interpreter, or the one given
by `--python` (a virtual environment with that backend alone). Streams
each backend's pytest output as it runs (progress, failures and the
warnings summary, each line prefixed with the backend), then ends with one
line `N passed, N failed` over all backends and exits non-zero if any
backend failed.
"""

import os
import re
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def count(summary, word):
    match = re.search(rf"(\d+) {word}", summary)
    return int(match.group(1)) if match else 0


def interpreters(args):
    """`({backend: python}, pytest args)` from the leading `--python
    BACKEND=PYTHON` options."""
    pythons = dict.fromkeys(BACKENDS, sys.executable)
    while len(args) >= 2 and args[0] == "--python":
        backend, _, python = args[1].partition("=")
        if backend not in BACKENDS or not python:
            sys.exit(f"run_all_backends.py: --python takes BACKEND=PYTHON "
                     f"with BACKEND one of {list(BACKENDS)}. Received: "
                     f"--python {args[1]}")
        pythons[backend] = python
        args = args[2:]
    return pythons, args


def main(args):
    pythons, args = interpreters(args)
    totals = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    failed_backends = []
    for backend in BACKENDS:
        # Unbuffered, so the progress shows as it happens.
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONUNBUFFERED="1")
        start = time.time()
        print(f"=== {backend} ===", flush=True)
        proc = subprocess.Popen(
            [pythons[backend], "-m", "pytest", "-q", "-rfE", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        summary = ""
        for line in proc.stdout:
            print(f"[{backend}] {line}", end="", flush=True)
            if line.strip():
                summary = line.strip()
        proc.wait()
        if proc.returncode not in (0, 5):
            failed_backends.append(backend)
        print(f"{backend}: {summary} ({time.time() - start:.0f}s)",
              flush=True)
        totals["passed"] += count(summary, "passed")
        totals["failed"] += count(summary, "failed")
        totals["skipped"] += count(summary, "skipped")
        totals["errors"] += count(summary, "error")
        if proc.returncode not in (0, 5) and not count(summary, "failed"):
            totals["errors"] += 1
    failed = totals["failed"] + totals["errors"]
    print(f"all backends: {totals['passed']} passed, {failed} failed, "
          f"{totals['skipped']} skipped")
    print(f"{totals['passed']} passed, {failed} failed")
    return 1 if failed_backends or failed or not totals["passed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

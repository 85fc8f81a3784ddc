"""`compare --jobs N`: N worker processes on this machine, each claiming
and training whole runs from the shared results folder (see
`results_folder`) until none is left.

Each worker gets one accelerator where there are several (its
`CUDA_VISIBLE_DEVICES`), else its share of the CPU cores (its CPU
affinity and thread counts), set before it starts: its backend sizes its
thread pools and picks its devices from them when it starts. There are
never more workers than runs left, nor than accelerators (or, without
any, CPU cores): `worker_count` says why when it starts fewer.

A worker stops when its parent does, however the parent ends: a Ctrl-C
or SIGTERM it passes on, or its death by SIGKILL, which Linux turns into
a SIGTERM to the worker (`prctl(PR_SET_PDEATHSIG)`, as `torchrun` does);
elsewhere a thread watches the parent (as PyTorch's DataLoader workers
do). Either way the worker stops at its next safe point, its run left for
the next `--resume`.
"""

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

from keras_sugar.experiments import interruption

# How often a worker without `prctl` looks whether its parent is alive.
PARENT_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1  # From <linux/prctl.h>.

# Where Linux lists NVIDIA GPUs, read without starting a backend (which
# would take memory on the GPU the first worker needs).
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"


class WorkerFailed(RuntimeError):
    """A worker process ended with an error (printed by the worker); its
    run is free for the next `--resume`."""


def accelerators():
    """The accelerators to share out, as `CUDA_VISIBLE_DEVICES` entries:
    those it already lists, else every NVIDIA GPU; `[]` on a CPU."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device for device in visible.split(",") if device.strip()]
    if os.path.isdir(NVIDIA_GPUS):
        return [str(i) for i in range(len(os.listdir(NVIDIA_GPUS)))]
    return []


def _plural(count, word, plural=None):
    return f"{count} {word if count == 1 else plural or word + 's'}"


def worker_count(requested, runs):
    """How many workers `--jobs requested` starts for `runs` runs left:
    no more than the runs, nor than the accelerators (without any, the CPU
    cores this process may use), since another would only wait for one.

    Returns:
        `(count, note)`: `note` says why, when `count < requested` (None
        otherwise).

    Example:

    >>> worker_count(4, 1)
    (1, '--jobs 4: 1 run to train, so 1 process trains it.')
    """
    devices = accelerators()
    if devices:
        slots, what = len(devices), _plural(len(devices), "GPU")
    else:
        cores = (len(os.sched_getaffinity(0))
                 if hasattr(os, "sched_getaffinity") else os.cpu_count())
        slots = cores or 1
        what = f"{_plural(slots, 'CPU core')} (no GPU)"
    count = max(1, min(requested, runs, slots))
    if count == requested:
        return count, None
    trains = (f"so {_plural(count, 'process', 'processes')} "
              f"{'trains' if count == 1 else 'train'} "
              f"{'it' if runs == 1 else 'them'}")
    if runs <= slots:
        return count, (f"--jobs {requested}: {_plural(runs, 'run')} to "
                       f"train, {trains}.")
    return count, (f"--jobs {requested}: this machine has {what} for "
                   f"{_plural(runs, 'run')}, {trains}.")


def cpu_shares(cpus, count):
    """`cpus` cut into `count` disjoint shares, as even as can be (each
    worker its own when there are fewer cores than workers).

    Example:

    >>> cpu_shares([0, 1, 2, 3, 4], 2)
    [[0, 1], [2, 3, 4]]
    >>> cpu_shares([0, 1], 3)
    [[0], [1], [0]]
    """
    cpus = list(cpus)
    if count > len(cpus):
        return [[cpus[i % len(cpus)]] for i in range(count)]
    bounds = [len(cpus) * i // count for i in range(count + 1)]
    return [cpus[a:b] for a, b in zip(bounds, bounds[1:])]


def worker_environments(count, backend):
    """Per worker: the environment variables and CPU affinity (None: as
    this process) it starts with."""
    devices = accelerators()
    cpus = (sorted(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else None)
    plans = []
    for index in range(count):
        env = {"KERAS_BACKEND": backend}
        affinity = None
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = devices[index % len(devices)]
        else:
            if cpus:
                affinity = cpu_shares(cpus, count)[index]
            threads = len(affinity) if affinity else max(
                1, (os.cpu_count() or 1) // count)
            # Read by the backends' CPU thread pools where the affinity
            # alone is not (OpenMP in PyTorch, TensorFlow's own pools).
            env.update(OMP_NUM_THREADS=str(threads),
                       TF_NUM_INTRAOP_THREADS=str(threads),
                       TF_NUM_INTEROP_THREADS="1")
        plans.append((env, affinity))
    return plans


@contextlib.contextmanager
def _started_with(env, affinity):
    """This process's environment and affinity changed while a child
    starts (it inherits them), then put back."""
    saved = {key: os.environ.get(key) for key in env}
    before = os.sched_getaffinity(0) if affinity else None
    os.environ.update(env)
    if affinity:
        os.sched_setaffinity(0, affinity)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if affinity:
            os.sched_setaffinity(0, before)


def _signal_on_parent_death(signum):
    """Asks Linux to send `signum` to this process when its parent dies;
    False where that cannot be asked."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def watch_parent(parent, interval=PARENT_POLL_SECONDS):
    """Sends this process SIGTERM (a stop at its next safe point, see
    `interruption`) once `parent` is no longer its parent: it died, and
    the process was handed to another. Runs until then; start it in a
    daemon thread."""
    while os.getppid() == parent:
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop_with_parent(parent):
    """From now on this process stops when `parent` dies, however: a
    SIGTERM from Linux, else from a thread that watches the parent."""
    if not _signal_on_parent_death(signal.SIGTERM):
        threading.Thread(target=watch_parent, args=(parent,), daemon=True,
                         name="parent watchdog").start()
    if os.getppid() != parent:  # It died before anything watched it.
        raise SystemExit(128 + signal.SIGTERM)


def _work(train, settings, verbose, name, parent):
    # In the worker: its environment was set before it started, so Keras
    # starts there with its devices and threads.
    # A process group of its own: a Ctrl-C at the terminal reaches the
    # parent alone, which passes it on.
    os.setpgid(0, 0)
    interruption.install(second_stops=False)
    _stop_with_parent(parent)
    try:
        train(settings, verbose, name)
    except KeyboardInterrupt:
        raise SystemExit(interruption.exit_status()) from None


def run_workers(settings, verbose, train):
    """Starts one worker per item of `settings` (each for a results folder
    to resume) and waits for them all; each calls `train(settings,
    verbose, name)`, a module-level function (the workers are spawned, so
    it is pickled by name).

    A Ctrl-C or SIGTERM is passed on to the workers (each stops at its
    next safe point, its run left for the next `--resume`) and raised here
    once they have ended. If this process dies, they stop too.

    Raises:
        WorkerFailed: when a worker ended with an error.
    """
    import keras

    # Keras' progress bars of several processes would share one line.
    verbose = 2 if verbose == 2 else 0
    context = multiprocessing.get_context("spawn")
    workers = []
    plans = worker_environments(len(settings), keras.backend.backend())
    for index, (mine, (env, affinity)) in enumerate(zip(settings, plans), 1):
        process = context.Process(
            target=_work, args=(train, mine, verbose, f"worker {index}",
                                os.getpid()),
            name=f"keras-sugar compare worker {index}")
        with _started_with(env, affinity):
            process.start()
        workers.append(process)
    interrupted = False
    for process in workers:
        while process.is_alive():
            process.join(timeout=0.2)
            if interruption.requested() and not interrupted:
                interrupted = True
                for other in workers:
                    if other.is_alive():
                        os.kill(other.pid, interruption.signal_number())
    interruption.check()
    failed = [f"worker {index} (status {process.exitcode})"
              for index, process in enumerate(workers, 1)
              if process.exitcode != 0]
    if failed:
        names = ", ".join(failed)
        raise WorkerFailed(
            f"{names} ended with an error (see above); the runs they were "
            f"training are free for the next --resume.")

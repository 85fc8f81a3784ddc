"""`compare` as a cluster meets it: SIGTERM (what `timeout`, SLURM and
process managers send), worker processes that die with their parent, as
many workers as there is work and cores for, file locks checked before
they are relied on, and shards that share a folder without any lock.

Every process test waits for a sign of training in the command's own
output, never a fixed time."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from keras_sugar.experiments import cli
from keras_sugar.experiments import compare
from keras_sugar.experiments import results_folder
from tests.testing import command_line as _cli
from tests.testing import trained_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(out, *extra, epochs=100_000, seeds=1):
    """A comparison of two activations on a tiny MLP; with 100,000 epochs
    a run lasts until the test stops it."""
    return [sys.executable, "-m", "keras_sugar", "compare", "--data",
            "digits", "--model", "mlp", "--model-kwargs", "depth=1,units=8",
            "--epochs", str(epochs), "--seeds", str(seeds), "--activations",
            "relu,sugar:bsilu", "--progress", "epochs", "--out", str(out),
            *extra]


def _state(pid):
    """The process's state letter (`Z`: a zombie), or None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid):
    return _state(pid) not in (None, "Z")


def _children(pid):
    """Every live process whose parent is `pid` (Linux `/proc`)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return found


class Command:
    """The command in a child process, its output read line by line as it
    comes, so a test can wait for a sign of what it is doing."""

    def __init__(self, args, stderr_path):
        self._stderr = open(stderr_path, "w")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            # As from a terminal or a batch system: a test run started in
            # the background of a shell ignores SIGINT, and its children
            # would inherit that.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines = []
        self._changed = threading.Condition()
        self._ended = False
        threading.Thread(target=self._read, daemon=True).start()
        self.started = set()  # Every process it started, for clean-up.

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, predicate, what, timeout=300):
        """Waits until `predicate(output text)` holds."""
        deadline = time.time() + timeout
        with self._changed:
            while not predicate("".join(self.lines)):
                left = deadline - time.time()
                assert not self._ended, (f"ended before {what}:\n"
                                         + "".join(self.lines[-20:])
                                         + self.stderr()[-3000:])
                assert left > 0, f"no {what} in {timeout} s"
                self._changed.wait(left)

    def note_children(self):
        self.started.update(_children(self.proc.pid))
        return sorted(self.started)

    def stderr(self):
        if not self._stderr.closed:
            self._stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def close(self):
        """Never leaves anything running: the command, and every process it
        started (by their ids)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._stderr.close()


def _training_in_both_workers(text):
    # One run per worker, each printing Keras' epoch lines: two "Epoch 2"
    # lines are an epoch trained by each.
    return ("[worker 1] run " in text and "[worker 2] run " in text
            and text.count("Epoch 2/100000") >= 2)


def _wait_gone(pids, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and any(map(_alive, pids)):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="reads processes from Linux /proc")


@linux_only
@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_at_a_safe_point_and_says_how_to_resume(tmp_path,
                                                              jobs):
    out = tmp_path / "results"
    command = Command(_command(out, "--jobs", str(jobs)),
                      tmp_path / "stderr")
    try:
        if jobs == 1:
            command.wait_for(lambda text: "Epoch 2/100000" in text,
                             "epoch trained")
        else:
            command.wait_for(_training_in_both_workers,
                             "epoch trained by each worker")
        children = command.note_children()
        command.proc.send_signal(signal.SIGTERM)
        status = command.proc.wait(timeout=300)
        assert _wait_gone(children) == []
    finally:
        command.close()
    err = command.stderr()
    assert status == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.strip().splitlines()[-1] == (
        f"Interrupted. Finished runs: 0 of 2, kept in "
        f"{out / 'runs.jsonl'}: run the same command with --resume to "
        f"train the rest.")
    assert (out / "config.json").exists()
    # The claims were let go: a resume takes every run.
    folder = results_folder.ResultsFolder(str(out))
    with folder.claim([("relu", 0)]) as claim:
        assert claim.key == ("relu", 0)


@linux_only
def test_workers_stop_when_their_parent_is_killed(tmp_path):
    """`kill -9` of the command (or an out-of-memory kill) leaves no
    worker training on, nor the resource tracker."""
    out = tmp_path / "results"
    command = Command(_command(out, "--jobs", "2"), tmp_path / "stderr")
    try:
        command.wait_for(_training_in_both_workers,
                         "epoch trained by each worker")
        children = command.note_children()
        assert len(children) >= 2, children  # Two workers (and a tracker).
        command.proc.send_signal(signal.SIGKILL)
        command.proc.wait()
        assert _wait_gone(children) == [], "outlived their parent"
    finally:
        command.close()
    assert not (out / "runs.jsonl").exists() or (
        out / "runs.jsonl").read_text() == ""


# A worker where Linux's parent-death signal is not to be had: its thread
# watches the parent (started by the parent below, which then dies).
_WATCHED_WORKER = """
import os, sys, threading, time
from keras_sugar.experiments import interruption, jobs
interruption.install(second_stops=False)
threading.Thread(target=jobs.watch_parent, args=(os.getppid(), 0.05),
                 daemon=True).start()
print("watching", flush=True)
try:
    while True:
        time.sleep(0.05)
        interruption.check()
except KeyboardInterrupt:
    sys.exit(interruption.exit_status())
"""
_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(3600)
"""


@linux_only
def test_without_prctl_a_worker_watches_its_parent(tmp_path):
    parent = Command([sys.executable, "-c", _PARENT, _WATCHED_WORKER],
                     tmp_path / "stderr")
    try:
        parent.wait_for(lambda text: text.strip(), "the worker's id")
        worker = int(parent.lines[0])
        parent.started.add(worker)
        deadline = time.time() + 300
        while "watching" not in parent.stderr() + "".join(parent.lines):
            assert time.time() < deadline and _alive(worker)
            time.sleep(0.05)
        parent.proc.send_signal(signal.SIGKILL)
        parent.proc.wait()
        assert _wait_gone([worker]) == [], "outlived its parent"
    finally:
        parent.close()
    assert "SIGTERM: stopping at the next safe point" in parent.stderr()


def _small_cli(out, *extra):
    return ["compare", "--data", "digits", "--model", "mlp",
            "--model-kwargs", "depth=1,units=8", "--epochs", "1",
            "--activations", "relu", "--seeds", "1", "--quiet", "--out",
            str(out), *extra]


def test_jobs_starts_no_more_workers_than_runs(tmp_path, capfd):
    status = cli.main(_small_cli(tmp_path / "results", "--jobs", "4"))
    out = capfd.readouterr().out
    assert status == 0
    assert "--jobs 4: 1 run to train, so 1 process trains it" in out
    assert "[worker" not in out  # This process trained it.
    assert len(results_folder.ResultsFolder(
        str(tmp_path / "results")).runs()) == 1


def test_jobs_starts_no_more_workers_than_cores(tmp_path, capfd,
                                                 monkeypatch):
    from keras_sugar.experiments import jobs

    monkeypatch.setattr(jobs, "accelerators", lambda: [])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0},
                        raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    status = cli.main(_small_cli(tmp_path / "results", "--jobs", "3",
                                 "--seeds", "3"))
    out = capfd.readouterr().out
    assert status == 0
    assert ("--jobs 3: this machine has 1 CPU core (no GPU) for 3 runs, "
            "so 1 process trains them") in out
    assert "[worker" not in out


@pytest.mark.parametrize("devices, cores, requested, runs, expected", [
    (["0", "1"], 16, 4, 6, (2, "--jobs 4: this machine has 2 GPUs for 6 "
                            "runs, so 2 processes train them.")),
    (["0", "1"], 16, 2, 6, (2, None)),
    ([], 2, 64, 10, (2, "--jobs 64: this machine has 2 CPU cores (no GPU) "
                     "for 10 runs, so 2 processes train them.")),
    ([], 8, 4, 3, (3, "--jobs 4: 3 runs to train, so 3 processes train "
                   "them.")),
])
def test_the_number_of_workers_and_what_it_says(
        monkeypatch, devices, cores, requested, runs, expected):
    from keras_sugar.experiments import jobs

    monkeypatch.setattr(jobs, "accelerators", lambda: devices)
    monkeypatch.setattr(os, "sched_getaffinity",
                        lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert jobs.worker_count(requested, runs) == expected


def _break_flock(monkeypatch, behaviour):
    real = fcntl.flock

    def flock(fd, operation):
        if behaviour == "fails":  # NFS without its lock daemon.
            raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
        if operation & fcntl.LOCK_UN:
            return real(fd, operation)
        return None  # Every lock granted: nothing excludes anything.

    monkeypatch.setattr(fcntl, "flock", flock)


@pytest.mark.parametrize("behaviour, message", [
    ("fails", "file locks fail there ([Errno {}] No locks available)"
     .format(errno.ENOLCK)),
    ("does not exclude", "file locks there do not exclude one another"),
])
def test_a_folder_without_working_locks_is_refused_in_one_line(
        tmp_path, capsys, monkeypatch, behaviour, message):
    monkeypatch.setattr(compare.Trainer, "run", None)  # Must not be reached.
    _break_flock(monkeypatch, behaviour)
    out = tmp_path / "results"
    status, stdout, err = _cli(_small_cli(out), capsys)
    assert status == 2, err
    assert "Traceback" not in err and "starting Keras" not in stdout
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert f"--out {out}: {message}" in line
    assert "--shard" in line  # The lock-free way.
    assert not out.exists()


def _keys(runs):
    return sorted((run.activation, run.seed) for run in runs)


def test_shards_share_a_folder_without_any_lock(tmp_path, capsys,
                                                monkeypatch):
    """A SLURM array's tasks, on a filesystem without working locks: each
    shard trains its own runs, the last to end builds the table."""
    trained = trained_runs(monkeypatch)
    _break_flock(monkeypatch, "fails")
    out = tmp_path / "shared"
    args = ["compare", "--data", "digits", "--model", "mlp",
            "--model-kwargs", "depth=1,units=8", "--epochs", "1",
            "--activations", "relu,gelu", "--seeds", "2", "--quiet", "--out",
            str(out)]
    # Runs in the order (activation, seed): index % 2 picks the shard.
    order = [(a, s) for a in ("relu", "gelu") for s in (0, 1)]
    status, stdout, err = _cli([*args, "--shard", "1/2"], capsys)
    assert status == 0, err
    assert trained == order[1::2]
    assert "Finished runs: 2 of 4" in stdout
    assert not (out / "results.json").exists()
    trained.clear()
    status, stdout, err = _cli([*args, "--shard", "0/2"], capsys)
    assert status == 0, err
    assert trained == order[0::2]
    assert "vs relu [95% CI]" in stdout  # The last shard: the table.
    with open(out / "results.json") as f:
        assert len(json.load(f)["runs"]) == 4
    # Bit for bit the runs one process trains.
    monkeypatch.undo()
    _, alone = compare.run(
        data="digits", model="mlp", depth=1, units=8, epochs=1,
        activations=("relu", "gelu"), seeds=2, verbose=0)
    sharded = results_folder.ResultsFolder(str(out)).runs()
    assert _keys(sharded) == _keys(alone)
    by_key = {run.key: run for run in sharded}
    for run in alone:
        assert by_key[run.key].curves == run.curves
    # A later --resume (locks working) finds every run: nothing to train.
    monkeypatch.setattr(compare.Trainer, "run", None)
    status, stdout, err = _cli([*args, "--resume"], capsys)
    assert status == 0, err
    assert "vs relu [95% CI]" in stdout


_SHARD_WITHOUT_LOCKS = """
import errno, fcntl, os, sys
def flock(fd, operation):
    raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
fcntl.flock = flock  # A filesystem mounted without flock.
from keras_sugar.experiments import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_shards_started_together_train_each_run_once(tmp_path):
    out = tmp_path / "shared"
    args = ["compare", "--data", "digits", "--model", "mlp",
            "--model-kwargs", "depth=1,units=8", "--epochs", "1",
            "--activations", "relu,sugar:bsilu", "--seeds", "2", "--quiet",
            "--out", str(out)]
    procs = [subprocess.Popen(
        [sys.executable, "-c", _SHARD_WITHOUT_LOCKS, *args, "--shard",
         f"{k}/2"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for k in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr[-3000:]
    runs = results_folder.ResultsFolder(str(out)).runs()
    assert _keys(runs) == sorted((a, s) for a in ("relu", "sugar:bsilu")
                                 for s in range(2))
    # Each run trained once, by its own shard.
    assert sum(stdout.count(": test accuracy") for stdout, _ in outputs) == 4
    with open(out / "results.json") as f:
        assert len(json.load(f)["runs"]) == 4
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


@pytest.mark.parametrize("shard, message", [
    ("2/2", "argument --shard: '2/2' is not K/N with 0 <= K < N"),
    ("1", "argument --shard: '1' is not K/N with 0 <= K < N"),
    ("-1/2", "argument --shard: '-1/2' is not K/N with 0 <= K < N"),
    ("a/b", "argument --shard: 'a/b' is not K/N with 0 <= K < N"),
    ("0/0", "argument --shard: '0/0' is not K/N with 0 <= K < N"),
])
def test_a_bad_shard_is_one_line(tmp_path, capsys, shard, message):
    status, stdout, err = _cli(_small_cli(tmp_path / "r", f"--shard={shard}"),
                               capsys)
    assert status == 2 and message in err and "Traceback" not in err


def test_a_shard_needs_a_folder_and_never_overwrites(tmp_path, capsys):
    args = ["compare", "--data", "digits", "--shard", "0/2"]
    status, _, err = _cli(args, capsys)
    assert status == 2 and "--shard 0/2 needs --out" in err
    status, _, err = _cli([*args, "--out", str(tmp_path), "--overwrite"],
                          capsys)
    assert status == 2 and "--shard and --overwrite" in err

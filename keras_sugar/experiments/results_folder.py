"""A comparison's folder on disk: its configuration and one JSON line per
finished run, appended the moment the run ends.

A crash, Ctrl-C or a killed process loses only the run in progress;
`resume` picks up the finished ones. Tables and plots are rebuilt from
what is here, never from memory alone.

Any number of processes may share one folder (`--resume`, `--jobs`, a
cluster array over a shared filesystem). Every read and write of the
folder's files happens under one lock, `runs.jsonl.lock`. A process
claims a run by holding the run's own lock, `claims/<key>.lock`, for as
long as it trains it, and appends the run before letting go: a run on
disk is finished, a run whose lock is held is being trained, and any
other run is free, whether never started or started by a process that
died (the operating system releases a dead process's locks). A claim's
file is removed once it is released, under the folder's lock (every claim
is tried under it, so no process holds or opens the file then): a finished
comparison leaves no lock files in `claims/`. Both are
`filelock` locks (`flock`); on a shared filesystem it must support them
(NFS does; Lustre needs the `flock` mount option).
"""

import hashlib
import importlib
import json
import os

CONFIG = "config.json"
RUNS = "runs.jsonl"
# Every file a comparison writes; `overwrite` removes only these.
OUTPUTS = (CONFIG, RUNS, "results.json", "results.csv", "comparison.png")
LOCK = RUNS + ".lock"
CLAIMS = "claims"
# Settings that change what a run produces: a resumed comparison must use
# the same ones (activations and seeds may differ, to add runs).
SAME_ON_RESUME = ("backend", "data", "model", "model_source",
                  "model_kwargs", "epochs", "batch_size", "lr", "momentum",
                  "validation")


def check(path, overwrite=False, resume=False):
    """Fails, before any training, on a folder that cannot take results.

    Refuses a path that is a file, a folder that cannot be written, a
    folder that already holds a comparison unless `overwrite` (start over)
    or `resume` (keep its finished runs) is given, a `config.json` that
    cannot be read back to resume, and any of `OUTPUTS` already there that
    could not be written when the time comes (a folder, a read-only file).

    Raises:
        ValueError: naming the path and what to do.
    """
    if overwrite and resume:
        raise ValueError("--overwrite and --resume contradict each other: "
                         "choose one.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {path} is a file; results go in a folder.")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path}: cannot write in {existing}.")
    if has_results(path) and not (overwrite or resume):
        raise ValueError(
            f"--out {path} already holds a comparison ({CONFIG}/{RUNS}). "
            f"Add --resume to keep its finished runs and run the rest, or "
            f"--overwrite to start over.")
    for name in OUTPUTS:
        file = os.path.join(path, name)
        if os.path.isdir(file):
            raise ValueError(f"--out {path}: {file} is a folder, where the "
                             f"comparison writes a file. Move it away, or "
                             f"use another --out.")
        # --overwrite removes these files first: the folder's permission
        # is what counts then, checked above.
        if (not overwrite and os.path.exists(file)
                and not os.access(file, os.W_OK)):
            raise ValueError(f"--out {path}: {file} is read-only. Make it "
                             f"writable, or use another --out.")
    if resume and os.path.exists(os.path.join(path, CONFIG)):
        read_config(path)


def read_config(path):
    """The settings saved in `path`'s `config.json`.

    Raises:
        ValueError: naming the file, when it is not a JSON object (cut
            short, emptied, or not a comparison's).
    """
    file = os.path.join(path, CONFIG)
    with open(file) as f:
        text = f.read()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        reason = "it is empty" if not text.strip() else f"not JSON: {error}"
    else:
        if isinstance(config, dict):
            return config
        reason = f"not a JSON object of settings but a {type(config).__name__}"
    raise ValueError(
        f"Cannot resume {path}: {file} cannot be read ({reason}), so the "
        f"settings of its runs are unknown. Use --overwrite to start over "
        f"(its runs are then removed), or another --out.")


def _filelock():
    # Imported when a folder is used: `--help` and runs without --out work
    # without the `data` extra.
    try:
        return importlib.import_module("filelock")
    except ImportError as error:
        if error.name != "filelock":
            raise
        raise ImportError("A results folder (--out) needs the 'filelock' "
                          "package: pip install \"keras-sugar[data]\"") from error


def has_results(path):
    return any(os.path.exists(os.path.join(path, name))
               for name in (CONFIG, RUNS))


class ResultsFolder:
    """The files of one comparison in `path`.

    Args:
        path: The folder (created if needed).
    """

    def __init__(self, path):
        self.path = path
        self._filelock = _filelock()
        # Reentrant: a method holding it may call another that takes it.
        self.lock = self._filelock.FileLock(self.file(LOCK))

    def file(self, name):
        return os.path.join(self.path, name)

    def start(self, config, overwrite=False, resume=False):
        """Prepares the folder for `config` and returns the finished runs
        to keep (only with `resume`).

        Raises:
            ValueError: resuming a comparison whose settings differ (names
                each differing setting), or, without `resume`, a folder
                another process started meanwhile.
        """
        check(self.path, overwrite, resume)
        os.makedirs(self.path, exist_ok=True)
        with self.lock:
            # Again under the lock: two processes may have passed `check`
            # together.
            check(self.path, overwrite, resume)
            if overwrite:
                for name in OUTPUTS:
                    if os.path.exists(self.file(name)):
                        os.remove(self.file(name))
            finished = []
            if resume and has_results(self.path):
                finished = self._check_same_settings(config)
            # Written first: a folder that cannot take files fails here,
            # not after the first run.
            self.write(CONFIG, json.dumps(config, indent=2))
        return finished

    def claim(self, keys):
        """Claims the first of `keys` (`(activation, seed)` pairs) that is
        neither on disk nor claimed by a live process.

        Returns:
            A `Claim`: its `key` is None when nothing is left to claim.
            Release it (`with claim:`) after `append`-ing its run.
        """
        with self.lock:
            done = {(run["activation"], run["seed"]) for run in self.runs()}
            done = [key for key in keys if key in done]
            busy = []
            for key in keys:
                if key in done:
                    continue
                os.makedirs(self.file(CLAIMS), exist_ok=True)
                lock = self._filelock.FileLock(self._claim_file(key),
                                               timeout=0)
                try:
                    lock.acquire()
                except self._filelock.Timeout:
                    busy.append(key)  # Being trained by a live process.
                    continue
                return Claim(key, lock, len(done), len(busy), self.lock)
            return Claim(None, None, len(done), len(busy))

    def _claim_file(self, key):
        digest = hashlib.sha1(json.dumps(list(key)).encode()).hexdigest()
        return os.path.join(self.file(CLAIMS), digest[:16] + ".lock")

    def _check_same_settings(self, config):
        if not os.path.exists(self.file(CONFIG)):
            raise ValueError(
                f"Cannot resume {self.path}: it has {RUNS} but not the "
                f"{CONFIG} that says which settings made them. Use another "
                f"--out, or --overwrite.")
        saved = read_config(self.path)
        config = json.loads(json.dumps(config))  # Tuples read as lists.
        differ = [f"{key}: {saved.get(key)!r} on disk, {config.get(key)!r} "
                  f"now" for key in SAME_ON_RESUME
                  if saved.get(key) != config.get(key)]
        if differ:
            raise ValueError(
                f"Cannot resume {self.path}: its runs used other settings "
                f"({'; '.join(differ)}). Use another --out, or "
                f"--overwrite.")
        return self.runs()

    def append(self, run):
        """Adds one finished run, flushed to disk before returning."""
        with self.lock:
            # A line another process left cut short is dropped first, so
            # this record starts a line of its own.
            self._read_runs()
            with open(self.file(RUNS), "a") as f:
                f.write(json.dumps(run) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def runs(self):
        """The finished runs on disk. A last line cut short (the process
        was killed while writing it) is dropped from the file."""
        with self.lock:
            return self._read_runs()

    def _read_runs(self):
        if not os.path.exists(self.file(RUNS)):
            return []
        with open(self.file(RUNS)) as f:
            lines = f.read().splitlines()
        runs = []
        for number, line in enumerate(lines, 1):
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(
                        f"{self.file(RUNS)} line {number} is not a JSON "
                        f"run record: {line[:80]!r}") from None
                # Drop the torn line, replacing the file at once: a kill
                # now loses nothing that was finished.
                self.write(RUNS, "".join(line + "\n" for line in lines[:-1]))
        return runs

    def write(self, name, text):
        """Replaces file `name` with `text` at once: a reader sees the old
        file or the new one, never half of it."""
        temporary = self.file(f".{name}.{os.getpid()}.tmp")
        with open(temporary, "w", newline="") as f:
            f.write(text)
        os.replace(temporary, self.file(name))


class Claim:
    """A run claimed by this process (see `ResultsFolder.claim`), with how
    many of the requested runs were on disk (`done`) and being trained
    elsewhere (`busy`, those before it) when it was claimed."""

    def __init__(self, key, lock, done, busy, folder_lock=None):
        self.key, self._lock, self.done, self.busy = key, lock, done, busy
        self._folder_lock = folder_lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._lock is None:
            return
        with self._folder_lock:  # No other process is claiming meanwhile.
            self._lock.release()
            os.remove(self._lock.lock_file)
            claims = os.path.dirname(self._lock.lock_file)
            if not os.listdir(claims):
                os.rmdir(claims)

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
(NFS does; Lustre needs the `flock` mount option): `check_locks` tries
one before they are relied on.

Shards need no lock at all (`--shard K/N`, for filesystems without
working locks): each process trains a fixed share of the runs and appends
them to a file of its own, `runs.shard-K-of-N.jsonl`; the folder's runs
are those of every runs file, and whoever finds them complete writes the
table (files are replaced whole, under names no other process uses).
"""

import contextlib
import errno
import glob
import hashlib
import importlib
import json
import os
import socket
import tempfile

from keras_sugar.experiments.run_result import RunResult

CONFIG = "config.json"
RUNS = "runs.jsonl"
# A shard's own runs file (`--shard K/N`).
SHARD_RUNS = "runs.shard-{}-of-{}.jsonl"
# Every file a comparison writes; `overwrite` removes only these (and the
# shards' runs files).
OUTPUTS = (CONFIG, RUNS, "results.json", "results.csv", "comparison.png")
LOCK = RUNS + ".lock"
CLAIMS = "claims"
# `flock` errors that mean "held by another", not "not supported".
_CONTENTION = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


class WriteFailed(OSError):
    """A file of the folder could not be written (a full disk, a quota):
    what was on disk before is kept whole."""
# Settings that change what a run produces: a resumed comparison must use
# the same ones (activations and seeds may differ, to add runs).
SAME_ON_RESUME = ("backend", "data", "model", "model_source",
                  "model_kwargs", "epochs", "batch_size", "lr", "momentum",
                  "validation")


def _existing(path):
    """`path`, or the nearest of its parent folders that exists."""
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    return existing


def check(path, overwrite=False, resume=False):
    """Fails, before any training, on a folder that cannot take results.

    Refuses a path that is a file, a folder that cannot be written, a
    folder that already holds a comparison unless `overwrite` (start over)
    or `resume` (keep its finished runs; shards pass it) is given, a
    `config.json` that cannot be read back to resume, and any of `OUTPUTS`
    already there that could not be written when the time comes (a
    folder, a read-only file).

    Raises:
        ValueError: naming the path and what to do.
    """
    if overwrite and resume:
        raise ValueError("--overwrite and --resume contradict each other: "
                         "choose one.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {path} is a file; results go in a folder.")
    existing = _existing(path)
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


def check_locks(path):
    """Refuses `path` where file locks do not work, before any process
    relies on them to share its runs: a lock must be granted, and a second
    one on the same file refused (`flock`, what `filelock` uses; where the
    filesystem lacks it, as Lustre without the `flock` mount option or NFS
    without its lock service, they fail or exclude nothing). Tried on a
    file of its own in `path`, or in its nearest existing parent folder
    (the folder is made later).

    Raises:
        ValueError: naming the path, what failed, and the lock-free way.
    """
    try:
        import fcntl
    except ImportError:
        return  # Windows: filelock's own locks, on local disks.
    existing = _existing(path)
    lock_free = ("use --shard K/N, which needs no locks (see --help), or "
                 "an --out where they work")
    try:
        fd, probe = tempfile.mkstemp(prefix=".keras-sugar-lock-check-",
                                     dir=existing)
    except OSError as error:
        raise ValueError(f"--out {path}: cannot write in {existing} "
                         f"({error}).") from None
    try:
        other = os.open(probe, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                raise ValueError(
                    f"--out {path}: file locks fail there ({error}), so "
                    f"processes sharing it cannot claim runs: "
                    f"{lock_free}.") from None
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno in _CONTENTION:
                    return  # Refused: locks work.
                raise ValueError(
                    f"--out {path}: file locks fail there ({error}), so "
                    f"processes sharing it cannot claim runs: "
                    f"{lock_free}.") from None
            raise ValueError(
                f"--out {path}: file locks there do not exclude one "
                f"another (a second lock on a locked file was granted), so "
                f"processes sharing it would train the same runs and write "
                f"over each other: {lock_free}.")
        finally:
            os.close(other)
    finally:
        os.close(fd)
        os.remove(probe)


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


def _shard_runs_files(path):
    return sorted(glob.glob(os.path.join(
        glob.escape(path), SHARD_RUNS.format("*", "*"))))


def has_results(path):
    return bool(any(os.path.exists(os.path.join(path, name))
                    for name in (CONFIG, RUNS)) or _shard_runs_files(path))


class ResultsFolder:
    """The files of one comparison in `path`.

    Args:
        path: The folder (created if needed).
        shard: `(k, n)`: this process is shard k of n (see `claim`), and
            uses no lock; None: runs are claimed under file locks.
    """

    def __init__(self, path, shard=None):
        self.path, self.shard = path, shard
        if shard is None:
            self._filelock = _filelock()
            # Reentrant: a method holding it may call another that takes
            # it.
            self.lock = self._filelock.FileLock(self.file(LOCK))
            self.runs_file = self.file(RUNS)
        else:
            self.lock = contextlib.nullcontext()
            self.runs_file = self.file(SHARD_RUNS.format(*shard))

    def file(self, name):
        return os.path.join(self.path, name)

    def start(self, config, overwrite=False, resume=False):
        """Prepares the folder for `config` and returns the finished runs
        to keep (only with `resume`, which shards imply).

        Raises:
            ValueError: resuming a comparison whose settings differ (names
                each differing setting), or, without `resume`, a folder
                another process started meanwhile.
            WriteFailed: when `config.json` cannot be written.
        """
        resume = resume or self.shard is not None
        check(self.path, overwrite, resume)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise WriteFailed(f"Cannot make {self.path}: {error}") from None
        with self.lock:
            # Again under the lock: two processes may have passed `check`
            # together.
            check(self.path, overwrite, resume)
            if overwrite:
                for name in OUTPUTS:
                    if os.path.exists(self.file(name)):
                        os.remove(self.file(name))
                for name in _shard_runs_files(self.path):
                    os.remove(name)
            finished = []
            if resume and has_results(self.path):
                finished = self._check_same_settings(config)
            # Written first: a folder that cannot take files fails here,
            # not after the first run.
            self.write(CONFIG, json.dumps(config, indent=2))
        return finished

    def claim(self, keys):
        """Claims the first of `keys` (`(activation, seed)` pairs, in their
        fixed order) that is not on disk and that this process may train:
        one no live process has claimed (its lock is free), or, for shard
        k of n, one whose index in `keys` is k modulo n.

        Returns:
            A `Claim`: its `key` is None when nothing is left to claim.
            Release it (`with claim:`) after `append`-ing its run.
        """
        if self.shard is not None:
            return self._claim_in_shard(keys)
        with self.lock:
            done = self._done(keys)
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

    def _claim_in_shard(self, keys):
        k, n = self.shard
        done = self._done(keys)
        for key in keys[k::n]:
            if key not in done:
                return Claim(key, None, len(done), 0)
        return Claim(None, None, len(done), 0)

    def _done(self, keys):
        on_disk = {run.key for run in self.runs()}
        return {key for key in keys if key in on_disk}

    def _claim_file(self, key):
        digest = hashlib.sha1(json.dumps(list(key)).encode()).hexdigest()
        return os.path.join(self.file(CLAIMS), digest[:16] + ".lock")

    def _check_same_settings(self, config):
        if not os.path.exists(self.file(CONFIG)):
            raise ValueError(
                f"Cannot resume {self.path}: it has runs but not the "
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
        """Adds one finished `RunResult` to this process's runs file,
        flushed to disk before returning.

        Raises:
            WriteFailed: when it cannot be written whole; the file is left
                as it was.
        """
        data = (json.dumps(run.to_json()) + "\n").encode()
        with self.lock:
            # A line this file was left with cut short is dropped first, so
            # this record starts a line of its own.
            self._read_runs(self.runs_file, repair=True)
            fd = os.open(self.runs_file, os.O_WRONLY | os.O_APPEND
                         | os.O_CREAT, 0o666)
            size = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError as error:
                # A part written would be a torn line: cut it off
                # (truncating needs no space).
                os.ftruncate(fd, size)
                raise WriteFailed(f"Cannot write {self.runs_file}: "
                                  f"{error}") from None
            finally:
                os.close(fd)

    def runs(self):
        """The finished runs on disk, every runs file's (`RUNS`, then the
        shards'), each run once. A last line cut short (a process was
        killed while writing it) is dropped from this process's own file;
        in another's it may be the line being written, and is skipped."""
        with self.lock:
            runs = {}
            for path in [self.file(RUNS), *_shard_runs_files(self.path)]:
                repair = path == self.runs_file
                for run in self._read_runs(path, repair):
                    runs.setdefault(run.key, run)
            return list(runs.values())

    def _read_runs(self, path, repair):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            lines = f.read().splitlines()
        runs = []
        for number, line in enumerate(lines, 1):
            try:
                runs.append(RunResult.from_json(json.loads(line)))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(
                        f"{path} line {number} is not a JSON run record: "
                        f"{line[:80]!r}") from None
                if repair:
                    # Drop the torn line, replacing the file at once: a kill
                    # now loses nothing that was finished.
                    self.write(os.path.basename(path), "".join(
                        line + "\n" for line in lines[:-1]))
            except ValueError as error:
                raise ValueError(f"{path} line {number}: {error}") from None
        return runs

    def write(self, name, data):
        """Replaces file `name` with `data` (text or bytes) at once: a
        reader sees the old file or the new one, never half of it.

        Raises:
            WriteFailed: when it cannot be written; the old file is kept
                and nothing is left behind.
        """
        # A name no other process uses, on this machine or another.
        temporary = self.file(
            f".{name}.{socket.gethostname()}.{os.getpid()}.tmp")
        mode = "wb" if isinstance(data, bytes) else "w"
        try:
            with open(temporary, mode, **({} if mode == "wb" else {
                    "newline": ""})) as f:
                f.write(data)
            os.replace(temporary, self.file(name))
        except OSError as error:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise WriteFailed(f"Cannot write {self.file(name)}: "
                              f"{error}") from None


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

"""A comparison's folder on disk: its configuration and one JSON line per
finished run, appended the moment the run ends.

A crash, Ctrl-C or a killed process loses only the run in progress;
`resume` picks up the finished ones. Tables and plots are rebuilt from
what is here, never from memory alone.
"""

import json
import os

CONFIG = "config.json"
RUNS = "runs.jsonl"
# Every file a comparison writes; `overwrite` removes only these.
OUTPUTS = (CONFIG, RUNS, "results.json", "results.csv", "comparison.png")
# Settings that change what a run produces: a resumed comparison must use
# the same ones (activations and seeds may differ, to add runs).
SAME_ON_RESUME = ("backend", "data", "model", "model_kwargs", "epochs",
                  "batch_size", "lr", "momentum")


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

    def file(self, name):
        return os.path.join(self.path, name)

    def start(self, config, overwrite=False, resume=False):
        """Prepares the folder for `config` and returns the finished runs
        to keep (only with `resume`).

        Raises:
            ValueError: resuming a comparison whose settings differ (names
                each differing setting).
        """
        check(self.path, overwrite, resume)
        os.makedirs(self.path, exist_ok=True)
        if overwrite:
            for name in OUTPUTS:
                if os.path.exists(self.file(name)):
                    os.remove(self.file(name))
        finished = []
        if resume and has_results(self.path):
            finished = self._check_same_settings(config)
        # Written first: a folder that cannot take files fails here, not
        # after the first run.
        self._write_json(CONFIG, config)
        return finished

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
        with open(self.file(RUNS), "a") as f:
            f.write(json.dumps(run) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def runs(self):
        """The finished runs on disk. A last line cut short (the process
        was killed while writing it) is dropped from the file."""
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
                with open(self.file(RUNS), "w") as f:  # Drop the torn line.
                    f.writelines(line + "\n" for line in lines[:-1])
        return runs

    def _write_json(self, name, value):
        with open(self.file(name), "w") as f:
            json.dump(value, f, indent=2)

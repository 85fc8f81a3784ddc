"""Train one architecture with several activations over several seeds and
tabulate test accuracy, dead units, sparsity and time, like the paper, with
each activation's paired difference from the first one.

Run: `keras-sugar compare` (see `keras-sugar compare --help`). Several
processes may share the runs of one results folder (`--jobs`, several
commands with `--resume`, or `--shard K/N` without file locks: see
`results_folder` and `jobs`).
"""

import csv
import functools
import io
import json
import statistics
import sys
import time

import keras
import numpy as np

from keras_sugar import diagnostics
from keras_sugar.activations import SugarReLU
from keras_sugar.experiments import compare_command
from keras_sugar.experiments import comparison_table
from keras_sugar.experiments import datasets
from keras_sugar.experiments import interruption
from keras_sugar.experiments import jobs
from keras_sugar.experiments import results_folder
from keras_sugar.experiments import user_models
from keras_sugar.experiments.compare_settings import ActivationSpec
from keras_sugar.experiments.compare_settings import Settings
from keras_sugar.experiments.run_result import CSV_FIELDS
from keras_sugar.experiments.run_result import RunResult


def parse_activation(spec):
    """Turns a spec into a Keras activation.

    `"relu"`, `"gelu"` (any Keras activation name), or
    `"sugar:<surrogate>[:param=value,...]"` for a `SugarReLU` (see
    `compare_settings.ActivationSpec`).

    Example:

    >>> parse_activation("sugar:nelu:alpha=0.1")
    SugarReLU('nelu', alpha=0.1)
    """
    if not isinstance(spec, ActivationSpec):
        spec = ActivationSpec.parse(spec)
    if spec.surrogate is None:
        return keras.activations.get(spec.text)
    return SugarReLU(spec.surrogate, **spec.params)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class _StopOnCtrlC(keras.callbacks.Callback):
    """Ends `fit` at the next batch once a Ctrl-C was recorded (see
    `interruption`): between two steps, never inside one."""

    def on_train_batch_end(self, batch, logs=None):
        interruption.check()

    def on_test_batch_end(self, batch, logs=None):
        interruption.check()


class _RunProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting the epochs of the whole run: each
    epoch is its own `fit` call (see `Trainer.run`)."""

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.run_epochs})


def build(model, dataset, activation, **model_kwargs):
    """Builds `model` (a name of `architectures.BUILDERS`, or a model of
    the user's: see `user_models`) for `dataset` with `activation`."""
    return user_models.build(model, dataset.input_shape,
                             dataset.num_classes, activation, **model_kwargs)


class Trainer:
    """One activation's model, built and compiled once for all seeds.

    Each seed resets the weights to those a model freshly built with that
    seed starts from (the same for every activation) and the optimizer to
    its initial state, and each epoch's batches come from the seed and the
    epoch alone; so a run is the same as with a new model, but the train
    and test functions are compiled once per activation, not once per run
    (on JAX that is most of a short run's time).

    Args:
        dataset: A `datasets.Dataset`.
        settings: The comparison's `compare_settings.Settings`: its model
            (see `user_models`) and model keywords, learning rate, momentum, epochs and batch.
        spec: The activation, one of `settings.specs`
            (`compare_settings.ActivationSpec`).
        probe_size: Training examples the dead units are measured on.
            Defaults to `1024`.
    """

    def __init__(self, dataset, settings, spec, probe_size=1024):
        self.dataset, self.settings, self.spec = dataset, settings, spec
        self._build = functools.partial(build, settings.model, dataset,
                                        parse_activation(spec),
                                        **settings.model_kwargs)
        self.model = self._build()
        # A saved model starts every seed from its own weights.
        self._saved_weights = (self.model.get_weights() if
                               user_models.starts_from_saved_weights(
                                   settings.model)
                               else None)
        self.model.compile(
            optimizer=keras.optimizers.SGD(settings.lr,
                                           momentum=settings.momentum),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"])
        optimizer = self.model.optimizer
        optimizer.build(self.model.trainable_variables)
        self._optimizer_start = [keras.ops.convert_to_numpy(v)
                                 for v in optimizer.variables]
        self._monitor = None
        if diagnostics.rectified_sites(self.model):
            self._monitor = diagnostics.DeadUnitMonitor(
                dataset.x_train[:probe_size], per_layer=False)

    def reset(self, seed):
        """Sets the weights a model built with `seed` starts from, and the
        optimizer's initial state; seeds the data shuffling."""
        keras.utils.set_random_seed(seed)
        self.model.set_weights(self._saved_weights or
                               self._build().get_weights())
        for variable, value in zip(self.model.optimizer.variables,
                                   self._optimizer_start):
            variable.assign(value)

    def run(self, seed, verbose=1):
        """Trains from `seed`'s initial weights for the settings' epochs;
        returns the run's `RunResult`, with its per-epoch curves."""
        start = time.perf_counter()
        self.reset(seed)
        data, epochs = self.dataset, self.settings.epochs
        batch_size = self.settings.batch_size
        timer = _EpochTimer()
        callbacks = [timer, _StopOnCtrlC()] + (
            [self._monitor] if self._monitor else [])
        if verbose:
            callbacks.append(_RunProgbar(epochs))
        # With a validation split the epoch is chosen on it and the test
        # split is evaluated after each epoch; without, it is the last.
        validation = (data.x_val, data.y_val) if data.x_val is not None else (
            data.x_test, data.y_test)
        history = {}
        for epoch in range(epochs):
            # The batches are drawn here, from the seed and epoch alone:
            # every activation sees the same ones, whatever ran before.
            order = np.random.default_rng([seed, epoch]).permutation(
                len(data.x_train))
            logs = self.model.fit(
                data.x_train[order], data.y_train[order],
                batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch,
                shuffle=False, verbose=verbose, callbacks=callbacks,
                validation_data=validation).history
            interruption.check()  # The dead units were measured last.
            if data.x_val is not None:
                test = self.model.evaluate(
                    data.x_test, data.y_test, batch_size=batch_size,
                    verbose=0, callbacks=[_StopOnCtrlC()], return_dict=True)
                logs["test_accuracy"] = [test["accuracy"]]
                logs["test_loss"] = [test["loss"]]
            else:
                logs["test_accuracy"] = logs["val_accuracy"]
                logs["test_loss"] = logs["val_loss"]
            for key, values in logs.items():
                history.setdefault(key, []).extend(values)
        steady = timer.seconds[1:] or timer.seconds  # The first compiles.
        # The first epoch of best validation accuracy (the last epoch
        # without a validation split): never chosen on the test split.
        chosen = (int(np.argmax(history["val_accuracy"]))
                  if data.x_val is not None else epochs - 1)
        return RunResult(
            activation=self.spec.text, seed=seed,
            test_accuracy=history["test_accuracy"][chosen],
            test_loss=history["test_loss"][chosen],
            dead_units=history.get("dead_units", [None] * epochs)[chosen],
            sparsity=history.get("sparsity", [None] * epochs)[chosen],
            epoch=chosen + 1,
            last_test_accuracy=history["test_accuracy"][-1],
            seconds_per_epoch=statistics.median(steady),
            seconds=time.perf_counter() - start,
            curves={key: [float(v) for v in history[key]]
                    for key in ("loss", "val_accuracy", "test_accuracy",
                                "dead_units")
                    if key in history})


def train_once(dataset, settings, spec, seed, verbose=1):
    """One training run on a model of its own; returns its `RunResult`."""
    return Trainer(dataset, settings, spec).run(seed, verbose)


def _duration(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


class _Progress:
    """`run k/N: activation, seed s` lines with elapsed time and what
    remains of the whole comparison, estimated from the runs that ended
    since this process started (its own and, sharing a folder, other
    processes'). `name` (a worker's) starts each line."""

    def __init__(self, total, done, name=None):
        self.total, self.first_done = total, done
        self.prefix = f"[{name}] " if name else ""
        self.start = time.perf_counter()

    def begin(self, spec, seed, done, busy):
        elapsed = time.perf_counter() - self.start
        left, ended = "", done - self.first_done
        if ended > 0:
            remaining = self.total - done
            left = f", ~{_duration(elapsed / ended * remaining)} left"
        print(f"{self.prefix}run {done + busy + 1}/{self.total}: {spec}, "
              f"seed {seed} (elapsed {_duration(elapsed)}{left})",
              flush=True)

    def end(self, run):
        dead = "n/a" if run.dead_units is None else (
            f"{100 * run.dead_units:.2f}%")
        print(f"{self.prefix}  {run.activation}, seed {run.seed}: test "
              f"accuracy {100 * run.test_accuracy:.2f}% (epoch "
              f"{run.epoch}), dead units {dead}, {run.seconds:.1f} s",
              flush=True)


class _Unshared:
    """The runs to train without a folder: a plain list, nothing to
    share."""

    def __init__(self, keys):
        self.todo, self.done = list(keys), 0

    def claim(self, keys):
        key = self.todo.pop(0) if self.todo else None
        claim = results_folder.Claim(key, None, self.done, 0)
        self.done += key is not None
        return claim


class Comparison:
    """A checked comparison, ready to train: see `prepare`.

    `complete` says, after `run`, whether every requested run is finished
    (other processes sharing the folder may still be training some).
    """

    def __init__(self, dataset, settings, config, folder, finished):
        self.dataset, self.settings, self.config = dataset, settings, config
        self.folder, self.finished = folder, finished
        self.complete = False

    def todo(self):
        """The requested runs (keys) not finished yet; for a shard, only
        its own."""
        s = self.settings
        keys = s.runs()
        if s.shard is not None:
            k, n = s.shard
            keys = keys[k::n]
        done = {run.key for run in self.finished}
        return [key for key in keys if key not in done]

    def run(self, verbose=1, name=None):
        """Trains every run no other process has claimed, writing each as
        it ends; returns `(summary, runs)` built from the finished runs
        (`RunResult`s).

        With `settings.jobs` > 1 the runs are trained by worker processes
        instead (see `jobs`). `name` starts each progress line.
        """
        s = self.settings
        count, todo = 1, len(self.todo())
        if s.jobs > 1 and todo:
            count, note = jobs.worker_count(s.jobs, todo)
            if note:
                print(note, flush=True)
        if count > 1:
            jobs.run_workers(_worker_settings(s, count), verbose,
                             _train_in_worker)
        else:
            self.train(verbose, name)
        runs = self.folder.runs() if self.folder else self.finished
        runs = _requested(runs, s.runs())
        self.complete = len(runs) == len(s.runs())
        summary = comparison_table.summarize([run.to_json() for run in runs],
                                             s.activations[0], s.alpha)
        if self.folder and self.complete:
            with self.folder.lock:  # One writer at a time, sharing it.
                for path in write_outputs(
                        self.folder, self.config, runs, summary,
                        comparison_table.statistics_record(summary, s.alpha)):
                    print(f"wrote {path}")
        return summary, runs

    def train(self, verbose=1, name=None):
        """Trains the runs this process claims, one by one, until none is
        left; writes no table (see `run`)."""
        s, keys = self.settings, self.settings.runs()
        specs = {spec.text: spec for spec in s.specs}
        source = self.folder or _Unshared(self.todo())
        progress = _Progress(len(keys), len(_requested(self.finished, keys)),
                             name)
        trainer = None
        while True:
            interruption.check()
            with source.claim(keys) as claim:
                if claim.key is None:
                    return
                text, seed = claim.key
                if trainer is None or trainer.spec.text != text:
                    trainer = None  # Free the last model first.
                    trainer = Trainer(self.dataset, s, specs[text])
                progress.begin(text, seed, claim.done, claim.busy)
                result = trainer.run(seed, verbose)
                if self.folder:
                    self.folder.append(result)  # Before the claim ends.
                else:
                    self.finished.append(result)
            progress.end(result)


def _worker_settings(settings, count):
    """What each of `count` workers trains: the same settings, the runs
    claimed under locks; or, for shard k of n, a shard of its own, k + n*j
    of n*count for worker j: together the shard's runs, each once."""
    settings = settings.replace(jobs=1, resume=True, overwrite=False)
    if settings.shard is None:
        return [settings] * count
    k, n = settings.shard
    return [settings.replace(shard=(k + n * j, n * count))
            for j in range(count)]


def _requested(runs, keys):
    by_key = {run.key: run for run in runs}
    return [by_key[key] for key in keys if key in by_key]


def _train_in_worker(settings, verbose, name):
    """What each `--jobs` worker process runs (see `jobs.run_workers`)."""
    try:
        prepare(settings).train(verbose, name)
    except results_folder.WriteFailed as error:
        print(f"[{name}] {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def prepare(settings):
    """Checks everything before any training: the data (see
    `datasets.Dataset`), every activation, that the model builds on the
    data's shape, and the results folder (see `results_folder.check`);
    returns a `Comparison`.

    Args:
        settings: A `compare_settings.Settings` (checked when it was made).

    Raises:
        ValueError, FileNotFoundError, ImportError: naming the bad value.
        results_folder.WriteFailed: when the folder cannot be written.
    """
    if not isinstance(settings, Settings):
        raise TypeError(f"prepare takes a compare_settings.Settings (make "
                        f"one with Settings.create(...)). Received: "
                        f"{settings!r}")
    s = settings
    activations = [parse_activation(spec) for spec in s.specs]
    dataset = datasets.load(s.data)
    if s.validation:
        dataset = datasets.hold_out(dataset, s.validation)
    interruption.check()
    user_models.check_builds(s.model, dataset.input_shape,
                             dataset.num_classes, activations,
                             s.model_kwargs)
    interruption.check()  # Before anything is written.
    config = {"backend": keras.backend.backend(), "dataset": repr(dataset),
              **s.config()}
    folder, finished = None, []
    if s.out is not None:
        folder = results_folder.ResultsFolder(s.out, s.shard)
        finished = folder.start(config, s.overwrite, s.resume)
    return Comparison(dataset, s, config, folder, finished)


def run(settings=None, verbose=1, **kwargs):
    """Runs the whole comparison; returns `(summary, runs)`, the runs as
    `RunResult`s.

    Takes a `compare_settings.Settings`, or the keyword arguments of
    `Settings.create`: the command line's defaults (`DEFAULTS`) and
    checks, and any keyword that is not a setting goes to the model
    builder, whose own defaults apply otherwise. With `out`, each run is
    written as it ends (see `results_folder`).
    """
    if settings is None:
        settings = Settings.create(**kwargs)
    elif kwargs:
        raise TypeError(f"run takes a Settings or keyword arguments, not "
                        f"both. Received: {sorted(kwargs)}")
    return prepare(settings).run(verbose)


def write_outputs(folder, config, runs, summary, statistics=None):
    """Writes results.json (with `statistics`, how the verdicts were made:
    see `comparison_table.statistics_record`), results.csv and (with
    matplotlib) a PNG into a `results_folder.ResultsFolder`; returns their
    paths.

    Raises:
        results_folder.WriteFailed: when one cannot be written whole.
    """
    records = [run.to_json() for run in runs]
    folder.write("results.json", json.dumps(
        {"config": config, "statistics": statistics, "summary": summary,
         "runs": records}, indent=2))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS,
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    folder.write("results.csv", table.getvalue())
    written = ["results.json", "results.csv"]
    try:
        from keras_sugar.experiments import comparison_plot
    except ImportError:
        pass  # The `plot` extra (matplotlib) is optional.
    else:
        # Drawn in memory, written whole like the other files.
        image = io.BytesIO()
        comparison_plot.plot_comparison(records, image,
                                        title=_title(config))
        folder.write("comparison.png", image.getvalue())
        written.append("comparison.png")
    return [folder.file(name) for name in written]


def _title(config):
    return (f"{config['model']} on {config['data']}, "
            f"{config['epochs']} epochs, backend {config['backend']}")


def main(args):
    """Runs `keras-sugar compare` with the parsed and checked arguments.

    A Ctrl-C (recorded since the command started, see `interruption`)
    stops it at the next safe point with exit status 130, saying what was
    kept.
    """
    s = args.settings
    interruption.install()  # Again: in case importing Keras replaced it.
    comparison = None
    try:
        interruption.check()  # A Ctrl-C or SIGTERM while Keras started.
        try:
            comparison = prepare(s)
        except (ValueError, FileNotFoundError, ImportError) as error:
            args.parser.error(str(error))  # Nothing has trained yet.
        summary, runs = comparison.run(compare_command.verbosity(args))
    except KeyboardInterrupt:  # `Interrupted`, or one raised before.
        print(f"\n{_what_was_kept(args, comparison)}", file=sys.stderr)
        raise SystemExit(interruption.exit_status()) from None
    except jobs.WorkerFailed as error:
        print(f"\n{error}", file=sys.stderr)
        raise SystemExit(1) from None
    except results_folder.WriteFailed as error:
        # A full disk, a quota: every finished run is on disk whole.
        kept = ("Nothing has trained yet: make room, then run the command "
                "again." if comparison is None else
                f"{_finished_runs(s, comparison)}: make room, then run the "
                f"same command with --resume.")
        print(f"\n{error}. {kept}", file=sys.stderr)
        raise SystemExit(1) from None
    if not comparison.complete:
        others = ("other shards" if s.shard is not None
                  else "other processes sharing it")
        print(f"\nFinished runs: {len(runs)} of {len(s.runs())} in "
              f"{s.out}; the others are being trained by {others}: the "
              f"last to end writes the table and files (or run the same "
              f"command with --resume after them).")
        return summary
    print(f"\n{s.model} on {s.data}, {len(s.seeds)} seed(s), "
          f"{s.epochs} epochs, SGD lr={s.lr} momentum={s.momentum}, "
          f"backend={keras.backend.backend()}")
    print(comparison_table.format_table(summary, s.alpha))
    chosen = (f"at the epoch of best accuracy on a validation split ("
              f"{s.validation:g} of the training data)" if s.validation
              else "after the last epoch")
    print(f"test accuracy: {chosen}.")
    print(comparison_table.note(summary, s.alpha))
    return summary


def _finished_runs(settings, comparison):
    """"Finished runs: k of n, kept in <this process's runs file>"."""
    folder = comparison.folder
    done = len(_requested(folder.runs(), settings.runs()))
    return (f"Finished runs: {done} of {len(settings.runs())}, kept in "
            f"{folder.runs_file}")


def _what_was_kept(args, comparison):
    s = args.settings
    if comparison is None:
        where = f"; --out {s.out} is as it was" if s.out else ""
        return f"Interrupted before any training{where}."
    if not comparison.folder:
        return "Interrupted. Nothing was kept: there is no --out."
    return (f"Interrupted. {_finished_runs(s, comparison)}: run the same "
            f"command with --resume to train the rest.")

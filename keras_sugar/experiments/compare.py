"""Train one architecture with several activations over several seeds and
tabulate test accuracy, dead units, sparsity and time, like the paper, with
each activation's paired difference from the first one.

Run: `keras-sugar compare` (see `keras-sugar compare --help`). Several
processes may share the runs of one results folder (`--jobs`, or several
commands with `--resume`: see `results_folder` and `jobs`).
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

CSV_FIELDS = ("activation", "seed", "test_accuracy", "test_loss",
              "dead_units", "sparsity", "epoch", "last_test_accuracy",
              "seconds_per_epoch", "seconds")


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
        model: What `--model` takes (see `user_models`).
        spec: An activation spec (see `parse_activation`).
        lr: SGD learning rate.
        momentum: SGD momentum.
        probe_size: Training examples the dead units are measured on.
        **model_kwargs: Keyword arguments of the model builder.
    """

    def __init__(self, dataset, model, spec, lr, momentum, probe_size=1024,
                 **model_kwargs):
        self.dataset, self.spec = dataset, spec
        self._build = functools.partial(build, model, dataset,
                                        parse_activation(spec),
                                        **model_kwargs)
        self.model = self._build()
        # A saved model starts every seed from its own weights.
        self._saved_weights = (self.model.get_weights() if
                               user_models.starts_from_saved_weights(model)
                               else None)
        self.model.compile(
            optimizer=keras.optimizers.SGD(lr, momentum=momentum),
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

    def run(self, seed, epochs, batch_size, verbose=1):
        """Trains from `seed`'s initial weights; returns the run's results
        and per-epoch curves."""
        start = time.perf_counter()
        self.reset(seed)
        data = self.dataset
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
        return {
            "activation": self.spec, "seed": seed,
            "test_accuracy": history["test_accuracy"][chosen],
            "test_loss": history["test_loss"][chosen],
            "dead_units": history.get("dead_units", [None] * epochs)[chosen],
            "sparsity": history.get("sparsity", [None] * epochs)[chosen],
            "epoch": chosen + 1,
            "last_test_accuracy": history["test_accuracy"][-1],
            "seconds_per_epoch": statistics.median(steady),
            "seconds": time.perf_counter() - start,
            "curves": {key: [float(v) for v in history[key]]
                       for key in ("loss", "val_accuracy", "test_accuracy",
                                   "dead_units")
                       if key in history},
        }


def train_once(dataset, model, spec, seed, epochs, batch_size, lr,
               momentum=0.9, verbose=1, probe_size=1024, **model_kwargs):
    """One training run on a model of its own; returns its results."""
    trainer = Trainer(dataset, model, spec, lr, momentum, probe_size,
                      **model_kwargs)
    return trainer.run(seed, epochs, batch_size, verbose)


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

    def end(self, result):
        dead = result["dead_units"]
        dead = "n/a" if dead is None else f"{100 * dead:.2f}%"
        print(f"{self.prefix}  {result['activation']}, seed "
              f"{result['seed']}: test accuracy "
              f"{100 * result['test_accuracy']:.2f}% (epoch "
              f"{result['epoch']}), dead units {dead}, "
              f"{result['seconds']:.1f} s", flush=True)


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
        done = {(run["activation"], run["seed"]) for run in self.finished}
        return [key for key in self.settings.runs() if key not in done]

    def run(self, verbose=1, name=None):
        """Trains every run no other process has claimed, writing each as
        it ends; returns `(summary, runs)` built from the finished runs.

        With `settings.jobs` > 1 the runs are trained by that many worker
        processes instead (see `jobs`). `name` starts each progress line.
        """
        s = self.settings
        if s.jobs > 1:
            jobs.run_workers(s.replace(jobs=1, resume=True, overwrite=False),
                             s.jobs, verbose, _train_in_worker)
        else:
            self.train(verbose, name)
        runs = self.folder.runs() if self.folder else self.finished
        runs = _requested(runs, s.activations, s.seeds)
        self.complete = len(runs) == len(s.runs())
        summary = comparison_table.summarize(runs, s.activations[0],
                                             s.alpha)
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
        source = self.folder or _Unshared(self.todo())
        progress = _Progress(len(keys), len(keys) - len(self.todo()), name)
        trainer = None
        while True:
            interruption.check()
            with source.claim(keys) as claim:
                if claim.key is None:
                    return
                spec, seed = claim.key
                if trainer is None or trainer.spec != spec:
                    trainer = None  # Free the last model first.
                    trainer = Trainer(self.dataset, s.model, spec, s.lr,
                                      s.momentum, **s.model_kwargs)
                progress.begin(spec, seed, claim.done, claim.busy)
                result = trainer.run(seed, s.epochs, s.batch_size, verbose)
                if self.folder:
                    self.folder.append(result)  # Before the claim ends.
                else:
                    self.finished.append(result)
            progress.end(result)


def _requested(runs, specs, seeds):
    by_key = {(run["activation"], run["seed"]): run for run in runs}
    return [by_key[spec, seed] for spec in specs for seed in seeds
            if (spec, seed) in by_key]


def _train_in_worker(settings, verbose, name):
    """What each `--jobs` worker process runs (see `jobs.run_workers`)."""
    prepare(settings).train(verbose, name)


def prepare(*args, **kwargs):
    """Checks everything before any training: the settings (see
    `compare_settings.Settings`: a `Settings`, or the arguments of
    `Settings.create`), the data (see `datasets.Dataset`), every
    activation, that the model builds on the data's shape, and the results
    folder (see `results_folder.check`); returns a `Comparison`.

    Raises:
        ValueError, FileNotFoundError, ImportError: naming the bad value.
    """
    if len(args) == 1 and not kwargs and isinstance(args[0], Settings):
        (s,) = args
    else:
        s = Settings.create(*args, **kwargs)
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
        folder = results_folder.ResultsFolder(s.out)
        finished = folder.start(config, s.overwrite, s.resume)
    return Comparison(dataset, s, config, folder, finished)


def run(*args, verbose=1, **kwargs):
    """Runs the whole comparison; returns `(summary, runs)`.

    Takes a `compare_settings.Settings` or the arguments of
    `Settings.create`: the command line's defaults (`DEFAULTS`) and
    checks, and any keyword that is not a setting goes to the model
    builder, whose own defaults apply otherwise. With `out`, each run is
    written as it ends (see `results_folder`).
    """
    return prepare(*args, **kwargs).run(verbose)


def write_outputs(folder, config, runs, summary, statistics=None):
    """Writes results.json (with `statistics`, how the verdicts were made:
    see `comparison_table.statistics_record`), results.csv and (with
    matplotlib) a PNG into a `results_folder.ResultsFolder`; returns their
    paths."""
    folder.write("results.json", json.dumps(
        {"config": config, "statistics": statistics, "summary": summary,
         "runs": runs}, indent=2))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS,
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(runs)
    folder.write("results.csv", table.getvalue())
    written = ["results.json", "results.csv"]
    try:
        from keras_sugar.experiments import comparison_plot
    except ImportError:
        pass  # The `plot` extra (matplotlib) is optional.
    else:
        comparison_plot.plot_comparison(
            runs, folder.file("comparison.png"), title=_title(config))
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
        interruption.check()  # A Ctrl-C while Keras started.
        try:
            comparison = prepare(s)
        except (ValueError, FileNotFoundError, ImportError) as error:
            args.parser.error(str(error))  # Nothing has trained yet.
        summary, runs = comparison.run(compare_command.verbosity(args))
    except KeyboardInterrupt:  # `Interrupted`, or one raised before.
        print(f"\n{_what_was_kept(args, comparison)}", file=sys.stderr)
        raise SystemExit(130) from None
    except jobs.WorkerFailed as error:
        print(f"\n{error}", file=sys.stderr)
        raise SystemExit(1) from None
    if not comparison.complete:
        print(f"\nFinished runs: {len(runs)} of {len(s.runs())} in "
              f"{s.out}; the others are being trained by other processes "
              f"sharing it: the last to end writes the table and files "
              f"(or run the same command with --resume after them).")
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


def _what_was_kept(args, comparison):
    s = args.settings
    if comparison is None:
        where = f"; --out {s.out} is as it was" if s.out else ""
        return f"Interrupted before any training{where}."
    if not comparison.folder:
        return "Interrupted. Nothing was kept: there is no --out."
    done = len(_requested(comparison.folder.runs(), s.activations, s.seeds))
    runs_file = comparison.folder.file(results_folder.RUNS)
    return (f"Interrupted. Finished runs: {done} of {len(s.runs())}, kept "
            f"in {runs_file}: run the same command with --resume to train "
            f"the rest.")

"""Train one architecture with several activations over several seeds and
tabulate test accuracy, dead units, sparsity and time, like the paper, with
each activation's paired difference from the first one.

Run: `keras-sugar compare` (see `keras-sugar compare --help`).
"""

import csv
import functools
import json
import statistics
import sys
import time

import keras
import numpy as np

from keras_sugar import diagnostics
from keras_sugar.activations import SugarReLU
from keras_sugar.experiments import architectures
from keras_sugar.experiments import compare_command
from keras_sugar.experiments import comparison_table
from keras_sugar.experiments import datasets
from keras_sugar.experiments import interruption
from keras_sugar.experiments import results_folder
from keras_sugar.experiments.compare_command import DEFAULTS

CSV_FIELDS = ("activation", "seed", "test_accuracy", "test_loss",
              "dead_units", "sparsity", "seconds_per_epoch", "seconds")


def _parse_value(text):
    value = compare_command.parse_value(text)
    if isinstance(value, str):
        raise ValueError(f"Cannot read parameter value '{text}': use a "
                         f"number, true or false.")
    return value


def parse_activation(spec):
    """Turns a spec into a Keras activation.

    `"relu"`, `"gelu"` (any Keras activation name), or
    `"sugar:<surrogate>[:param=value,...]"` for a `SugarReLU`.

    Example:

    >>> parse_activation("sugar:nelu:alpha=0.1")
    SugarReLU('nelu', alpha=0.1)
    """
    if not spec.startswith("sugar:"):
        return keras.activations.get(spec)
    parts = spec.split(":")
    if len(parts) > 3 or not parts[1]:
        raise ValueError(f"Activation spec '{spec}' is not of the form "
                         f"sugar:<surrogate>[:param=value,...]")
    params = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, _, value = item.partition("=")
            params[key.strip()] = _parse_value(value.strip())
    return SugarReLU(parts[1], **params)


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
    """Builds one of `architectures.BUILDERS` for `dataset` with
    `activation`."""
    architectures.check(model, model_kwargs)
    return architectures.BUILDERS[model](
        dataset.input_shape, dataset.num_classes, activation,
        **model_kwargs)


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
        model: A key of `architectures.BUILDERS`.
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
        self.model.set_weights(self._build().get_weights())
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
                validation_data=(data.x_test, data.y_test)).history
            interruption.check()  # The dead units were measured last.
            for key, values in logs.items():
                history.setdefault(key, []).extend(values)
        steady = timer.seconds[1:] or timer.seconds  # The first compiles.
        return {
            "activation": self.spec, "seed": seed,
            # The last epoch's evaluation on the test split.
            "test_accuracy": history["val_accuracy"][-1],
            "test_loss": history["val_loss"][-1],
            "dead_units": history.get("dead_units", [None])[-1],
            "sparsity": history.get("sparsity", [None])[-1],
            "seconds_per_epoch": statistics.median(steady),
            "seconds": time.perf_counter() - start,
            "curves": {key: [float(v) for v in history[key]]
                       for key in ("loss", "val_accuracy", "dead_units")
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
    remains (estimated from the runs finished so far)."""

    def __init__(self, total, done):
        self.total, self.number, self.finished = total, done, 0
        self.start = time.perf_counter()

    def begin(self, spec, seed):
        self.number += 1
        elapsed = time.perf_counter() - self.start
        left = ""
        if self.finished:
            remaining = self.total - self.number + 1
            left = f", ~{_duration(elapsed / self.finished * remaining)} left"
        print(f"run {self.number}/{self.total}: {spec}, seed {seed} "
              f"(elapsed {_duration(elapsed)}{left})", flush=True)

    def end(self, result):
        self.finished += 1
        dead = result["dead_units"]
        dead = "n/a" if dead is None else f"{100 * dead:.2f}%"
        print(f"  {result['activation']}, seed {result['seed']}: test "
              f"accuracy {100 * result['test_accuracy']:.2f}%, dead units "
              f"{dead}, {result['seconds']:.1f} s", flush=True)


class Comparison:
    """A checked comparison, ready to train: see `prepare`."""

    def __init__(self, dataset, settings, config, folder, finished):
        self.dataset, self.settings, self.config = dataset, settings, config
        self.folder, self.finished = folder, finished

    def todo(self):
        done = {(run["activation"], run["seed"]) for run in self.finished}
        return [(spec, seed) for spec in self.settings["activations"]
                for seed in self.settings["seeds"] if (spec, seed) not in done]

    def run(self, verbose=1):
        """Trains every missing run, writing each as it ends; returns
        `(summary, runs)` built from the finished runs."""
        s = self.settings
        todo = self.todo()
        requested = len(s["activations"]) * len(s["seeds"])
        progress = _Progress(requested, requested - len(todo))
        runs = list(self.finished)
        for spec in dict.fromkeys(spec for spec, _ in todo):
            trainer = Trainer(self.dataset, s["model"], spec, s["lr"],
                              s["momentum"], **s["model_kwargs"])
            for seed in [seed for name, seed in todo if name == spec]:
                interruption.check()
                progress.begin(spec, seed)
                result = trainer.run(seed, s["epochs"], s["batch_size"],
                                     verbose)
                if self.folder:
                    self.folder.append(result)
                runs.append(result)
                progress.end(result)
        if self.folder:
            runs = self.folder.runs()  # What is on disk is the record.
        runs = _requested(runs, s["activations"], s["seeds"])
        summary = comparison_table.summarize(runs, s["activations"][0])
        if self.folder:
            for path in write_outputs(self.folder, self.config, runs,
                                      summary):
                print(f"wrote {path}")
        return summary, runs


def _requested(runs, specs, seeds):
    by_key = {(run["activation"], run["seed"]): run for run in runs}
    return [by_key[spec, seed] for spec in specs for seed in seeds
            if (spec, seed) in by_key]


def _check_numbers(seeds, **settings):
    for name, value in settings.items():
        compare_command.check_setting(name, value)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be distinct integers, at least one. "
                         f"Received: seeds={seeds!r}")


def prepare(data=DEFAULTS["data"], model=DEFAULTS["model"],
            activations=DEFAULTS["activations"], seeds=DEFAULTS["seeds"],
            epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
            lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"], out=None,
            resume=False, overwrite=False, **model_kwargs):
    """Checks everything before any training: the model and its keywords,
    the data (see `datasets.Dataset`), every activation spec, that the
    model builds on the data's shape, and the results folder (see
    `results_folder.check`); returns a `Comparison`.

    Raises:
        ValueError, FileNotFoundError, ImportError: naming the bad value.
    """
    architectures.check(model, model_kwargs)
    _check_numbers(seeds=seeds, epochs=epochs, batch_size=batch_size, lr=lr,
                   momentum=momentum)
    if out is not None:
        results_folder.check(out, overwrite, resume)
    specs = list(activations)
    if not specs:
        raise ValueError("activations must name at least one activation "
                         "(the first is the baseline). Received: "
                         "activations=[]")
    repeated = compare_command.first_repeated(specs)
    if repeated is not None:
        raise ValueError(f"activations must be distinct: '{repeated}' is "
                         f"repeated. Received: activations={specs!r}")
    for spec in specs:
        parse_activation(spec)
    dataset = datasets.load(data)
    interruption.check()
    build(model, dataset, parse_activation(specs[0]), **model_kwargs)
    interruption.check()  # Before anything is written.
    settings = {"data": data, "model": model, "model_kwargs": model_kwargs,
                "activations": specs, "seeds": list(seeds),
                "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "momentum": momentum}
    config = {"backend": keras.backend.backend(), "dataset": repr(dataset),
              **settings}
    folder, finished = None, []
    if out is not None:
        folder = results_folder.ResultsFolder(out)
        finished = folder.start(config, overwrite, resume)
    return Comparison(dataset, settings, config, folder, finished)


def run(data=DEFAULTS["data"], model=DEFAULTS["model"],
        activations=DEFAULTS["activations"], seeds=DEFAULTS["seeds"],
        epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
        lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"], out=None,
        resume=False, overwrite=False, verbose=1, **model_kwargs):
    """Runs the whole comparison; returns `(summary, runs)`.

    The defaults are the command line's (`compare_command.DEFAULTS`);
    `**model_kwargs` go to the model builder, whose own defaults apply
    otherwise. With `out`, each run is written as it ends (see
    `results_folder`).
    """
    comparison = prepare(data, model, activations, seeds, epochs, batch_size,
                         lr, momentum, out, resume, overwrite,
                         **model_kwargs)
    return comparison.run(verbose)


def write_outputs(folder, config, runs, summary):
    """Writes results.json, results.csv and (with matplotlib) a PNG into
    a `results_folder.ResultsFolder`; returns their paths."""
    with open(folder.file("results.json"), "w") as f:
        json.dump({"config": config, "summary": summary, "runs": runs}, f,
                  indent=2)
    with open(folder.file("results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)
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
            comparison = prepare(
                s["data"], s["model"], s["activations"], s["seeds"],
                s["epochs"], s["batch_size"], s["lr"], s["momentum"],
                args.out, args.resume, args.overwrite, **s["model_kwargs"])
        except (ValueError, FileNotFoundError, ImportError) as error:
            args.parser.error(str(error))  # Nothing has trained yet.
        progress = "runs" if args.quiet else args.progress
        summary, runs = comparison.run(compare_command.PROGRESS[progress])
    except KeyboardInterrupt:  # `Interrupted`, or one raised before.
        print(f"\n{_what_was_kept(args, comparison)}", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"\n{s['model']} on {s['data']}, {len(s['seeds'])} seed(s), "
          f"{s['epochs']} epochs, SGD lr={s['lr']} "
          f"momentum={s['momentum']}, backend={keras.backend.backend()}")
    print(comparison_table.format_table(summary))
    print(f"vs baseline: the mean of each seed's difference from "
          f"{s['activations'][0]} (same seed, same initial weights), in "
          f"points, with its 95% confidence interval over seeds.")
    return summary


def _what_was_kept(args, comparison):
    if comparison is None:
        where = f"; --out {args.out} is as it was" if args.out else ""
        return f"Interrupted before any training{where}."
    if not comparison.folder:
        return "Interrupted. Nothing was kept: there is no --out."
    s = comparison.settings
    requested = len(s["activations"]) * len(s["seeds"])
    done = len(_requested(comparison.folder.runs(), s["activations"],
                          s["seeds"]))
    runs_file = comparison.folder.file(results_folder.RUNS)
    return (f"Interrupted. Finished runs: {done} of {requested}, kept in "
            f"{runs_file}: run the same command with --resume to train the "
            f"rest.")

"""Train one architecture with several activations over several seeds and
tabulate test accuracy, dead units, sparsity and time, like the paper.

Run: `keras-sugar compare` (see `keras-sugar compare --help`).
"""

import csv
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_sugar import diagnostics
from keras_sugar.activations import SugarReLU
from keras_sugar.experiments import architectures
from keras_sugar.experiments import datasets
from keras_sugar.experiments import compare_command
from keras_sugar.experiments.compare_command import DEFAULTS


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
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def build(model, dataset, activation, **model_kwargs):
    """Builds one of `architectures.BUILDERS` for `dataset` with
    `activation`."""
    architectures.check(model, model_kwargs)
    return architectures.BUILDERS[model](
        dataset.input_shape, dataset.num_classes, activation,
        **model_kwargs)


def train_once(dataset, model, spec, seed, epochs, batch_size, lr,
               momentum=0.9, verbose=1, probe_size=1024, **model_kwargs):
    """One training run; returns a dict of its results and curves."""
    keras.utils.set_random_seed(seed)  # Same init for every activation.
    net = build(model, dataset, parse_activation(spec), **model_kwargs)
    net.compile(optimizer=keras.optimizers.SGD(lr, momentum=momentum),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True),
                metrics=["accuracy"])
    timer = _EpochTimer()
    callbacks = [timer]
    probe = dataset.x_train[:probe_size]
    if diagnostics.rectified_sites(net):
        callbacks.append(diagnostics.DeadUnitMonitor(probe, per_layer=False))
    history = net.fit(dataset.x_train, dataset.y_train, epochs=epochs,
                      batch_size=batch_size, verbose=verbose,
                      validation_data=(dataset.x_test, dataset.y_test),
                      callbacks=callbacks).history
    test_loss, test_accuracy = net.evaluate(dataset.x_test, dataset.y_test,
                                            batch_size=512, verbose=0)
    steady = timer.seconds[1:] or timer.seconds  # The first one compiles.
    return {
        "activation": spec, "seed": seed,
        "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
        "dead_units": history.get("dead_units", [None])[-1],
        "sparsity": history.get("sparsity", [None])[-1],
        "seconds_per_epoch": statistics.median(steady),
        "curves": {key: [float(v) for v in history[key]]
                   for key in ("loss", "val_accuracy", "dead_units")
                   if key in history},
    }


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def summarize(runs):
    """Aggregates runs per activation (mean and std over seeds)."""
    summary = []
    for spec in dict.fromkeys(run["activation"] for run in runs):
        mine = [run for run in runs if run["activation"] == spec]
        row = {"activation": spec, "seeds": len(mine)}
        for key in ("test_accuracy", "dead_units", "sparsity",
                    "seconds_per_epoch"):
            row[key], row[f"{key}_std"] = _mean_std([r[key] for r in mine])
        summary.append(row)
    return summary


def _pct(mean, std=None):
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + (f" +- {100 * std:.2f}" if std is not None
                                  else "")


def format_table(summary):
    """Renders the summary as the paper-style text table."""
    lines = [f"{'activation':<22}{'test acc % (mean +- std)':>26}"
             f"{'dead units %':>14}{'sparsity %':>12}{'s/epoch':>9}"]
    for row in summary:
        lines.append(
            f"{row['activation']:<22}"
            f"{_pct(row['test_accuracy'], row['test_accuracy_std']):>26}"
            f"{_pct(row['dead_units']):>14}{_pct(row['sparsity']):>12}"
            f"{row['seconds_per_epoch']:>9.2f}")
    return "\n".join(lines)


def write_outputs(out, config, runs, summary):
    """Writes results.json, results.csv and (with matplotlib) a PNG."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"config": config, "summary": summary, "runs": runs}, f,
                  indent=2)
    fields = ["activation", "seed", "test_accuracy", "test_loss",
              "dead_units", "sparsity", "seconds_per_epoch"]
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)
    written = ["results.json", "results.csv"]
    try:
        from keras_sugar.experiments import comparison_plot

        comparison_plot.plot_comparison(
            runs, os.path.join(out, "comparison.png"))
        written.append("comparison.png")
    except ImportError:
        pass  # The `plot` extra is optional.
    return [os.path.join(out, name) for name in written]


def run(data=DEFAULTS["data"], model=DEFAULTS["model"],
        activations=DEFAULTS["activations"], seeds=DEFAULTS["seeds"],
        epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
        lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"], out=None,
        verbose=1, **model_kwargs):
    """Runs the whole comparison; returns `(summary, runs)`.

    The defaults are the command line's (`compare_command.DEFAULTS`);
    `**model_kwargs` go to the model builder, whose own defaults apply
    otherwise.
    """
    architectures.check(model, model_kwargs)
    dataset = datasets.load(data)
    specs = list(activations)
    for spec in specs:  # Fail on a bad spec before hours of training.
        parse_activation(spec)
    config = {"backend": keras.backend.backend(), "data": repr(dataset),
              "model": model, "model_kwargs": model_kwargs,
              "activations": specs, "seeds": list(seeds), "epochs": epochs,
              "batch_size": batch_size, "lr": lr, "momentum": momentum}
    runs = []
    for spec in specs:
        for seed in seeds:
            if verbose:
                print(f"--- {spec}, seed {seed}", flush=True)
            runs.append(train_once(dataset, model, spec, seed, epochs,
                                   batch_size, lr, momentum, verbose,
                                   **model_kwargs))
    summary = summarize(runs)
    if out:
        for path in write_outputs(out, config, runs, summary):
            print(f"wrote {path}")
    return summary, runs


def main(args):
    """Runs `keras-sugar compare` with the parsed arguments."""
    seeds = args.seeds
    summary, _ = run(
        data=args.data, model=args.model,
        activations=args.activations.split(","), seeds=seeds,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, out=args.out,
        verbose=0 if args.quiet else 1, **args.model_kwargs)
    print(f"\n{args.model} on {args.data}, {len(seeds)} seed(s), "
          f"{args.epochs} epochs, SGD lr={args.lr} momentum={args.momentum}, "
          f"backend={keras.backend.backend()}")
    print(format_table(summary))
    return summary

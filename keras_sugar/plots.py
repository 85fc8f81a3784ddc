"""Figures (needs the `plot` extra, matplotlib): the surrogates next to
ReLU, as in the paper's Figure 1, and dead units over training."""

import numpy as np
from keras import ops

from keras_sugar import surrogates


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # Files only; never needs a display.
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "Plots need matplotlib: pip install 'keras-sugar[plot]'"
        ) from error
    return plt


def surrogate_curves(name, x, **params):
    """Returns `(f(x), f'(x))` of a registered surrogate as numpy arrays."""
    surrogate = surrogates.get(name)
    params = surrogate.resolve_params(params)
    t = ops.convert_to_tensor(x, "float32")
    f = ops.convert_to_numpy(surrogate.function(t, **params))
    if surrogate.derivative is not None:
        d = ops.convert_to_numpy(surrogate.derivative(t, **params))
    else:  # Central differences for user surrogates without a derivative.
        d = np.gradient(f, x)
    return np.asarray(f, "float64"), np.asarray(d, "float64")


def plot_surrogates(path, names=None, x_range=(-5.0, 5.0)):
    """Draws each surrogate and its derivative beside ReLU's; saves a PNG.

    Args:
        path: Output file (PNG).
        names: Surrogate names. Defaults to every built-in surrogate.
        x_range: Interval to draw. Defaults to `(-5, 5)`.

    Returns:
        `path`.
    """
    plt = _pyplot()
    names = list(names or surrogates.BUILTINS)
    x = np.linspace(*x_range, 801)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_f.plot(x, np.maximum(x, 0), "k", lw=2.5, label="ReLU (forward)")
    ax_d.plot(x, (x > 0).astype(float), "k", lw=2.5, label="ReLU'")
    for name in names:
        f, d = surrogate_curves(name, x)
        ax_f.plot(x, f, lw=1.3, label=name)
        ax_d.plot(x, d, lw=1.3, label=f"{name}'")
    ax_f.set_title("surrogate f(x): never the output, only its derivative")
    ax_d.set_title("backward pass: f'(x) replaces ReLU'(x)")
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_xlabel("x")
        ax.legend(fontsize=7, ncol=2)
    ax_f.set_ylim(-2, x_range[1])
    ax_d.set_ylim(-0.5, 1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_dead_units(history, path, title="dead units during training"):
    """Draws `dead_units` (and per-layer values) from a `History`; saves.

    Args:
        history: A `keras.callbacks.History` or its `.history` dict, from a
            run with `DeadUnitMonitor`.
        path: Output file (PNG).
        title: Figure title.

    Returns:
        `path`.
    """
    plt = _pyplot()
    logs = getattr(history, "history", history)
    if "dead_units" not in logs:
        raise ValueError(
            "No 'dead_units' in the history: train with "
            "callbacks=[keras_sugar.DeadUnitMonitor(probe=...)].")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    epochs = np.arange(1, len(logs["dead_units"]) + 1)
    for key, values in sorted(logs.items()):
        if key.startswith("dead_units/"):
            ax.plot(epochs, values, lw=1, alpha=0.7,
                    label=key.split("/", 1)[1])
    ax.plot(epochs, logs["dead_units"], "k", lw=2.5, label="all units")
    ax.set_xlabel("epoch")
    ax.set_ylabel("dead fraction")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_comparison(runs, path):
    """Test accuracy and dead units per epoch, mean over seeds, per
    activation, from `keras_sugar.compare` runs; saves a PNG.

    Returns:
        `path`.
    """
    plt = _pyplot()
    fig, (ax_acc, ax_dead) = plt.subplots(1, 2, figsize=(11, 4.2))
    for spec in dict.fromkeys(run["activation"] for run in runs):
        curves = [run["curves"] for run in runs if run["activation"] == spec]
        accuracy = np.mean([c["val_accuracy"] for c in curves], axis=0)
        epochs = np.arange(1, len(accuracy) + 1)
        (line,) = ax_acc.plot(epochs, 100 * accuracy, label=spec)
        if all("dead_units" in c for c in curves):
            dead = np.mean([c["dead_units"] for c in curves], axis=0)
            ax_dead.plot(epochs, 100 * dead, color=line.get_color(),
                         label=spec)
    ax_acc.set_title("test accuracy (mean over seeds)")
    ax_acc.set_ylabel("%")
    ax_dead.set_title("dead units (mean over seeds)")
    ax_dead.set_ylabel("% of rectified units")
    for ax in (ax_acc, ax_dead):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Figures (needs the `plot` extra, matplotlib): the surrogates next to
ReLU, as in the paper's Figure 1, and dead units over training."""

import numpy as np
from keras import ops

from keras_sugar import surrogates


def figure(**kwargs):
    """A `matplotlib.figure.Figure`, drawn and saved without pyplot: the
    user's matplotlib backend and open figures (a notebook's) are left
    alone. An ImportError names the extra to install if matplotlib is
    missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plots need matplotlib: pip install 'keras-sugar[plot]'"
        ) from error
    return Figure(**kwargs)


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

    One pair of panels per surrogate (f and f', ReLU's drawn underneath in
    grey), so curves that equal ReLU on one side never hide each other.

    Args:
        path: Output file (PNG).
        names: Surrogate names. Defaults to every built-in surrogate.
        x_range: Interval to draw. Defaults to `(-5, 5)`.

    Returns:
        `path`.
    """
    names = list(names or surrogates.BUILTINS)
    x = np.linspace(*x_range, 801)
    pairs_per_row = 2
    rows = -(-len(names) // pairs_per_row)
    fig = figure(figsize=(13, 2.6 * rows + 0.6))
    axes = fig.subplots(rows, 2 * pairs_per_row, squeeze=False)
    relu_style = dict(color="0.6", lw=4, alpha=0.5, zorder=1)
    for ax in axes.flat[2 * len(names):]:
        ax.axis("off")
    for i, name in enumerate(names):
        ax_f, ax_d = axes.flat[2 * i], axes.flat[2 * i + 1]
        f, d = surrogate_curves(name, x)
        ax_f.plot(x, np.maximum(x, 0), label="ReLU", **relu_style)
        ax_d.plot(x, (x > 0).astype(float), label="ReLU'", **relu_style)
        ax_f.plot(x, f, color="C0", lw=1.8, zorder=2, label=name)
        ax_d.plot(x, d, color="C3", lw=1.8, zorder=2, label=f"{name}'")
        ax_f.set_ylabel("f(x)")
        ax_d.set_ylabel("f'(x)")
        ax_f.set_ylim(-2, x_range[1])
        ax_d.set_ylim(-0.5, 1.5)
        for ax in (ax_f, ax_d):
            ax.axhline(0, color="0.85", lw=0.8, zorder=0)
            ax.axvline(0, color="0.85", lw=0.8, zorder=0)
            ax.legend(fontsize=7, loc="upper left")
            if i >= len(names) - pairs_per_row:
                ax.set_xlabel("x")
    fig.suptitle("SUGAR surrogates: the forward pass stays ReLU (grey); "
                 "the backward pass uses f'(x) instead of ReLU'(x)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
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
    logs = getattr(history, "history", history)
    if "dead_units" not in logs:
        raise ValueError(
            "No 'dead_units' in the history: train with "
            "callbacks=[keras_sugar.DeadUnitMonitor(probe=...)].")
    fig = figure(figsize=(7, 4.2))
    ax = fig.subplots()
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
    return path

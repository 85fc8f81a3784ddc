"""The comparison figure: test accuracy and dead units per epoch, per
activation, mean over seeds with a band of one standard deviation (needs
the `plot` extra, matplotlib)."""

import numpy as np

from keras_sugar import plots


def _mean_band(ax, curves, scale, label, color=None):
    values = scale * np.asarray(curves, dtype=float)
    mean, std = values.mean(axis=0), values.std(axis=0)
    epochs = np.arange(1, len(mean) + 1)
    (line,) = ax.plot(epochs, mean, label=label, color=color)
    ax.fill_between(epochs, mean - std, mean + std, alpha=0.2,
                    color=line.get_color(), linewidth=0)
    return line.get_color()


def plot_comparison(runs, path, title=None):
    """Saves the figure of `keras_sugar.experiments.compare` runs.

    Args:
        runs: Run dicts with `activation` and `curves`.
        path: The PNG to write.
        title: The figure's title (model, data, backend, epochs). Defaults
            to none.

    Returns:
        `path`.
    """
    fig = plots.figure(figsize=(11, 4.4))
    ax_acc, ax_dead = fig.subplots(1, 2)
    no_dead_curve = []
    for spec in dict.fromkeys(run["activation"] for run in runs):
        curves = [run["curves"] for run in runs if run["activation"] == spec]
        seeds = f"{spec} ({len(curves)} seeds)"
        # Runs made before the validation split have the test curve as
        # "val_accuracy".
        color = _mean_band(ax_acc, [c.get("test_accuracy", c["val_accuracy"])
                                    for c in curves], 100, seeds)
        if all("dead_units" in c for c in curves):
            _mean_band(ax_dead, [c["dead_units"] for c in curves], 100,
                       spec, color)
        else:
            no_dead_curve.append(spec)
    ax_acc.set_title("test accuracy (mean and std over seeds)")
    ax_acc.set_ylabel("%")
    ax_dead.set_title("dead units (mean and std over seeds)")
    ax_dead.set_ylabel("% of rectified units")
    if no_dead_curve:
        ax_dead.text(0.02, 0.02, "no dead-unit curve (no rectified units): "
                     + ", ".join(no_dead_curve), transform=ax_dead.transAxes,
                     fontsize=8, color="0.35")
    for ax in (ax_acc, ax_dead):
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path

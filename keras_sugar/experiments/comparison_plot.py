"""The comparison figure: accuracy and dead units per epoch, per activation
(needs the `plot` extra, matplotlib)."""

import numpy as np

from keras_sugar import plots


def plot_comparison(runs, path):
    """Test accuracy and dead units per epoch, mean over seeds, per
    activation, from `keras_sugar.experiments.compare` runs; saves a PNG.

    Returns:
        `path`.
    """
    plt = plots.pyplot()
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

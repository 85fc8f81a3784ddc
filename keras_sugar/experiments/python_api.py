"""The comparison from Python (a notebook): your model, your data, the
rows of the table `keras-sugar compare` prints."""

import contextlib
import io

from keras_sugar.experiments import compare
from keras_sugar.experiments import comparison_table
from keras_sugar.experiments.compare_settings import DEFAULTS


def compare_models(model, data, activations=DEFAULTS["activations"],
                   seeds=DEFAULTS["seeds"], verbose=1, **settings):
    """Trains `model` with each activation over `seeds` and returns the
    rows of the comparison table, each activation's paired difference from
    the first with its family-wise verdict (see `keras-sugar compare`).

    Args:
        model: A function with the builders' contract,
            `model(input_shape, num_classes, activation, **model_kwargs)`
            returning an uncompiled Keras model with one logit per class
            and `activation` wherever a ReLU would be; or a Keras ReLU
            model, fine-tuned from its weights (`relu` is the model as it
            is, `sugar:<surrogate>` the model rewritten by `sugarify`; the
            object itself is not trained); or what `--model` takes (a
            builder's name, `"FILE.py:FUNCTION"`,
            `"package.module:FUNCTION"`, `"FILE.keras"`).
        data: `(x, y)` arrays (a stratified 20% of each class is held out
            for testing), `((x_train, y_train), (x_test, y_test))`, or what
            `--data` takes (a name such as `"mnist1d"`, or a path).
        activations: `"relu"`, `"gelu"`, `"sugar:<surrogate>[:param=
            value,...]"`; the first is the baseline. Defaults to the
            command's.
        seeds: A count (3 = seeds 0, 1, 2) or a list of seeds. Defaults
            to 5 seeds.
        verbose: 0: silent; 1: a line per run with Keras' progress bar,
            then the table; 2: one line per epoch instead of the bar.
            Defaults to `1`.
        **settings: Any other setting of the command, by its Python name
            (`epochs`, `batch_size`, `lr`, `momentum`, `validation`,
            `alpha`, `out`, `resume`, `model_kwargs`); any other keyword
            goes to the model function.

    Returns:
        A list of dicts, one per activation, in the table's order (see
        `comparison_table.summarize`): `activation`, `test_accuracy` and
        `test_accuracy_std`, `accuracy_delta`, `accuracy_delta_ci`,
        `accuracy_p_holm`, `accuracy_verdict`, and the same for
        `dead_units`; `pandas.DataFrame(rows)` makes a frame of them.

    Raises:
        ValueError, FileNotFoundError, ImportError: before anything
            trains, naming the bad value.

    Example:

    >>> import keras, numpy as np
    >>> def small_net(input_shape, num_classes, activation, units=16):
    ...     return keras.Sequential([
    ...         keras.Input(input_shape), keras.layers.Flatten(),
    ...         keras.layers.Dense(units, activation=activation),
    ...         keras.layers.Dense(num_classes)])
    >>> x = np.random.default_rng(0).normal(size=(200, 8))
    >>> rows = compare_models(small_net, (x, x[:, 0] > 0),
    ...                       activations=("relu", "sugar:bsilu"), seeds=2,
    ...                       epochs=1, verbose=0)
    >>> [(row["activation"], row["seeds"]) for row in rows]
    [('relu', 2), ('sugar:bsilu', 2)]
    """
    # Silent: not even the comparison's line per run.
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet if not verbose else contextlib.nullcontext():
        summary, _ = compare.run(data=data, model=model,
                                 activations=activations, seeds=seeds,
                                 verbose=verbose, **settings)
    if verbose:
        alpha = settings.get("alpha", comparison_table.ALPHA)
        print(comparison_table.format_table(summary, alpha))
        print(comparison_table.note(summary, alpha))
    return summary

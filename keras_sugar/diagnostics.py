"""Dead units and sparsity of rectified layers, and a callback that logs them.

A unit (a channel of a convolution, a neuron of a dense layer: the last
axis) is dead when its rectified output is zero for every example of the
probe data. Sparsity is the fraction of zero outputs. Both are read from
forward values, which plain ReLU and SugarReLU compute identically, so the
same model reports the same numbers before it is trained either way.
"""

import keras
import numpy as np

from keras_sugar import model_graph
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU


def _rectifies(op):
    """Whether `op`'s output is a plain ReLU (or SugarReLU) output."""
    if isinstance(op, keras.layers.ReLU):
        return relu_sites.is_plain_relu(op)
    if isinstance(op, keras.layers.RNN):
        return False  # Its outputs are gated states, not rectified values.
    if isinstance(op, keras.layers.Lambda):
        return relu_sites.target_of_function(op.function, ("relu",)) == "relu"
    if isinstance(op, keras.layers.Layer):
        activation = getattr(op, "activation", None)
        return isinstance(activation, SugarReLU) or (
            relu_sites.target_of_function(activation, ("relu",)) == "relu")
    return relu_sites.raw_op_target(op, ("relu",)) == "relu"


def rectified_sites(model, prefix=""):
    """Returns `[(path, tensor_or_model)]` for the rectified outputs.

    Covers inline activations (`Dense(activation=relu)`), `Activation`
    layers, plain `ReLU` layers, `SugarReLU` in any form and raw `relu` ops
    (entries with a symbolic output tensor), and nested functional or
    Sequential models holding any of those (entries with the model).
    Layers called more than once have no single output and are left out.
    """
    sites = []
    for op in model_graph.nodes(model):
        if (isinstance(op, keras.layers.InputLayer)
                or model_graph.call_count(op) != 1):
            continue
        path = model_graph.join(prefix, op.name)
        if model_graph.is_graph_model(op):
            if rectified_sites(op):
                sites.append((path, op))
        elif _rectifies(op):
            sites.append((path, op.output))
    return sites


class _Probe:
    """Computes every rectified output of a model for a batch."""

    def __init__(self, model, prefix=""):
        if not model_graph.is_graph_model(model) or not model.built:
            raise ValueError(
                f"Dead-unit measurement needs a built functional or "
                f"Sequential model. Received: {type(model).__name__} "
                f"(built={getattr(model, 'built', None)}).")
        self.layer_names, self.nested, outputs = [], [], []
        for path, target in rectified_sites(model, prefix):
            if isinstance(target, keras.layers.Layer):
                # Feed the nested model its input, then probe inside it.
                self.nested.append((len(outputs), _Probe(target, path)))
                outputs.append(target.input)
            else:
                self.layer_names.append(path)
                outputs.append(target)
        for _, probe in self.nested:
            self.layer_names += probe.layer_names
        if not self.layer_names:
            raise ValueError(
                f"Model '{model.name}' has no rectified units (ReLU or "
                f"SugarReLU outputs) to measure: nothing can be dead.")
        self._fn = keras.Model(model.inputs, outputs)

    def __call__(self, batch):
        # predict_on_batch: compiled like predict(), no gradients, numpy out.
        values = self._fn.predict_on_batch(batch)
        if not isinstance(values, (list, tuple)):
            values = [values]
        nested = {index for index, _ in self.nested}
        results = [v for i, v in enumerate(values) if i not in nested]
        for index, probe in self.nested:
            results += probe(values[index])
        return results


class DeadUnitStats:
    """Accumulates, per layer, which units were ever active and zero counts."""

    def __init__(self, names):
        self.names = names
        self.active = [None] * len(names)
        self.zeros = [0] * len(names)
        self.counts = [0] * len(names)

    def update(self, outputs):
        for i, out in enumerate(outputs):
            out = out.reshape(-1, out.shape[-1])
            active = np.any(out != 0, axis=0)
            self.active[i] = active if self.active[i] is None else (
                self.active[i] | active)
            self.zeros[i] += int(np.count_nonzero(out == 0))
            self.counts[i] += out.size

    def layers(self):
        """Per-layer dicts: units, dead, dead_fraction, sparsity."""
        rows = []
        for name, active, zeros, count in zip(self.names, self.active,
                                              self.zeros, self.counts):
            dead = int(np.count_nonzero(~active))
            rows.append({"layer": name, "units": int(active.size),
                         "dead": dead, "dead_fraction": dead / active.size,
                         "sparsity": zeros / count})
        return rows

    def totals(self):
        units = sum(a.size for a in self.active)
        dead = sum(int(np.count_nonzero(~a)) for a in self.active)
        return {"units": units, "dead": dead, "dead_fraction": dead / units,
                "sparsity": sum(self.zeros) / sum(self.counts)}


def _check_model(model):
    if not model_graph.is_graph_model(model):
        raise ValueError(
            f"Dead-unit measurement reads the outputs of a functional or "
            f"Sequential model's layers. Received: {type(model).__name__} "
            f"(a subclassed model has no layer graph to read).")


def _check_probe(model, data):
    """Turns nested lists into arrays; refuses datasets, empty probe data
    and arrays of the wrong example shape."""
    if not isinstance(data, (np.ndarray, list, tuple, dict)) and not (
            keras.ops.is_tensor(data)):
        raise TypeError(
            f"The probe must be arrays or tensors of inputs (e.g. "
            f"x_val[:512]). Received: {type(data).__name__}. For a "
            f"tf.data or other dataset, collect a few batches first, e.g. "
            f"np.concatenate([x for x, _ in dataset.take(4)]).")
    if len(model.inputs) == 1 and isinstance(data, (list, tuple)):
        data = np.asarray(data)  # One input given as nested lists.
    arrays = keras.tree.flatten(data)
    if not arrays or len(arrays[0]) == 0:
        raise ValueError("The probe data is empty: at least one example is "
                         "needed to tell dead units from live ones.")
    if len(arrays) == len(model.inputs):
        for tensor, array in zip(model.inputs, arrays):
            expected, got = tuple(tensor.shape[1:]), np.shape(array)[1:]
            if len(expected) != len(got) or any(
                    e is not None and e != g for e, g in zip(expected, got)):
                raise ValueError(
                    f"The probe data has example shape {got}, but model "
                    f"'{model.name}' takes {expected}.")
    return data


def _check_batch_size(batch_size):
    if (isinstance(batch_size, bool) or not isinstance(batch_size, int)
            or batch_size < 1):
        raise ValueError(
            f"batch_size must be a positive integer. Received: "
            f"batch_size={batch_size!r}")


def measure(model, data, batch_size=256, probe=None):
    """Runs `data` through `model` and returns the `DeadUnitStats`.

    With `probe` (a `_Probe` of `model`), `data` and `batch_size` are taken
    as already checked, as `DeadUnitMonitor` does once for all its
    measurements.
    """
    if probe is None:
        _check_model(model)
        _check_batch_size(batch_size)
        data = _check_probe(model, data)
        probe = _Probe(model)
    stats = DeadUnitStats(probe.layer_names)
    n = len(keras.tree.flatten(data)[0])
    for start in range(0, n, batch_size):
        batch = keras.tree.map_structure(
            lambda a: a[start:start + batch_size], data)
        stats.update(probe(batch))
    return stats


def dead_unit_report(model, data, batch_size=256):
    """Per rectified layer: units, dead units, dead fraction and sparsity.

    Args:
        model: A built functional or Sequential model.
        data: Probe inputs (an array, or the structure the model takes).
        batch_size: Examples per forward pass. Defaults to `256`.

    Returns:
        A list of dicts, one per rectified layer, with keys `layer`,
        `units`, `dead`, `dead_fraction` and `sparsity`; the last entry has
        `layer="total"` and covers all rectified units.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
    ...     4, activation="relu", bias_initializer=keras.initializers.Constant(
    ...         -100.0))])
    >>> dead_unit_report(model, np.ones((8, 3)))[-1]["dead_fraction"]
    1.0
    """
    stats = measure(model, data, batch_size)
    return stats.layers() + [{"layer": "total", **stats.totals()}]


class DeadUnitMonitor(keras.callbacks.Callback):
    """Logs the dead-unit fraction and sparsity of rectified layers.

    Writes into `logs`, so `History`, `CSVLogger`, `TensorBoard` and the
    progress bar pick the values up: `dead_units` (fraction over all
    rectified units), `sparsity`, and per layer `dead_units/<layer>`. One
    extra forward pass over the probe per measurement; training itself is
    not changed (works with `jit_compile=True` and on every backend).

    Args:
        probe: Inputs to measure on (e.g. `x_val[:512]`).
        every_n_batches: Measure every N training batches as well as at the
            end of each epoch. Defaults to `None` (epoch ends only).
        per_layer: Also log one value per layer. Defaults to `True`.
        batch_size: Probe examples per forward pass. Defaults to `256`.

    Attributes:
        history: List of `(epoch, batch, totals)` for every measurement,
            batch-level ones included.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
    ...     4, activation=SugarReLU()), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> x = np.ones((8, 3))
    >>> history = model.fit(x, np.ones((8, 1)), verbose=0,
    ...                     callbacks=[DeadUnitMonitor(probe=x)])
    >>> "dead_units" in history.history
    True
    """

    def __init__(self, probe, every_n_batches=None, per_layer=True,
                 batch_size=256):
        super().__init__()
        if every_n_batches is not None and (
                not isinstance(every_n_batches, int) or every_n_batches < 1):
            raise ValueError(
                f"every_n_batches must be a positive integer or None. "
                f"Received: every_n_batches={every_n_batches!r}")
        _check_batch_size(batch_size)
        self.probe_data = probe
        self.every_n_batches = every_n_batches
        self.per_layer = per_layer
        self.batch_size = batch_size
        self.history = []
        self._probe = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        _check_model(self.model)
        self._probe = None
        # Keras hands the epoch logs to callbacks in list order: run first,
        # so CSVLogger and EarlyStopping(monitor="dead_units") listed
        # before this callback still see its values.
        model_graph.move_to_front_of_calling_list(self)

    def _measure(self, batch, logs):
        # Built at the first measurement, not at train begin: a Sequential
        # model without an Input only gets its inputs during the first
        # training step (on TensorFlow).
        if self._probe is None:
            self.probe_data = _check_probe(self.model, self.probe_data)
            self._probe = _Probe(self.model)
        stats = measure(self.model, self.probe_data, self.batch_size,
                        self._probe)
        totals = stats.totals()
        self.history.append((self._epoch, batch, totals))
        if logs is not None:
            logs["dead_units"] = totals["dead_fraction"]
            logs["sparsity"] = totals["sparsity"]
            if self.per_layer:
                for row in stats.layers():
                    logs[f"dead_units/{row['layer']}"] = row["dead_fraction"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_batches and (batch + 1) % self.every_n_batches == 0:
            self._measure(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._measure(None, logs)

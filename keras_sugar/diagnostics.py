"""Dead units and sparsity of rectified layers, and a callback that logs them.

A unit (a channel of a convolution, a neuron of a dense layer: the last
axis) is dead when its rectified output is zero for every example of the
probe data. A layer called more than once (shared) is measured as one
layer over all its calls: its unit is dead when zero for every example of
every call. Sparsity is the fraction of zero outputs. Both are read from
forward values, which plain ReLU and SugarReLU compute identically, so the
same model reports the same numbers before it is trained either way.

What is measured is what the model's site map (`keras_sugar.site_map`)
says is rectified and observable, under the same paths as `sugarify`'s
and `strip_sugar`'s reports: ReLU, capped ReLU and SugarReLU outputs of
the graph's layers and raw ops, and those of the sublayers a custom
layer calls (the feed-forward units of a transformer block), recorded as
the model runs eagerly. Sites that cannot be observed (`relu` in a custom
layer's Python code, inside a recurrent loop) are named, with why, by
`unobserved_sites` and in a warning.
"""

import warnings
import weakref

import keras
import numpy as np

from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import site_map
from keras_sugar import site_records


def _observed(the_map):
    """The rectified sites of a map whose outputs can be read."""
    return [site for site in the_map.sites if site.rectified and
            not isinstance(site.observe, site_records.Unobservable)]


def _unobserved(the_map):
    return [site for site in the_map.sites if site.rectified and
            isinstance(site.observe, site_records.Unobservable)]


def rectified_sites(model):
    """The sites of `model` (`site_records.Site`s) whose rectified output the
    diagnostics measure: ReLU, capped ReLU and SugarReLU outputs, read from
    the graph (a layer's output, at each of its calls) or, inside layers
    that build their sublayers themselves, from the sublayers' calls."""
    return _observed(site_map.read(model))


def unobserved_sites(model):
    """`(path, reason)` for each rectified site of `model` whose output
    cannot be measured (`relu` called in a custom layer's Python code, an
    activation inside a recurrent layer's loop).

    Example:

    >>> model = keras.Sequential([keras.Input((4, 3)), keras.layers.SimpleRNN(
    ...     2, activation="relu", name="rnn")])
    >>> unobserved_sites(model)
    [('rnn', "applied inside a recurrent layer's loop")]
    """
    return [(site.path, site.observe.reason)
            for site in _unobserved(site_map.read(model))]


def _graphs_in(graph, found=None):
    """`{id(graph)}` for `graph` and every graph run inside it (nested
    models, the graph copies `SugarPatched` layers run)."""
    found = set() if found is None else found
    found.add(id(graph))
    for node in model_graph.nodes(graph):
        inner = patching.graph_of(node)
        if inner is not None and id(inner) not in found:
            _graphs_in(inner, found)
    return found


class _GraphProbe:
    """Computes, for one graph, the outputs of its observed nodes and the
    inputs of the graphs inside it that hold observed nodes (each read by
    a probe of its own)."""

    def __init__(self, graph, sites, extra_outputs=()):
        # Per site of this graph, the positions of its outputs (one per
        # call) among the probe's; per graph inside it, its probe and the
        # positions of its inputs at each call.
        self.sites, self.positions, self.inner = [], [], []
        outputs = []
        for site in sites:
            if site.observe.graph is graph:
                calls = model_graph.calls(graph, site.observe.node)
                self.sites.append(site)
                self.positions.append(
                    range(len(outputs), len(outputs) + len(calls)))
                outputs += [call.outputs[0] for call in calls]
        for node in model_graph.nodes(graph):
            inner = patching.graph_of(node)
            if inner is None or inner is graph:
                continue
            below = _graphs_in(inner)
            held = [site for site in sites if id(site.observe.graph) in below]
            if not held:
                continue
            calls = []
            for call in model_graph.calls(graph, node):
                tensors = keras.tree.flatten(call.input_tensors)
                calls.append(range(len(outputs), len(outputs) + len(tensors)))
                outputs += tensors
            self.inner.append((_GraphProbe(inner, held), calls))
        outputs += list(extra_outputs)
        # The graph's own input structure, so that a batch is taken as
        # `predict` takes it (and Keras has no structure to warn about).
        self.input = model_graph.graph_inputs(graph)
        self._fn = keras.Model(self.input, outputs)

    def __call__(self, batch, eager=False):
        """`{id(site): [output per call]}` for every site below."""
        if eager:
            values = keras.tree.map_structure(
                keras.ops.convert_to_numpy, self._fn(batch, training=False))
        else:
            # predict_on_batch: compiled like predict(), no gradients.
            values = self._fn.predict_on_batch(batch)
        if not isinstance(values, (list, tuple)):
            values = [values]
        found = {id(site): [values[i] for i in positions]
                 for site, positions in zip(self.sites, self.positions)}
        for probe, calls in self.inner:
            for positions in calls:
                inputs = keras.tree.pack_sequence_as(
                    probe.input, [values[i] for i in positions])
                for key, outputs in probe(inputs).items():
                    found.setdefault(key, []).extend(outputs)
        return found


class _Probe:
    """Computes every observed rectified output of a model for a batch:
    per site, its groups of units (one for a node's output, one per
    sublayer for the sublayers' calls), each a list of outputs."""

    def __init__(self, model):
        if not model_graph.is_graph_model(model) or not (
                model_graph.is_built_graph(model)):
            raise ValueError(
                f"Dead-unit measurement needs a built functional or "
                f"Sequential model. Received: {type(model).__name__} "
                f"(built={getattr(model, 'built', None)}).")
        the_map = site_map.read(model)
        self.sites = _observed(the_map)
        self.unobserved = _unobserved(the_map)
        if not self.sites:
            raise _no_rectified_units(model, self.unobserved)
        if self.unobserved:
            warnings.warn(
                "Dead units are not measured at "
                + "; ".join(f"'{site.path}' ({site.observe.reason})"
                            for site in self.unobserved), stacklevel=3)
        self.layer_names = [site.path for site in self.sites]
        read_from_graph = [site for site in self.sites
                           if isinstance(site.observe, site_records.NodeOutput)]
        # Layers called inside other layers' calls are recorded as the
        # whole model runs eagerly.
        self._recorded = list({id(layer): layer for site in self.sites
                               if isinstance(site.observe,
                                             site_records.CallOutputs)
                               for layer in site.observe.layers}.values())
        extra = keras.tree.flatten(model.outputs) if self._recorded else ()
        self._graph = _GraphProbe(model, read_from_graph, extra)
        self.input = self._graph.input

    def __call__(self, batch):
        """Per measured site, its groups of outputs (see the class)."""
        if not self._recorded:
            found = self._graph(batch)
            return [[found[id(site)]] for site in self.sites]
        with model_graph.recording_calls(self._recorded) as recorded:
            found = self._graph(batch, eager=True)
        by_layer = {id(layer): outputs
                    for layer, outputs in zip(self._recorded, recorded)}
        return [[found[id(site)]] if isinstance(
            site.observe, site_records.NodeOutput) else
            [by_layer[id(layer)] for layer in site.observe.layers]
            for site in self.sites]


# One probe per model, for every report and monitor on it: a probe
# compiles its forward pass when first used (TensorFlow warns when
# functions are traced again and again); it shares the model's layers, so
# it always sees the current weights. Kept with the model's outputs: a
# `Sequential` that gains or loses a layer has new ones, and a new probe.
_PROBES = weakref.WeakKeyDictionary()


def _probe_of(model):
    outputs = keras.tree.flatten(model.outputs)
    cached_outputs, probe = _PROBES.get(model, ((), None))
    if probe is None or len(cached_outputs) != len(outputs) or any(
            a is not b for a, b in zip(cached_outputs, outputs)):
        probe = _Probe(model)
        _PROBES[model] = (outputs, probe)
    return probe


def _no_rectified_units(model, unobserved=()):
    cannot = "".join(f"; '{site.path}' cannot be observed: "
                     f"{site.observe.reason}" for site in unobserved)
    return ValueError(
        f"Model '{model.name}' has no rectified units (ReLU or SugarReLU "
        f"outputs) to measure: nothing can be dead{cannot}.")


class DeadUnitStats:
    """Accumulates, per layer, which units were ever active and zero counts."""

    def __init__(self, names):
        self.names = names
        self.active = [None] * len(names)
        self.zeros = [0] * len(names)
        self.counts = [0] * len(names)

    def update(self, outputs):
        """Adds a batch: per layer, its groups of units, each a list of
        outputs (one array per call, the units on the last axis)."""
        for i, groups in enumerate(outputs):
            active = []
            for calls in groups:
                out = np.concatenate([np.reshape(a, (-1, np.shape(a)[-1]))
                                      for a in calls])
                active.append(np.any(out != 0, axis=0))
                self.zeros[i] += int(np.count_nonzero(out == 0))
                self.counts[i] += out.size
            active = np.concatenate(active)
            self.active[i] = active if self.active[i] is None else (
                self.active[i] | active)

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
    names = [tensor.name for tensor in model.inputs]
    if (isinstance(data, dict) and not isinstance(
            model_graph.graph_inputs(model), dict) and set(names) <= set(data)):
        # Keyed by input names, as `predict` takes it: in the model's order.
        data = [data[name] for name in names]
        data = data[0] if len(data) == 1 else data
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
        probe = _probe_of(model)
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
        data: Probe inputs, in any structure `predict` takes: an array, a
            list or tuple in the order of `model.inputs`, a dict keyed by
            input names.
        batch_size: Examples per forward pass. Defaults to `256`.

    Returns:
        A list of dicts, one per rectified layer, with keys `layer`,
        `units`, `dead`, `dead_fraction` and `sparsity`; a shared layer
        is one entry, measured over all its calls (a unit is dead when
        zero at every call). The last entry has `layer="total"` and covers
        all rectified units.

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

    A shared layer is one layer, measured over all its calls (see
    `dead_unit_report`). A model without rectified units fails in
    `on_train_begin`, before any batch, and so does bad probe data for a
    model with inputs (a `Sequential` without an `Input` gets its probe at
    the first measurement).

    Args:
        probe: Inputs to measure on (e.g. `x_val[:512]`), in any structure
            `predict` takes.
        every_n_batches: Measure every N training batches as well as at the
            end of each epoch. Defaults to `None` (epoch ends only).
        per_layer: Also log one value per layer. Defaults to `True`.
        batch_size: Probe examples per forward pass. Defaults to `256`.

    Attributes:
        history: List of `(epoch, batch, totals)` for every measurement,
            batch-level ones included.

    Example:

    >>> import numpy as np
    >>> from keras_sugar import SugarReLU
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
        # A bool is an int to Python; `True` is no count of batches.
        if every_n_batches is not None and (
                not isinstance(every_n_batches, int)
                or isinstance(every_n_batches, bool) or every_n_batches < 1):
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
        # Bad probe data or nothing to measure fail here, before any batch.
        if model_graph.is_built_graph(self.model):
            self._build_probe()
        else:
            the_map = site_map.read(self.model)
            if not _observed(the_map):
                raise _no_rectified_units(self.model, _unobserved(the_map))
        # Keras hands the epoch logs to callbacks in list order: run first,
        # so CSVLogger and EarlyStopping(monitor="dead_units") listed
        # before this callback still see its values.
        model_graph.move_to_front_of_calling_list(self)

    def _measure(self, batch, logs):
        # A Sequential model without an Input only gets its inputs during
        # the first training step (on TensorFlow): its probe is built at
        # the first measurement.
        if self._probe is None:
            self._build_probe()
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

    def _build_probe(self):
        self.probe_data = _check_probe(self.model, self.probe_data)
        self._probe = _probe_of(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_batches and (batch + 1) % self.every_n_batches == 0:
            self._measure(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._measure(None, logs)

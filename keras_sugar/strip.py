"""`strip_sugar`: a trained SUGAR model as a plain ReLU model, for shipping.

SUGAR changes only the backward pass, so once training ends every
SugarReLU can become Keras' own ReLU with the same predictions, bit for
bit. The stripped model holds nothing of this package: its `.keras` file
loads, and it exports (SavedModel, TFLite, ONNX, `torch.export`,
`jax.export`), where `keras_sugar` is not installed. The name follows
`tfmot.sparsity.keras.strip_pruning`, which does the same for pruning.
"""

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU
from keras_sugar.activations import sugar_relu

# Keras' own function for the caps it has a name for.
_NAMED_CAPS = {None: "relu", 6.0: "relu6"}


class StripReport:
    """What `strip_sugar` replaced.

    Attributes:
        replaced: `(path, form, replacement)` for every SugarReLU, e.g.
            `("conv1", "inline (Conv2D)", "relu")`.
        optimizer: For a compiled model, what became of its optimizer;
            None otherwise.
    """

    def __init__(self):
        self.replaced = []
        self.optimizer = None

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        lines = [f"strip_sugar: {len(self.replaced)} SugarReLU(s) -> "
                 f"Keras' own ReLU"]
        for path, form, replacement in self.replaced:
            lines.append(f"    {path:<48} {form:<22} {replacement}")
        if self.optimizer:
            lines.append(f"optimizer: {self.optimizer}")
        return "\n".join(lines)

    __repr__ = __str__


def _is_sugar(value):
    """Whether a config value is a SugarReLU or the `sugar_relu` function,
    as an object or serialized as Keras writes activations into configs."""
    if isinstance(value, SugarReLU) or value is sugar_relu:
        return True
    if not isinstance(value, dict):
        return False
    registered = str(value.get("registered_name") or "")
    return (registered in ("keras_sugar>SugarReLU", "keras_sugar>sugar_relu")
            or value.get("class_name") == "function"
            and value.get("config") == "sugar_relu")


def _cap_of(value):
    if isinstance(value, SugarReLU):
        return value.max_value
    config = value.get("config") if isinstance(value, dict) else None
    return config.get("max_value") if isinstance(config, dict) else None


def _plain_activation(value, where):
    """Keras' own activation name for a SugarReLU (object or serialized)."""
    cap = _cap_of(value)
    if cap not in _NAMED_CAPS:
        raise ValueError(
            f"strip_sugar cannot replace the SugarReLU(max_value={cap}) "
            f"held as an activation by {where}: Keras' activation "
            f"functions have a cap of 6 only (relu6). Use a "
            f"keras.layers.ReLU(max_value={cap}) layer (or "
            f"keras_sugar.layers.SugarReLU(max_value={cap}) while "
            f"training) there instead.")
    return _NAMED_CAPS[cap]


def stripped_config(config, where):
    """`(new_config, count)`: `config` (a layer config, at any depth: a
    wrapped layer's, a recurrent cell's, a block's own arguments) with
    every SugarReLU replaced by Keras' own ReLU, and how many. `config`
    itself is not changed (a layer's `get_config()` may hand out dicts it
    holds, and a `SugarPatched`'s is its saved source): the dicts and
    lists on the way to a replacement are new, everything else is shared.

    Example:

    >>> config = keras.layers.Dense(2, activation=SugarReLU()).get_config()
    >>> new, count = stripped_config(config, "dense")
    >>> count, new["activation"], config["activation"]["class_name"]
    (1, 'relu', 'SugarReLU')
    """
    if _is_sugar(config):
        return _plain_activation(config, where), 1
    if isinstance(config, dict):
        items = list(config.items())
    elif isinstance(config, list):
        items = list(enumerate(config))
    else:
        return config, 0
    count, new = 0, {}
    for key, value in items:
        new[key], found = stripped_config(value, where)
        count += found
    if not count:
        return config, 0
    return (new if isinstance(config, dict) else list(new.values())), count


def _describe(layer):
    return f"layer '{layer.name}' ({type(layer).__name__})"


class _StripFunction:
    """Rebuilds each layer for `clone_model` without SugarReLU."""

    def __init__(self, paths, report):
        self.paths = paths
        self.report = report
        self.pairs = []

    def __call__(self, layer):
        if (not isinstance(layer, keras.layers.Layer)
                or isinstance(layer, keras.layers.InputLayer)):
            return layer  # Raw ops hold no SugarReLU.
        path = self.paths.get(id(layer), layer.name)
        if isinstance(layer, patching.SugarPatched):
            return self._strip_patched(layer, path)
        if isinstance(layer, sugar_layers.SugarReLU):
            return self._relu_layer(layer, path, "SugarReLU layer")
        if (isinstance(layer, keras.layers.Activation)
                and isinstance(layer.activation, SugarReLU)
                and layer.activation.max_value not in _NAMED_CAPS):
            # A cap Keras has no function for: the ReLU layer computes it.
            return self._relu_layer(layer, path, "Activation layer")
        config, count = stripped_config(layer.get_config(),
                                        _describe(layer))
        new = layer.__class__.from_config(config)
        if count:
            self.report.replaced += [(path, _form(layer), "relu")] * count
        self.pairs.append((layer, new))
        return new

    def _relu_layer(self, layer, path, form):
        """Keras' `ReLU` layer (with the cap, if any) computing `layer`'s
        SugarReLU, named and typed as `layer`."""
        new = keras.layers.ReLU(max_value=layer.activation.max_value,
                                name=layer.name, dtype=layer.dtype_policy)
        self.report.replaced.append((path, form, _relu_layer_name(new)))
        return new

    def _strip_patched(self, patched, path):
        """The layer a `SugarPatched` wraps, rebuilt from its own config
        (which builds its sublayers with their original activations),
        with SugarReLUs in that config replaced too."""
        serialized, _ = stripped_config(patched.get_config()["layer"],
                                        _describe(patched))
        with model_graph.rebuilding_own_objects():
            new = keras.saving.deserialize_keras_object(serialized)
        _check_rebuilt_relus(patched, new)
        # Weights once the clone has called it (building what it builds).
        self.pairs.append((patched.layer, new))
        sites = relu_sites.count_sugar_sites(patched.layer)
        self.report.replaced.append(
            (path, f"inside {type(new).__name__}", f"relu x{sites}"))
        return new


def _check_rebuilt_relus(patched, rebuilt):
    """Refuses when the rebuilt layer computes something else than ReLU
    where the SugarReLUs were: a layer that builds its sublayers itself
    with GELU (sugarify's `targets=("gelu",)`) rebuilds them with GELU,
    and only `SugarPatched` can keep a ReLU there."""
    relus = ("relu", "relu6")
    found = []
    # (Its `relu_layers` are plain ReLU layers in the rebuilt layer too.)
    for path in patched.sites:
        sublayer = model_graph.sublayer_at(rebuilt, tuple(path))
        if relu_sites.target_of_function(sublayer.activation, relus) is None:
            found.append(f"{sublayer.name} "
                         f"({getattr(sublayer.activation, '__name__', '?')})")
    nodes = model_graph.nodes(rebuilt) if patched.graph_sites else []
    for index, kind, _ in patched.graph_sites:
        if kind == patching.GRAPH_OP and relu_sites.raw_op_target(
                nodes[index], relus) not in relus:
            found.append(f"{nodes[index].name} ({type(nodes[index]).__name__})")
    if found:
        raise ValueError(
            f"strip_sugar cannot put Keras' ReLU in {_describe(rebuilt)} "
            f"at {', '.join(found)}: the layer builds those itself with "
            f"another activation (sugarify replaced a non-ReLU target "
            f"there), so without keras_sugar it would compute that "
            f"activation again. Ship the SUGAR model (its predictions are "
            f"ReLU's), or rewrite only ReLU targets; nothing was returned.")


def _relu_layer_name(relu):
    cap = relu.max_value
    return "ReLU" if cap is None else f"ReLU(max_value={cap})"


def _form(layer):
    if isinstance(layer, keras.layers.Activation):
        return "Activation layer"
    return f"inline ({type(layer).__name__})"


def _copy_weights(source, target):
    """Copies weights between two builds of the same layer, refusing a
    structure that differs instead of misplacing them."""
    source_weights, target_weights = source.weights, target.weights
    shapes = [tuple(w.shape) for w in source_weights]
    if shapes != [tuple(w.shape) for w in target_weights]:
        raise ValueError(
            f"strip_sugar rebuilt {_describe(source)} from its config with "
            f"other weights ({len(target_weights)} instead of "
            f"{len(source_weights)}, or other shapes), so its trained "
            f"weights cannot be carried over; nothing was returned.")
    target.set_weights(source.get_weights())


def strip_sugar(model):
    """Returns a copy of `model` in which every SugarReLU is Keras' ReLU.

    The inverse of `sugarify` for ReLU targets: SugarReLU activations
    (inline, `Activation` layers, in wrappers and recurrent cells, in the
    arguments of custom layers), `keras_sugar.layers.SugarReLU` layers,
    capped ones (`relu6`, or `keras.layers.ReLU(max_value=...)` for other
    caps) and the layers `sugarify` wrapped in `SugarPatched` (rebuilt
    from their own config: keras_cv and keras_hub backbones come back as
    their own classes) become plain ReLUs. Weights are copied, the
    original is untouched, predictions are bit for bit the same, and the
    result loads and exports where `keras_sugar` is not installed. A
    compiled model comes back compiled as it was (loss, metrics), with its
    optimizer's state (step count, momentum and other slots) carried over,
    as the report says: evaluating it, saving it or training on gives what
    the original would.

    Args:
        model: A functional or `Sequential` Keras model.

    Returns:
        The new model, with `model.strip_report` (a `StripReport`) set.

    Raises:
        ValueError: For a model without a graph (subclassed), or a
            SugarReLU that cannot be stripped (a custom layer holding one
            outside its config, or an activation with a cap other than 6):
            the message names the layer, and nothing is returned.
        TypeError: When `model` is not a Keras model.

    Example:

    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(8, activation=SugarReLU())(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> plain = strip_sugar(model)
    >>> plain.layers[1].activation is keras.activations.relu
    True
    >>> len(plain.strip_report)
    1
    """
    model_graph.check_graph_model(
        model, "strip_sugar", "Set layer.activation = 'relu' on the layers "
        "you own instead.")
    report = StripReport()
    strip_function = _StripFunction(model_graph.node_paths(model), report)
    with model_graph.rebuilding_own_objects():
        new_model = keras.models.clone_model(
            model, clone_function=strip_function, recursive=True)
    for old, new in strip_function.pairs:
        if old.weights:
            _copy_weights(old, new)
    _check_nothing_left(new_model)
    if getattr(model, "compiled", False) and model.optimizer is not None:
        _carry_optimizer_state(model, new_model, strip_function.pairs,
                               report)
    new_model.strip_report = report
    return new_model


def _carry_optimizer_state(model, new_model, pairs, report):
    """`clone_model` compiles the copy as `model` was, with a fresh
    optimizer (step 0, no momentum): each of `model`'s optimizer slots is
    carried over to the weight copied from its own (`pairs`)."""
    old, new = model.optimizer, new_model.optimizer
    name = type(old).__name__
    if not old.built:
        report.optimizer = f"{name}, not trained yet (nothing to carry over)"
        return
    copied = {id(source): target for old_layer, new_layer in pairs
              for source, target in zip(old_layer.weights, new_layer.weights)}
    missing = [v.path for v in model.trainable_variables
               if id(v) not in copied]
    if missing:
        raise ValueError(
            f"strip_sugar cannot carry the optimizer state of weights "
            f"{missing} over: they were not copied to the new model; "
            f"nothing was returned.")
    # Built in the original's order, the slots line up with its own.
    new.build([copied[id(v)] for v in model.trainable_variables])
    store = {}
    old.save_own_variables(store)
    new.load_own_variables(store)
    report.optimizer = (f"{name}, its state carried over (step "
                        f"{int(keras.ops.convert_to_numpy(new.iterations))})")


def _check_nothing_left(model):
    for layer in model_graph.descendants(model):
        held = [getattr(layer, key, None) for key in ("activation",
                                                      "recurrent_activation")]
        if any(_is_sugar(a) for a in held):
            raise ValueError(
                f"strip_sugar cannot remove the SugarReLU of "
                f"{_describe(layer)}: the layer that builds it does not "
                f"hold it in its config, so rebuilding it brings it back. "
                f"Set that sublayer's activation to 'relu' in the code "
                f"that builds it; nothing was returned.")

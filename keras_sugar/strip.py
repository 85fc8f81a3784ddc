"""`strip_sugar`: a trained SUGAR model as a plain ReLU model, for shipping.

SUGAR changes only the backward pass, so once training ends every
SugarReLU can become Keras' own ReLU with the same predictions, bit for
bit. The stripped model holds nothing of this package: its `.keras` file
loads, and it exports (SavedModel, TFLite, ONNX, `torch.export`,
`jax.export`), where `keras_sugar` is not installed. The name follows
`tfmot.sparsity.keras.strip_pruning`, which does the same for pruning.
"""

import keras
import numpy as np

from keras_sugar import cloning
from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import site_map
from keras_sugar import site_records
from keras_sugar.activations import SugarReLU
from keras_sugar.activations import sugar_relu
from keras_sugar.report_rows import Change
from keras_sugar.report_rows import format_rows

# Keras' own function for the caps it has a name for.
_NAMED_CAPS = {None: "relu", 6.0: "relu6"}
# How `SugarReLU` and `sugar_relu` appear in a saved config.
_SAVED_NAMES = (f"keras_sugar>{SugarReLU.__name__}",
                "keras_sugar>sugar_relu")


class StripReport:
    """What `strip_sugar` replaced.

    Attributes:
        replaced: One `report_rows.Change` per site that held a SugarReLU
            (the rows of `sugarify`'s report): its path, form, what it
            computes (`"relu"`, or `"relu6"` for a capped one), and a note
            saying what it held and what Keras computes there now.
        optimizer: For a compiled model, what became of its optimizer;
            None otherwise.
    """

    def __init__(self, replaced):
        self.replaced = list(replaced)
        self.optimizer = None

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        lines = [f"strip_sugar: {len(self.replaced)} SugarReLU(s) -> "
                 f"Keras' own ReLU"] + format_rows(self.replaced)
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
    return (registered in _SAVED_NAMES
            or value.get("class_name") == "function"
            and value.get("config") in ("sugar_relu", _SAVED_NAMES[1]))


def _cap_of(value):
    if isinstance(value, SugarReLU):
        return value.max_value
    config = value.get("config") if isinstance(value, dict) else None
    return config.get("max_value") if isinstance(config, dict) else None


def _plain_activation(value, where):
    """Keras' own activation for a SugarReLU (object or serialized): its
    name for the caps it names (relu, relu6), else a `keras.layers.ReLU`
    with the cap, serialized, where Keras takes a layer as an activation
    (as the model `sugarify` rewrote held it)."""
    cap = _cap_of(value)
    if cap in _NAMED_CAPS:
        return _NAMED_CAPS[cap]
    relu = keras.saving.serialize_keras_object(
        keras.layers.ReLU(max_value=cap))
    try:
        keras.activations.get(relu)
    except ValueError:  # Keras 3.9 takes functions only.
        raise ValueError(
            f"strip_sugar cannot replace the SugarReLU(max_value={cap}) "
            f"held as an activation by {where}: Keras {keras.__version__} "
            f"takes no layer as an activation, and its activation "
            f"functions have a cap of 6 only (relu6). Use a "
            f"keras.layers.ReLU(max_value={cap}) layer (or "
            f"keras_sugar.layers.SugarReLU(max_value={cap}) while "
            f"training) there instead.") from None
    return relu


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


def _relu_layer(cap, like):
    """Keras' `ReLU` layer (with the cap, if any), named and typed as the
    layer `like` it replaces."""
    return keras.layers.ReLU(max_value=cap, name=like.name,
                             dtype=like.dtype_policy)


def _stripped_layer(node):
    """The layer `node` is without SugarReLU: what a `SugarPatched` wraps,
    rebuilt from its own (stripped) config; a SugarReLU layer, an
    `Activation` of a cap Keras has no function for, or a `Lambda` of
    SUGAR, as Keras' `ReLU` layer or `Activation`; any other rebuilt from
    its config with Keras' ReLU for each SugarReLU in it."""
    if not isinstance(node, keras.layers.Layer):
        return node  # Raw ops hold no SugarReLU.
    if isinstance(node, sugar_layers.SugarReLU):
        return _relu_layer(node.activation.max_value, node)
    if isinstance(node, keras.layers.Activation) and isinstance(
            node.activation, SugarReLU) and (
            node.activation.max_value not in _NAMED_CAPS):
        return _relu_layer(node.activation.max_value, node)
    if isinstance(node, keras.layers.Lambda) and _is_sugar(node.function):
        return keras.layers.Activation(
            _plain_activation(node.function, _describe(node)),
            name=node.name, dtype=node.dtype_policy)
    if isinstance(node, patching.SugarPatched):
        source, _ = stripped_config(node.source_config(), _describe(node))
        with model_graph.rebuilding_own_objects():
            return keras.saving.deserialize_keras_object(source)
    config, _ = stripped_config(node.get_config(), _describe(node))
    return node.__class__.from_config(config)


def _what_keras_computes(site):
    """What the stripped model computes at a SUGAR site, for the report."""
    cap = site.sugar.max_value
    if isinstance(site.replace, site_records.SwapNode) or (
            cap not in _NAMED_CAPS and site.form == "Activation layer"):
        return "ReLU layer" if cap is None else (
            f"ReLU(max_value={cap}) layer")
    if site.patched:
        return "what the layer builds there itself"
    return _NAMED_CAPS.get(cap, f"ReLU(max_value={cap})")


def _check_plain(before, after):
    """Refuses a stripped model that computes anything but Keras' ReLU
    where SUGAR was, or holds a SugarReLU still: each site of `after`
    (the stripped model's map) must compute what the same site of
    `before` (the SUGAR model's) does, without SUGAR."""
    for old, new in zip(before.sites, after.sites, strict=True):
        if new.sugar is not None:
            raise ValueError(
                f"strip_sugar cannot remove the SugarReLU at '{new.path}' "
                f"({_holder(new)}): the layer that builds it does not hold "
                f"it in its config, so rebuilding it brings it back. Set "
                f"that sublayer's activation to 'relu' in the code that "
                f"builds it; nothing was returned.")
        if old.sugar is not None and new.activation != old.activation:
            raise ValueError(
                f"strip_sugar cannot put Keras' ReLU at '{new.path}' "
                f"({_holder(new)}): the layer builds it itself with "
                f"another activation ({new.activation}; sugarify replaced "
                f"a non-ReLU target there), so without keras_sugar it "
                f"would compute that activation again. Ship the SUGAR "
                f"model (its predictions are ReLU's), or rewrite only ReLU "
                f"targets; nothing was returned.")


def _holder(site):
    """The layer holding a site, as messages name it."""
    replace = site.replace
    layer = getattr(replace, "node", None)
    if isinstance(replace, site_records.PatchSublayer):
        layer = model_graph.sublayer_at(patching.base_of(layer),
                                        replace.position)
    return _describe(layer) if isinstance(layer, keras.layers.Layer) else (
        "a raw op")


def _strip_wrapper(model, wrapper):
    """A model `sugarify` rewrote through its rebuild route, as the model
    its wrapper saved (keras_cv and keras_hub backbones come back as their
    own classes), without SugarReLU, trained weights copied."""
    source, _ = stripped_config(wrapper.source_config(), _describe(wrapper))
    with model_graph.rebuilding_own_objects():
        plain = keras.saving.deserialize_keras_object(source)
    running = patching.graph_of(wrapper)
    cloning.copy_weights(running, plain, "strip_sugar")
    # The nodes keep the names (and so the paths) they have now.
    patching.name_nodes(plain, patching.node_names_of(running))
    return plain


def strip_sugar(model):
    """Returns a copy of `model` in which every SugarReLU is Keras' ReLU.

    The inverse of `sugarify` for ReLU targets: SugarReLU activations
    (inline, `Activation` layers, in wrappers and recurrent cells, in the
    arguments of custom layers), `keras_sugar.layers.SugarReLU` layers,
    capped ones (`relu6`, or `keras.layers.ReLU(max_value=...)` for other
    caps) and the layers `sugarify` wrapped in `SugarPatched` (rebuilt
    from their own config: keras_cv and keras_hub backbones come back as
    their own classes) become plain ReLUs. Weights are copied, the
    original is untouched, predictions are bit for bit the same, every
    site keeps its path (`keras_sugar.site_map`), and the result loads and
    exports (`model.export`, no call needed first) where
    `keras_sugar` is not installed.
    A compiled model comes back compiled as it was (loss, metrics), with
    its optimizer's state (step count, momentum and other slots) carried
    over, as the report says: evaluating it, saving it or training on
    gives what the original would.

    Args:
        model: A functional or `Sequential` Keras model.

    Returns:
        The new model, with `model.strip_report` (a `StripReport`) set.

    Raises:
        ValueError: For a model without a graph (subclassed), or a
            SugarReLU that cannot be stripped (a custom layer holding one
            outside its config, a GELU a layer builds itself that
            `sugarify` replaced, or an activation with a cap other than
            6): the message names the layer, and nothing is returned.
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
    before = site_map.read(model)
    report = StripReport(
        Change(site, site.form,
               f"was {site.sugar!r} -> {_what_keras_computes(site)}")
        for site in before.sugar_sites)
    if before.wrapper is not None:
        plain = _strip_wrapper(model, before.wrapper)
    else:
        plain = cloning.clone(model, _stripped_layer, "strip_sugar")
    _check_plain(before, site_map.read(plain))
    if model.compiled and not plain.compiled:
        plain.compile_from_config(model.get_compile_config())
    if model.compiled and model.optimizer is not None:
        report.optimizer = _carry_optimizer_state(model, plain)
    model_graph.mark_called(plain)  # Exports with no call first.
    plain.strip_report = report
    return plain


def _carry_optimizer_state(model, plain):
    """Carries each of `model`'s optimizer slots over to `plain`'s copy of
    its weight (`clone_model` compiles the copy with a fresh optimizer:
    step 0, no momentum), and says so for the report.

    Both models list their trainable weights in the same order, the
    stripped one holding copies: each pair is checked to have the same
    shape and values before the slots are matched by it."""
    old = model.optimizer
    name = type(old).__name__
    if not old.built:
        return f"{name}, not trained yet (nothing to carry over)"
    weights = model.trainable_variables
    copies = plain.trainable_variables
    if len(weights) != len(copies) or any(
            tuple(w.shape) != tuple(c.shape) or not np.array_equal(
                keras.ops.convert_to_numpy(w), keras.ops.convert_to_numpy(c))
            for w, c in zip(weights, copies)):
        raise ValueError(
            f"strip_sugar cannot carry the state of {name} over: the "
            f"stripped model's trainable weights are not copies of the "
            f"original's, in its order; nothing was returned.")
    new = plain.optimizer
    # Built on the copies in the original's order, the slots line up.
    new.build(copies)
    store = {}
    old.save_own_variables(store)
    new.load_own_variables(store)
    step = int(keras.ops.convert_to_numpy(new.iterations))
    return f"{name}, its state carried over (step {step})"

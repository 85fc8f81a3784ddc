"""The map of a model's activation sites: one walk, one record per site.

`read(model)` walks a functional or `Sequential` model once and returns a
`SiteMap`: a `Site` for every place a ReLU, capped ReLU, GELU, SiLU or
SugarReLU lives (inline activations, `Activation`, `ReLU` and SugarReLU
layers, raw ops, `Lambda` layers, wrapped layers and recurrent cells,
nested models, the sublayers and arguments of custom layers, and what
`sugarify` put there itself: `SugarPatched` layers and rebuilt models).
Each record says where the site is (its path, stable across rewrites),
what it computes, how its rectified output can be observed, and how it
can be replaced. `sugarify` and `strip_sugar` plan from the map, and the
dead-unit diagnostics measure what it says can be observed.

A path names a site by the layer names from the walked model down,
"/"-joined, without the walked model's own name (see
`keras_sugar.model_graph`); inside a layer that builds its sublayers
itself, by the attributes that hold them (`model_graph.child_names`); a
`SugarPatched` adds no name of its own (its sites are those of the layer
it wraps). So a path is the same before and after a rewrite, and after
saving and loading.

Example:

>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
...     4, activation="relu", name="hidden"), keras.layers.ReLU(name="act")])
>>> [(site.path, site.form, site.activation) for site in read(model).sites]
[('hidden', 'inline (Dense)', 'relu'), ('act', 'ReLU layer', 'relu')]
"""

import dataclasses
import inspect
import re
import warnings

import keras

from keras_sugar import activation_kinds as kinds
from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar.site_records import CallOutputs
from keras_sugar.site_records import EditConfig
from keras_sugar.site_records import NodeOutput
from keras_sugar.site_records import PatchSublayer
from keras_sugar.site_records import Site
from keras_sugar.site_records import SiteMap
from keras_sugar.site_records import SwapNode
from keras_sugar.site_records import Unobservable
from keras_sugar.site_records import Unreachable


def count_sugar_sites(model):
    """Number of SugarReLU activations anywhere in `model` (one per site,
    see `read`).

    Example:

    >>> from keras_sugar import SugarReLU
    >>> dense = keras.layers.Dense(2, activation=SugarReLU())
    >>> count_sugar_sites(keras.Sequential([keras.Input((3,)), dense]))
    1
    """
    return len(read(model).sugar_sites)


# Keras layers whose output is their activation's output.
_OUTPUT_IS_ACTIVATION = (
    keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Activation,
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose, keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D, keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D, keras.layers.ReLU, sugar_layers.SugarReLU)


def _output_is_activation(layer):
    """Whether `layer`'s output is its activation's output: a Keras layer
    that applies its activation last, or a `TimeDistributed` of one."""
    if isinstance(layer, keras.layers.TimeDistributed):
        return _output_is_activation(layer.layer)
    return (isinstance(layer, _OUTPUT_IS_ACTIVATION)
            and model_graph.is_core_keras(layer)
            or isinstance(layer, sugar_layers.SugarReLU))


def wrapper_of(model):
    """The `SugarPatched` that wraps the whole graph of `model`, when
    `model`'s only node is one (a model `sugarify` rewrote through its
    rebuild route), else None."""
    if not model_graph.is_graph_model(model):
        return None
    found = [node for node in model_graph.nodes(model)
             if not isinstance(node, keras.layers.InputLayer)]
    if (len(found) == 1 and isinstance(found[0], patching.SugarPatched)
            and patching.graph_of(found[0]) is not None):
        return found[0]
    return None


@keras.saving.register_keras_serializable(package="keras_sugar")
class SiteMarker:
    """A stand-in activation the walk rebuilds a custom layer's copy with,
    in place of each activation argument of its config, to see which
    sublayers that argument reaches (each then holds a marker). Never
    part of a model."""

    def __init__(self, key):
        self.key = key

    def __call__(self, x):
        return x

    def get_config(self):
        return {"key": self.key}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _kinds_called_in_source(function):
    """The kinds named as a whole word in `function`'s source (`ops.relu(`,
    `activations.gelu(`, `"relu"`): `leaky_relu(` and `relu6(` are other
    functions."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # Built-ins and code made at runtime.
        return []
    return [kind for kind in kinds.TARGETS
            if re.search(rf"(?<![\w.]){kind}\s*\(|\.{kind}\s*\(|"
                         rf"[\"']{kind}[\"']", source)]


def _form(layer, key):
    if isinstance(layer, keras.layers.Activation):
        return "Activation layer"
    if key == "recurrent_activation":
        return f"recurrent ({type(layer).__name__})"
    return f"inline ({type(layer).__name__})"


def _cap(activation, holder):
    """The cap of a site computing `activation` (see `activation_kinds`)."""
    return kinds.cap(holder) if activation == "relu6" else None


def _observe_output(graph, node, activation):
    if activation not in kinds.RECTIFIED:
        return Unobservable(f"{activation} is not rectified")
    return NodeOutput(graph, node)


def _observe_calls(layers, activation, where):
    if activation not in kinds.RECTIFIED:
        return Unobservable(f"{activation} is not rectified")
    if layers and all(_output_is_activation(layer) for layer in layers):
        return CallOutputs(tuple(layers))
    return Unobservable(f"applied inside {where}'s own call")


def _activations_in_config(layer, key_path=(), names=()):
    """Yields `(key_path, names, owner, key, function)` for every
    activation of a known kind a layer holds in its config: its own
    `activation` or `recurrent_activation`, and those of the sublayers it
    serializes (`activation_kinds.nested_layers`). `names` are the sublayer
    names on the way, for paths; `owner` the (sub)layer whose `key` holds
    `function`."""
    config = layer.get_config()
    for key in kinds.ACTIVATION_KEYS:
        function = getattr(layer, key, None)
        if key in config and callable(function) and (
                kinds.function_kind(function)):
            yield key_path + (key,), names, layer, key, function
    for key, sublayer in kinds.nested_layers(layer).items():
        yield from _activations_in_config(
            sublayer, key_path + (key, "config"), names + (sublayer.name,))


def with_values(config, entries):
    """A copy of a layer config with each `(key_path, value)` of `entries`
    at its key path (see `EditConfig`). `config` is not changed (a layer's
    `get_config()` may hand out a dict it holds): the dicts and lists on
    the way to a key are new, the rest is shared.

    Example:

    >>> config = {"layer": {"config": {"activation": "relu", "units": 2}}}
    >>> new = with_values(config, [(("layer", "config", "activation"),
    ...                             "gelu")])
    >>> new["layer"]["config"], config["layer"]["config"]["activation"]
    ({'activation': 'gelu', 'units': 2}, 'relu')
    """
    for key_path, value in entries:
        config = _with_value(config, key_path, value)
    return config


def _with_value(container, key_path, value):
    if not key_path:
        return value
    key, rest = key_path[0], key_path[1:]
    copy = dict(container) if isinstance(container, dict) else list(container)
    copy[key] = _with_value(container[key], rest, value)
    return tuple(copy) if isinstance(container, tuple) else copy


def _with_markers(config, key_paths):
    """A copy of a layer config with a `SiteMarker` at each key path."""
    return with_values(config, [
        (key_path, keras.saving.serialize_keras_object(
            SiteMarker("/".join(key_path)))) for key_path in key_paths])


class _Walk:
    """One walk of a model, collecting its sites in graph order."""

    def __init__(self):
        self.sites = []
        self.round_trip_failure = None
        self.seen = set()

    def add(self, path, form, activation, sugar, cap, replace, observe,
            patched_by=None):
        self.sites.append(Site(path, form, activation, sugar, cap, replace,
                               observe, patched_by))

    def graph(self, model, prefix, index, patches=()):
        """The sites of a graph model; `patches` are `(Patch, owner)` of
        the wrappers around it, each `node` relative to `model`'s graph."""
        wrapper = wrapper_of(model)
        if wrapper is not None:
            # The graph the wrapper runs, named as the model it wraps.
            at = [i for i, node in enumerate(model_graph.nodes(model))
                  if node is wrapper]
            patches = _relative(patches, at[0]) + _owned(wrapper)
            model, index = patching.graph_of(wrapper), index + (at[0],)
        for i, node in enumerate(model_graph.nodes(model)):
            if (isinstance(node, keras.layers.InputLayer)
                    or id(node) in self.seen):
                continue  # A shared layer keeps its first path.
            self.seen.add(id(node))
            self.node(node, model, model_graph.join(prefix, node.name),
                      index + (i,), _relative(patches, i))

    def node(self, node, graph, path, index, patches):
        replaced = [(p, owner) for p, owner in patches
                    if p.kind == "node" and not p.node]
        if replaced:
            self.patched_node(node, graph, path, index, *replaced[0])
        elif not isinstance(node, keras.layers.Layer):
            self.raw_op(node, graph, path, index)
        elif patching.graph_of(node) is not None:
            if isinstance(node, patching.SugarPatched):
                patches = list(patches) + _owned(node)
                node = patching.graph_of(node)
            self.graph(node, path, index, patches)
        else:
            own = _owned(node) if isinstance(
                node, patching.SugarPatched) else []
            self.layer(node, graph, path, index, {
                (p.kind, p.position, p.attribute): (p, owner)
                for p, owner in own + list(patches) if not p.node})

    def patched_node(self, node, graph, path, index, patch, owner):
        """A node a wrapper's patch replaced (by an `Activation` or a
        SugarReLU layer named as the node it replaced)."""
        activation = kinds.sugar_kind(patch.activation)
        form = ("ReLU layer" if isinstance(node, sugar_layers.SugarReLU)
                else "raw op")
        self.add(path, form, activation, patch.activation,
                 patch.activation.max_value, SwapNode(node, index),
                 NodeOutput(graph, node), patched_by=owner)

    def raw_op(self, op, graph, path, index):
        activation = kinds.raw_op_kind(op)
        if activation is None:
            return
        self.add(path, "raw op", activation, None, _cap(activation, op),
                 SwapNode(op, index), _observe_output(graph, op, activation))

    def layer(self, node, graph, path, index, patches):
        """A layer node; `patches` are the `SugarPatched` patches in it,
        `{(kind, position, attribute): (Patch, owner)}`."""
        base = patching.base_of(node)
        if isinstance(base, sugar_layers.SugarReLU):
            sugar = base.activation
            activation = kinds.sugar_kind(sugar)
            self.add(path, "SugarReLU layer", activation, sugar,
                     sugar.max_value, SwapNode(node, index),
                     NodeOutput(graph, node))
        elif isinstance(base, keras.layers.ReLU):
            activation = kinds.relu_layer_kind(base)
            self.add(path, "ReLU layer", activation, None,
                     _cap(activation, base), SwapNode(node, index),
                     _observe_output(graph, node, activation))
        elif isinstance(base, keras.layers.Lambda):
            self.lambda_layer(node, graph, path, index)
        else:
            arguments = self.config_sites(node, base, graph, path, index,
                                          patches)
            if not model_graph.is_core_keras(base):
                self.custom_layer(node, base, path, index, arguments,
                                  patches)

    def lambda_layer(self, node, graph, path, index):
        """`Lambda(keras.activations.relu)` (or `ops.relu`, any kind)
        without extra arguments is a site; a Lambda whose own code calls
        one is not reachable."""
        activation = (kinds.function_kind(node.function)
                      if not node.arguments else None)
        if activation is not None:
            sugar = kinds.as_sugar(node.function)
            self.add(path, "Lambda layer", activation, sugar,
                     _cap(activation, sugar), SwapNode(node, index),
                     _observe_output(graph, node, activation))
            return
        for activation in _kinds_called_in_source(node.function):
            reason = (f"its function calls {activation} in Python code; "
                      f"use Activation(keras_sugar.SugarReLU(...)) there")
            self.add(path, "Lambda layer", activation, None, None,
                     Unreachable(reason), Unobservable(reason))

    def config_sites(self, node, base, graph, path, index, patches):
        """The activations in `base`'s config (`node` is `base`, or a
        `SugarPatched` wrapping it); returns those of a custom layer's own
        arguments, `[(key_path, site fields)]`, whose holders and
        observation its sublayers decide (see `custom_layer`)."""
        arguments = []
        for key_path, names, owner, key, function in _activations_in_config(
                base):
            activation = kinds.function_kind(function)
            sugar = kinds.as_sugar(function)
            fields = dict(path=model_graph.join(path, "/".join(names)),
                          form=_form(owner, key), activation=activation,
                          sugar=sugar, cap=_cap(activation, sugar or function))
            if owner is base and not model_graph.is_core_keras(base):
                arguments.append((key_path, fields))
                continue
            # A recurrent layer's activations are its cell's, at run time.
            holder = (owner.cell if isinstance(owner, keras.layers.RNN)
                      else owner)
            holders = ((model_graph.position_of(base, holder), key),)
            owners = [patches[("activation",) + h][1] for h in holders
                      if ("activation",) + h in patches]
            self.add(replace=EditConfig(node, key_path, index, holders),
                     observe=_observe_config_site(graph, node, base, owner,
                                                  activation),
                     patched_by=owners[0] if owners else None, **fields)
        return arguments

    def custom_layer(self, node, base, path, index, arguments, patches):
        """The sites of a layer from outside Keras, which may build its
        sublayers itself: its own activation arguments (`arguments`, see
        `config_sites`), and its sublayers' activations and `ReLU`
        sublayers. They are read on a copy rebuilt from its config, the
        one way to know which sublayers it builds from which argument
        (each argument is a `SiteMarker` there) and whether its config
        round-trips; they are named after `base`'s own sublayers."""
        copy, marked = self.rebuilt(base, path, [key_path for key_path, _ in
                                                 arguments])
        reached = {}
        found_inner = False
        for position, sub in model_graph.positions(copy):
            live = _live_sublayer(base, copy, position)
            where = model_graph.join(path, model_graph.path_at(copy, position))
            function = (None if isinstance(sub, keras.layers.RNN)
                        else getattr(sub, "activation", None))
            if isinstance(function, SiteMarker):
                reached.setdefault(function.key, []).append(live)
                continue
            if isinstance(sub, keras.layers.ReLU):
                found_inner |= self.relu_sublayer(
                    node, base, copy, position, live, where, index,
                    patches.get(("relu_layer", position, "activation"),
                                (None, None)))
            elif callable(function) and kinds.function_kind(function):
                found_inner = True
                patch, owner = patches.get(
                    ("activation", position, "activation"), (None, None))
                sugar = (patch.activation if patch is not None
                         else kinds.as_sugar(function))
                activation = (kinds.sugar_kind(sugar) if sugar is not None
                              else kinds.function_kind(function))
                self.add(where, "inside custom layer", activation, sugar,
                         _cap(activation, sugar or function),
                         PatchSublayer(node, position, False, index),
                         _observe_calls([live], activation,
                                        type(base).__name__),
                         patched_by=owner)
        for key_path, fields in arguments if marked else ():
            layers = reached.get("/".join(key_path), [])
            holders = tuple(
                (model_graph.position_of(base, layer), "activation")
                for layer in layers) or (((), key_path[-1]),)
            self.add(replace=EditConfig(node, key_path, index, holders),
                     observe=_observe_calls(layers, fields["activation"],
                                            type(base).__name__),
                     **fields)
        if not found_inner and not (arguments and marked):
            for activation in _kinds_called_in_source(type(base).call):
                reason = (f"its call() uses {activation} directly; rewrite "
                          f"that code with keras_sugar.SugarReLU")
                self.add(path, type(base).__name__, activation, None, None,
                         Unreachable(reason), Unobservable(reason))

    def relu_sublayer(self, node, base, copy, position, live, where, index,
                      owned_patch):
        """A `ReLU` sublayer of a custom layer: replaceable when one
        attribute of its parent holds it; returns whether it was."""
        relu = model_graph.sublayer_at(copy, position)
        parent = model_graph.sublayer_at(copy, position[:-1])
        attribute = patching.holder_attribute(parent, relu)
        activation = kinds.relu_layer_kind(relu)
        if attribute is None:
            reason = (f"inside {type(base).__name__}, which builds its "
                      f"sublayers itself, as a node of its graph or in a "
                      f"list")
            self.add(where, "ReLU layer", activation, None,
                     _cap(activation, relu), Unreachable(reason),
                     _observe_calls([live], activation,
                                    type(base).__name__))
            return False
        sugar = None
        patch, owner = owned_patch
        if patch is not None:
            # The patch put a SugarReLU layer in the parent's attribute.
            sugar = patch.activation
            activation = kinds.sugar_kind(sugar)
            live = getattr(model_graph.sublayer_at(
                base, position[:-1]), attribute)
        self.add(where, "inside custom layer (ReLU layer)", activation,
                 sugar, _cap(activation, sugar or relu),
                 PatchSublayer(node, position, True, index),
                 _observe_calls([live], activation, type(base).__name__),
                 patched_by=owner)
        return True

    def rebuilt(self, layer, path, argument_key_paths):
        """`(copy, marked)`: `layer` rebuilt from its config, each
        activation argument at `argument_key_paths` a `SiteMarker`
        (`marked`); without markers when the layer refuses them (it takes
        named activations only); `layer` itself when its config does not
        round-trip (the first such layer is recorded)."""
        with warnings.catch_warnings():
            # Rebuilding warns about the user's own unbuilt layers; this
            # copy is the walk's, not theirs.
            warnings.simplefilter("ignore")
            if argument_key_paths:
                copy, _ = model_graph.rebuilt_from_config(
                    layer, lambda config: _with_markers(config,
                                                        argument_key_paths))
                if copy is not None:
                    return copy, True
            copy, reason = model_graph.rebuilt_from_config(layer)
        if copy is not None:
            return copy, False
        if self.round_trip_failure is None:
            self.round_trip_failure = (path, layer, reason)
        return layer, False


def _owned(patched):
    """`(Patch, owner)` for the patches of a `SugarPatched`."""
    return [(patch, patched) for patch in patched.patches]


def _relative(patches, i):
    """The `(Patch, owner)` inside the node at graph index `i`, each
    `node` made relative to it."""
    return [(dataclasses.replace(p, node=p.node[1:]), owner)
            for p, owner in patches if p.node[:1] == (i,)]


def _is_recurrent(layer):
    """A recurrent layer or cell (cells have a `state_size`)."""
    return isinstance(layer, keras.layers.RNN) or hasattr(layer,
                                                         "state_size")


def _observe_config_site(graph, node, base, owner, activation):
    """How the output of an activation in `base`'s config, held by
    `owner` (`base` or a sublayer it serializes), is observed."""
    if activation not in kinds.RECTIFIED:
        return Unobservable(f"{activation} is not rectified")
    if _is_recurrent(base) or _is_recurrent(owner):
        return Unobservable("applied inside a recurrent layer's loop")
    wrapped = (isinstance(base, keras.layers.TimeDistributed)
               and owner is base.layer)
    if (owner is base or wrapped) and _output_is_activation(base):
        return NodeOutput(graph, node)
    return Unobservable(f"applied inside {type(base).__name__}'s own call")


def _live_sublayer(base, copy, position):
    """The sublayer of `base` at `position` (the one that runs), or the
    copy's where `base` has none there."""
    try:
        return model_graph.sublayer_at(base, position)
    except ValueError:
        return model_graph.sublayer_at(copy, position)


def read(model):
    """The `SiteMap` of `model`, from one walk of it.

    Custom layers (classes from outside Keras) are rebuilt from their
    configs, unweighted, once each, to see which sublayers they build
    from which argument and whether their configs round-trip (see
    `_Walk.custom_layer`); nothing else is built.

    Args:
        model: A functional or `Sequential` model.

    Returns:
        A `SiteMap`.
    """
    walk = _Walk()
    wrapper = wrapper_of(model)
    if wrapper is None:
        walk.graph(model, "", ())
    else:
        # Indices count in the wrapped graph, as in the model the rebuild
        # route rebuilds from the wrapper's source.
        walk.graph(patching.graph_of(wrapper), "", (), _owned(wrapper))
    return SiteMap(model, tuple(walk.sites), walk.round_trip_failure,
                   wrapper)

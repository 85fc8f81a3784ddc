"""Walking Keras models: graph nodes, sublayers, paths, config round trips.

The one module that touches Keras internals (private attributes such as
`_flatten_layers` and `_inbound_nodes`, safe-mode scopes, the callback list
running a callback), so a Keras upgrade that moves them is fixed here
alone. Everything that walks a model asks this module.

Paths name a node by the layer names from the walked model down,
"/"-joined and without the walked model's own name: `conv2d_3` for a
top-level layer, `inner/dense` for a layer of a nested model `inner`. The
sugarify report and the dead-unit report use the same paths.
"""

import sys

import keras
from keras.src.ops.function import make_node_key
from keras.src.saving import serialization_lib

# Layers from other packages (keras_cv, keras_hub, user code) build their
# sublayers themselves; core Keras layers hold everything in their config.
_CORE_PACKAGE = "keras"


def is_graph_model(layer):
    """Whether `layer` is a model with a layer graph: functional (Backbone
    subclasses included) or `Sequential`. Subclassed models have none."""
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model)
        and hasattr(layer, "_run_through_graph"))


def check_graph_model(model, caller, advice):
    """Refuses what is not a functional or `Sequential` model (a
    subclassed model has no layer graph to walk), naming `caller` and
    what to do instead (`advice`)."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"{caller} takes a Keras model. Received: model={model!r} "
            f"(type {type(model).__name__})")
    if not is_graph_model(model):
        raise ValueError(
            f"{caller} rewrites functional and Sequential models, whose "
            f"layer graph it can clone. Received: {type(model).__name__} "
            f"(a subclassed model has no graph). {advice}")


def nodes(model):
    """The nodes of a graph model in order: layers and raw ops (such as the
    `Relu` an `ops.relu` call on a symbolic tensor adds). An unbuilt
    `Sequential` has none yet."""
    if isinstance(model, keras.Sequential):
        return list(model.layers) if model.built else []
    return list(model.operations)


def new_inputs(model):
    """New `keras.Input`s in the structure of `model.input`, each shaped,
    typed and named as the `InputLayer` it stands for. (`clone_model`
    names them after their tensors: `keras_tensor_3` for an input made
    without a name, whose layer is `input_layer`.)"""
    def like(tensor):
        layer = tensor._keras_history.operation
        return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype,
                           sparse=tensor.sparse, name=layer.name,
                           optional=getattr(layer, "optional", False))

    return keras.tree.map_structure(like, graph_inputs(model))


def children(layer):
    """Direct sublayers of `layer` (Keras tracks them as attributes)."""
    return layer._flatten_layers(include_self=False, recursive=False)


def sublayer_at(layer, index_path, need_activation=True):
    """The sublayer of `layer` at a tuple of child indices (see
    `children`), for sites stored by position."""
    root = layer
    for index in index_path:
        found = children(layer)
        if index >= len(found):
            raise ValueError(
                f"{type(root).__name__} '{root.name}' has no sublayer at "
                f"{list(index_path)}: it was rebuilt with a different "
                f"structure.")
        layer = found[index]
    if need_activation and not hasattr(layer, "activation"):
        raise ValueError(
            f"The sublayer at {list(index_path)} of {type(root).__name__} "
            f"'{root.name}' ({layer.name}) has no activation to set.")
    return layer


def descendants(layer):
    """Every sublayer of `layer`, at any depth, each once."""
    return layer._flatten_layers(include_self=False, recursive=True)


def attribute_names(layer):
    """Names of `layer`'s instance attributes, sublayers included (on
    PyTorch a Keras layer is a `torch.nn.Module`, which keeps its
    sublayers in `_modules` rather than in `__dict__`)."""
    return list(vars(layer)) + list(vars(layer).get("_modules", {}))


def replace_sublayer(parent, name, new):
    """Sets `parent.<name> = new` (a layer without weights) even when
    `parent` is built: Keras locks a built layer's state, so the lock is
    lifted for this one assignment and restored."""
    tracker = getattr(parent, "_tracker", None)
    locked = tracker is not None and tracker.locked
    if locked:
        tracker.unlock()
    try:
        # The old layer stays tracked (unused, no weights), so the
        # positions of the other sublayers do not move.
        setattr(parent, name, new)
    finally:
        if locked:
            tracker.lock()  # Keeps Keras' own message.


def graph_inputs(model):
    """A built graph model's own input tensors, in the structure it takes
    (`model.input` is, for a `Sequential` called in another model, the
    input of that call)."""
    graph = model._functional if isinstance(model, keras.Sequential) else (
        model)
    return graph._inputs_struct


def calls(model, layer):
    """The calls of `layer` in the graph of `model` (Keras' `Node`s, with
    `input_tensors` and `outputs`), in order: one for most layers, one per
    call for a shared layer; a call in another model's graph is not
    one of them."""
    graph = model._functional if isinstance(model, keras.Sequential) else (
        model)
    keys = getattr(graph, "_nodes", None)
    return [node for index, node in enumerate(layer._inbound_nodes)
            if keys is None or make_node_key(layer, index) in keys]


def is_core_keras(obj):
    """Whether `obj`'s class comes from Keras itself."""
    return type(obj).__module__.split(".")[0] == _CORE_PACKAGE


def join(prefix, name):
    """`prefix/name`, or `name` at the top level."""
    return f"{prefix}/{name}" if prefix else name


def node_paths(model, prefix=""):
    """Returns `{id(node): path}` for every node of `model` and of the graph
    models nested in it (see the module docstring for the format); a node
    reached twice (a shared layer) keeps its first path."""
    paths = {}
    for node in nodes(model):
        if id(node) in paths:
            continue
        path = join(prefix, node.name)
        paths[id(node)] = path
        if is_graph_model(node):
            for key, value in node_paths(node, path).items():
                paths.setdefault(key, value)
    return paths


def rebuilding_own_objects():
    """A scope for rebuilding layers of this process from their configs.

    The configs come from objects the user already holds, not from a file,
    so a `Lambda` with the user's own Python function is as safe to
    rebuild as the model that holds it: Keras' safe mode, which refuses
    such functions when loading files, is off inside the scope.
    """
    return serialization_lib.SafeModeScope(False)


def round_trip(layer, edit_config=None):
    """Serializes `layer` and deserializes it again, as saving and loading
    would: returns the new layer (built as the original, from its build
    config, when it has one). `edit_config`, if given, returns the config
    to deserialize instead."""
    serialized = keras.saving.serialize_keras_object(layer)
    if edit_config is not None:
        serialized = {**serialized,
                      "config": edit_config(serialized["config"])}
    with rebuilding_own_objects():
        return keras.saving.deserialize_keras_object(serialized)


def rebuilt_from_config(layer, edit_config=None):
    """`(copy, None)` with `layer` rebuilt from its config (see
    `round_trip`), or `(None, reason)` when its config does not round-trip.

    Some third-party layers return sublayers or other objects from
    `get_config()` that their `from_config()` cannot take back (keras_cv's
    `SqueezeAndExcite2D`, keras_hub's `ViTPatchingAndEmbedding`); Keras
    raises `TypeError` or `ValueError` for those, and nothing else is
    caught here.
    """
    try:
        return round_trip(layer, edit_config), None
    except (TypeError, ValueError) as error:
        return None, f"{type(error).__name__}: {str(error).splitlines()[0]}"


def mark_built(layer):
    """Marks a layer without weights as built, as Keras' own activation
    layers do, so a model holding it can save before its first call."""
    layer._build_at_init()


def mark_called(model):
    """Marks a graph model as called, as its first call would: Keras'
    `model.export` refuses a model it has not seen called ("never
    called"), though a graph model's inputs give its signature."""
    model._called = True


def move_to_front_of_calling_list(callback):
    """Moves `callback` to the front of the `keras.callbacks.CallbackList`
    that is calling it now, if any, so that the logs it writes at each
    epoch's end reach every other callback (`CSVLogger`, `EarlyStopping`)
    whatever their order in `fit(callbacks=...)`.

    Call it from one of the callback's hooks. Moving the current element
    to the front while the list iterates is safe: the elements after it
    keep their places, those before it were already called.

    Returns:
        Whether a calling `CallbackList` was found.
    """
    caller = sys._getframe(2).f_locals.get("self")
    if not isinstance(caller, keras.callbacks.CallbackList):
        return False
    if caller.callbacks and caller.callbacks[0] is not callback:
        caller.callbacks.remove(callback)
        caller.callbacks.insert(0, callback)
    return True

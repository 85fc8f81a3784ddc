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

import contextlib
import inspect

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
    `Relu` an `ops.relu` call on a symbolic tensor adds). A `Sequential`
    not built yet (made without `keras.Input`, never called) has its
    layers, in order."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    return list(model.operations)


def is_built_graph(model):
    """Whether a graph model has a graph of tensors yet (a `Sequential`
    made without `keras.Input` gets one when first built or called)."""
    return not isinstance(model, keras.Sequential) or (
        getattr(model, "_functional", None) is not None)


def _placeholder(tensor):
    return keras.KerasTensor(
        tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse,
        ragged=getattr(tensor, "ragged", False), name=tensor.name)


def new_inputs(model):
    """New inputs in the structure of the graph model's own inputs, each
    shaped and typed as the original, its `InputLayer` and its tensor
    named as the user's were (`keras.Input()` without a name makes an
    `input_layer_N` holding a `keras_tensor_M`; `clone_model` would name
    both after the tensor)."""
    def like(tensor):
        layer = tensor._keras_history.operation
        return keras.Input(tensor=_placeholder(tensor), name=layer.name,
                           optional=getattr(layer, "optional", False))

    return keras.tree.map_structure(like, graph_inputs(model))


def clone_inputs(model):
    """What `keras.models.clone_model(model, input_tensors=...)` takes to
    keep the inputs as they are named (see `new_inputs`): for a
    `Sequential`, which makes its `InputLayer` itself (named as the
    original's), a tensor named as the original's; None when it has no
    inputs yet."""
    if not is_built_graph(model):
        return None
    if isinstance(model, keras.Sequential):
        return _placeholder(graph_inputs(model))
    return new_inputs(model)


def keep_input_names(original, clone):
    """Names the inputs of the graph models nested in `clone`, a
    `clone_model` copy of `original`, as `original`'s nested models name
    theirs (`InputLayer` and tensor: `clone_model` names both after the
    tensor, see `new_inputs`)."""
    for old, new in zip(nodes(original), nodes(clone)):
        if not (is_graph_model(old) and is_graph_model(new)
                and is_built_graph(old) and is_built_graph(new)):
            continue
        for tensor, copy in zip(keras.tree.flatten(graph_inputs(old)),
                                keras.tree.flatten(graph_inputs(new))):
            copy.name = tensor.name
            copy._keras_history.operation.name = (
                tensor._keras_history.operation.name)
        keep_input_names(old, new)


def children(layer):
    """Direct sublayers of `layer` (Keras tracks them as attributes)."""
    # Keras has no public list of a layer's sublayers (`Model.layers` is
    # this same call, for models only). `_flatten_layers` has kept its
    # signature and its order (tracking order) from Keras 3.0 to 3.15
    # (checked on 3.9.0 and 3.15.1 by tests/test_model_graph.py).
    return layer._flatten_layers(include_self=False, recursive=False)


# Containers the frameworks keep sublayers in, not names of them: Keras'
# list of tracked layers and its tracker (the same names in Keras 3.0 to
# 3.15), PyTorch's modules, TensorFlow's trackable dependencies.
_FRAMEWORK_CONTAINERS = ("_layers", "_tracker", "_modules", "_self_")


def child_names(layer):
    """A name for each of `layer`'s `children`, the same for every copy of
    it: in a graph model, each layer's own name (kept in the model's
    config); in any other layer, the attribute that holds it
    (`"inner"`, `"blocks/2"` for an item of a list), since the sublayers a
    layer builds in `__init__` get new automatic names (`dense_17`) in
    every copy. A sublayer no attribute holds keeps its own name."""
    found = children(layer)
    if is_graph_model(layer):
        return [child.name for child in found]
    named, in_containers = {}, []
    for attribute in attribute_names(layer):
        if attribute.startswith(_FRAMEWORK_CONTAINERS):
            continue
        value = getattr(layer, attribute, None)
        if isinstance(value, keras.layers.Layer):
            named.setdefault(id(value), attribute)
        elif isinstance(value, (list, tuple)):
            in_containers += [(f"{attribute}/{i}", item)
                              for i, item in enumerate(value)]
        elif isinstance(value, dict):
            in_containers += [(f"{attribute}/{key}", item)
                              for key, item in value.items()]
    for name, item in in_containers:  # An attribute of its own first.
        named.setdefault(id(item), name)
    return [named.get(id(child), child.name) for child in found]


def path_at(layer, index_path):
    """The "/"-joined `child_names` down to the sublayer of `layer` at
    `index_path` (see `sublayer_at`)."""
    names = []
    for index in index_path:
        names.append(child_names(layer)[index])
        layer = children(layer)[index]
    return "/".join(names)


def sublayer_at(layer, index_path):
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
    return layer


def descendants(layer):
    """Every sublayer of `layer`, at any depth, each once."""
    # Private, as in `children` (checked on the same versions).
    return layer._flatten_layers(include_self=False, recursive=True)


def positions(layer, prefix=()):
    """Yields `(position, sublayer)` for every sublayer of `layer`, depth
    first, each once, where `position` is its tuple of child indices (see
    `sublayer_at`)."""
    seen = set()

    def walk(parent, at):
        for index, child in enumerate(children(parent)):
            if id(child) in seen:
                continue
            seen.add(id(child))
            yield at + (index,), child
            yield from walk(child, at + (index,))

    yield from walk(layer, prefix)


def position_of(layer, sublayer):
    """The child indices of `sublayer` in `layer` (`()` for `layer`
    itself), or None."""
    if sublayer is layer:
        return ()
    for position, found in positions(layer):
        if found is sublayer:
            return position
    return None


def attribute_names(layer):
    """Names of `layer`'s instance attributes, sublayers included (on
    PyTorch a Keras layer is a `torch.nn.Module`, which keeps its
    sublayers in `_modules` rather than in `__dict__`)."""
    return list(vars(layer)) + list(vars(layer).get("_modules", {}))


def replace_sublayer(parent, name, new):
    """Sets `parent.<name> = new` (a layer without weights) even when
    `parent` is built: Keras locks a built layer's state, so the lock is
    lifted for this one assignment and restored."""
    # No public API unlocks a built layer: Keras itself lifts the lock
    # this way (its `quantize` wrapper). `_tracker` with `locked`,
    # `unlock()` and `lock()` is unchanged from Keras 3.0 to 3.15
    # (checked on 3.9.0 and 3.15.1 by tests/test_model_graph.py).
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
    """`prefix/name`; `name` at the top level, `prefix` for no name."""
    return f"{prefix}/{name}" if prefix and name else prefix or name


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


def call_as_node(layer, *args, **kwargs):
    """Calls `layer` with a graph node's arguments, leaving out the keyword
    arguments its `call` does not take (a `Lambda` node passes `mask`,
    which the `Activation` that replaces it has no use for). For
    `clone_model(..., call_function=call_as_node)`."""
    parameters = inspect.signature(layer.call).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        names = {p.name for p in parameters}
        kwargs = {k: v for k, v in kwargs.items() if k in names}
    return layer(*args, **kwargs)


@contextlib.contextmanager
def recording_calls(layers):
    """Within the scope, every call of one of `layers` appends its output,
    as numpy, to `recorded[i]` (the list yielded, one entry per layer).

    Keras has no forward hooks: the layers' `call` is shadowed by an
    instance attribute for the scope (Keras looks `self.call` up on each
    call) and restored after it, also when the scope fails. Use it for
    eager calls only: a compiled function would record symbolic values.
    """
    recorded = [[] for _ in layers]

    def recorder(layer, outputs):
        call = layer.call

        def recording_call(*args, **kwargs):
            output = call(*args, **kwargs)
            outputs.append(keras.ops.convert_to_numpy(output))
            return output

        return recording_call

    shadowed = []
    try:
        for layer, outputs in zip(layers, recorded):
            if "call" not in vars(layer):  # A layer listed twice.
                object.__setattr__(layer, "call", recorder(layer, outputs))
                shadowed.append(layer)
        yield recorded
    finally:
        for layer in shadowed:
            object.__delattr__(layer, "call")


def mark_built(layer):
    """Marks a layer without weights as built, as Keras' own activation
    layers do, so a model holding it can save before its first call.

    `built` is the public attribute a layer without weights sets in its
    `__init__` (Keras' activation layers did so up to 3.9; from 3.10 they
    call the private `_build_at_init`, which also locks the layer's state,
    and nothing in a layer without weights depends on that lock).
    """
    layer.built = True


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
    # No public API lets a callback see the list it is in (`fit` makes
    # the `CallbackList` itself): the calling one is found on the stack,
    # as the nearest caller whose `self` is a `CallbackList` holding
    # `callback` (its public `callbacks` list). The hooks call each
    # callback from a loop over that list in Keras 3.0 to 3.15 (checked
    # on 3.9.0 and 3.15.1 by tests/test_model_graph.py).
    frame = inspect.currentframe()
    try:
        while frame is not None:
            caller = frame.f_locals.get("self")
            if isinstance(caller, keras.callbacks.CallbackList) and any(
                    c is callback for c in caller.callbacks):
                if caller.callbacks[0] is not callback:
                    caller.callbacks.remove(callback)
                    caller.callbacks.insert(0, callback)
                return True
            frame = frame.f_back
        return False
    finally:
        del frame  # A frame held in a local would keep the stack alive.

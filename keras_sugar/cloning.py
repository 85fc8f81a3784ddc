"""One clone of a model, for `sugarify` and `strip_sugar`.

Keras' `clone_model(..., recursive=True)` (nested models cloned, shared
layers kept shared), with the inputs named as the user named them, the
keyword arguments of each graph node passed only where the new layer
takes them, and the weights copied from each layer to the one that
replaces it, their shapes checked.
"""

import keras

from keras_sugar import model_graph


def _describe(layer):
    return f"layer '{layer.name}' ({type(layer).__name__})"


def copy_weights(source, target, caller):
    """Copies the weights of `source` to `target`, two builds of the same
    layer, refusing a structure that differs instead of misplacing them
    (`caller` names the function, for the message)."""
    source_weights, target_weights = source.weights, target.weights
    shapes = [tuple(w.shape) for w in source_weights]
    if shapes != [tuple(w.shape) for w in target_weights]:
        raise ValueError(
            f"{caller} rebuilt {_describe(source)} from its config with "
            f"other weights ({len(target_weights)} instead of "
            f"{len(source_weights)}, or other shapes), so its trained "
            f"weights cannot be carried over; nothing was returned.")
    target.set_weights(source.get_weights())


def clone(model, clone_function, caller):
    """A copy of `model` in which each layer (and raw op) is
    `clone_function(layer)`: a new layer, or the raw op itself.

    The weights of each layer are copied to the new one once the copy is
    built (`copy_weights`). The original is not changed.

    Args:
        model: A functional or `Sequential` model.
        clone_function: Called once per layer or raw op of `model` and of
            the models nested in it (not on the nested models themselves,
            which are cloned the same way).
        caller: The public function cloning, for messages.

    Returns:
        The new model.
    """
    pairs = []

    def function(layer):
        new = clone_function(layer)
        if new is not layer and isinstance(layer, keras.layers.Layer):
            pairs.append((layer, new))
        return new

    # `call_function` is for functional models only (a Sequential passes
    # no keyword arguments to its layers).
    call = ({} if isinstance(model, keras.Sequential)
            else {"call_function": model_graph.call_as_node})
    with model_graph.rebuilding_own_objects():
        new_model = keras.models.clone_model(
            model, input_tensors=model_graph.clone_inputs(model),
            clone_function=function, recursive=True, **call)
    model_graph.keep_input_names(model, new_model)
    for old, new in pairs:
        if old.weights:
            copy_weights(old, new, caller)
    return new_model

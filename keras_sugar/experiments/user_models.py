"""The models a comparison trains: the package's own (`architectures`) or
the user's.

`--model` (and `model=` from Python) takes, besides a name of
`architectures.BUILDERS`:

- `FILE.py:FUNCTION` or `package.module:FUNCTION`: a function with the
  builders' contract, `FUNCTION(input_shape, num_classes, activation,
  **model_kwargs)`, returning an uncompiled Keras model whose output is one
  logit per class, with `activation` wherever a ReLU would be. Each run
  builds it afresh with the run's seed set, as for the builders; worker
  processes (`--jobs`) import it by its path (a module: from the current
  folder, as `python -m` does, or wherever it is installed).
- `FILE.keras`: a saved ReLU model (a `keras.applications`, keras_cv or
  keras_hub backbone with a head, say), fine-tuned from its saved weights:
  `relu` is the model as saved, each `sugar:<surrogate>` the same model
  rewritten by `sugarify` (weights kept). Every run starts from the saved
  weights, so a seed changes only the order of the batches (and dropout).
- From Python, also the function itself, or a Keras model object (used as
  a saved model is; the object itself is never trained).

Everything that can be checked is checked before anything trains (a
missing file or function, a function without the contract, an output that
does not match the classes, an input that does not match the data, a saved
model without ReLUs or an activation `sugarify` cannot make), each error
naming the value, the file and what is expected. The results folder records
where the model came from and a hash of its contents (`record`), so that
`--resume` refuses a model that changed.

This module imports Keras only where a model is loaded or built: the
command checks what it can (`check`) before Keras starts.
"""

import hashlib
import importlib
import importlib.util
import inspect
import keyword
import os
import sys

from keras_sugar.experiments import architectures

CONTRACT = "(input_shape, num_classes, activation, **model_kwargs)"
# A saved model's activations: the model as saved, or rewritten by sugarify.
SAVED_MODEL_ACTIVATIONS = "relu (the model as saved) or sugar:<surrogate>"
FORMS = ("a name of " + str(sorted(architectures.BUILDERS)) +
         ", FILE.py:FUNCTION, package.module:FUNCTION or FILE.keras")


def kind(model):
    """What `model` is: `"builtin"`, `"file"` (`FILE.py:FUNCTION`),
    `"module"` (`package.module:FUNCTION`), `"saved"` (`FILE.keras`),
    `"function"` or `"object"` (from Python).

    Example:

    >>> kind("vgg"), kind("nets/mine.py:build"), kind("nets.mine:build")
    ('builtin', 'file', 'module')
    >>> kind("resnet50.keras")
    'saved'

    Raises:
        ValueError: for text of none of these forms, naming the forms.
    """
    if not isinstance(model, (str, os.PathLike)):
        if _is_keras_model(model):
            return "object"
        if callable(model):
            return "function"
        raise ValueError(f"model must be {FORMS}, a function or a Keras "
                         f"model. Received: model={model!r}")
    model = os.fspath(model)
    if model in architectures.BUILDERS:
        return "builtin"
    if model.endswith(".keras"):
        return "saved"
    where, colon, name = model.rpartition(":")
    if colon and name.isidentifier() and not keyword.iskeyword(name):
        if where.endswith(".py"):
            return "file"
        if all(part.isidentifier() for part in where.split(".")):
            return "module"
    if model.endswith(".py"):
        raise ValueError(f"--model {model} names a file but not its "
                         f"function: use {model}:FUNCTION.")
    raise ValueError(f"Unknown model '{model}'. Valid choices: {FORMS}.")


def _is_keras_model(model):
    keras = sys.modules.get("keras")  # Not imported: not a Keras model.
    return keras is not None and isinstance(model, keras.Model)


def check(model, model_kwargs, specs=()):
    """Checks what can be checked before Keras starts: the form, that a
    file exists, a builder's keywords, and that a saved model is asked only
    for activations `sugarify` can make (`specs`, parsed activation specs).

    Raises:
        ValueError, FileNotFoundError: naming the bad value.
    """
    form = kind(model)
    if form == "builtin":
        architectures.check(model, model_kwargs)
        return
    if form in ("file", "saved"):
        path = _path(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such model file: {path} (from "
                                    f"--model {model}).")
    if form in ("saved", "object"):
        if model_kwargs:
            raise ValueError(
                f"A saved model takes no keyword arguments: it is built "
                f"already. Received: model_kwargs={model_kwargs!r} for "
                f"{describe(model)}.")
        unusable = [spec.text for spec in specs
                    if spec.surrogate is None and spec.text != "relu"]
        if unusable:
            raise ValueError(
                f"{describe(model)} is fine-tuned as it was saved: its "
                f"activations can be {SAVED_MODEL_ACTIVATIONS}, made by "
                f"sugarify, which keeps the ReLU forward pass; "
                f"{unusable} would change it. Received: "
                f"activations={[spec.text for spec in specs]}.")


def _path(model):
    model = os.fspath(model)
    return model if model.endswith(".keras") else model.rpartition(":")[0]


def describe(model):
    """The model as tables, titles and `config.json` name it.

    Example:

    >>> describe("mine.py:build")
    'mine.py:build'
    """
    form = kind(model)
    if form == "function":
        return f"{model.__module__}.{model.__qualname__}"
    if form == "object":
        return f"Keras model '{model.name}'"
    return os.fspath(model)


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def record(model):
    """Where `model` came from and a hash of its contents, for the results
    folder (`None` for the package's own builders): what `--resume`
    compares, so that a changed file is not mixed with the runs it made.

    Example:

    >>> record("vgg") is None
    True
    """
    form = kind(model)
    if form == "builtin":
        return None
    if form in ("file", "saved"):
        path = os.path.abspath(_path(model))
        with open(path, "rb") as f:
            return {"file": path, "sha256": _sha256(f.read())}
    if form == "module":
        module_name = os.fspath(model).rpartition(":")[0]
        spec = _find_module(module_name, model)
        with open(spec.origin, "rb") as f:
            return {"file": spec.origin, "sha256": _sha256(f.read())}
    if form == "function":
        try:
            source = inspect.getsource(model)
        except (OSError, TypeError):  # Defined where no source is kept.
            source = None
        return {"function": describe(model),
                "sha256": source and _sha256(source.encode())}
    weights = hashlib.sha256()
    for array in model.get_weights():
        weights.update(array.tobytes())
    return {"model": model.name, "sha256": weights.hexdigest()}


def _find_module(module_name, model):
    # As `python -m` does: a module in the current folder is found first.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError as error:  # A parent package is missing.
        spec, missing = None, error.name
    else:
        missing = module_name
    if spec is None or spec.origin is None:
        raise ImportError(
            f"Cannot import module '{module_name}' (from --model {model}): "
            f"no module named '{missing}' in the current folder or the "
            f"installed packages.")
    return spec


def _function(model):
    """The user's function behind `model` (a `"file"`, `"module"` or
    `"function"`), imported once per process."""
    form = kind(model)
    if form == "function":
        return model
    where, _, name = os.fspath(model).rpartition(":")
    if form == "file":
        path = os.path.abspath(where)
        # Imported once per process, under a name of its own (pickling and
        # dataclasses look modules up by name).
        module_name = "keras_sugar_user_model_" + _sha256(
            path.encode())[:16]
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    else:
        _find_module(where, model)
        module = importlib.import_module(where)
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(key for key, value in vars(module).items()
                       if inspect.isfunction(value) and not key.startswith("_")
                       and value.__module__ == module.__name__)
        raise ValueError(
            f"{where} has no function '{name}' (from --model {model}). Its "
            f"functions: {found}.")
    return function


def _saved_model(model):
    """A fresh copy of the saved model (a file, or a model object)."""
    import keras

    if kind(model) == "object":
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return copy
    return keras.saving.load_model(_path(model))


def starts_from_saved_weights(model):
    """Whether every run starts from the model's own weights (a saved
    model) rather than from weights its seed draws.

    Example:

    >>> starts_from_saved_weights("vgg")
    False
    """
    return kind(model) in ("saved", "object")


def build(model, input_shape, num_classes, activation, **model_kwargs):
    """A new model for one run: a builder's or the user's function's, or
    the saved model as it is (`activation` is ReLU) or rewritten by
    `sugarify` (`activation` a `SugarReLU`).

    Raises:
        ValueError, ImportError: naming what is wrong (see `check_built`).
    """
    form = kind(model)
    if form == "builtin":
        architectures.check(model, model_kwargs)
        return architectures.BUILDERS[model](input_shape, num_classes,
                                             activation, **model_kwargs)
    if form in ("saved", "object"):
        return _sugarified(model, _saved_model(model), activation)
    function = _function(model)
    try:
        inspect.signature(function).bind(input_shape, num_classes,
                                         activation, **model_kwargs)
    except TypeError as error:
        raise ValueError(
            f"{describe(model)} must take the builders' arguments "
            f"{CONTRACT}; its signature is "
            f"{_signature(function)} ({error}).") from None
    return function(input_shape, num_classes, activation, **model_kwargs)


def _signature(function):
    try:
        return f"{function.__name__}{inspect.signature(function)}"
    except (TypeError, ValueError):  # Builtins may have none.
        return repr(function)


def _sugarified(model, base, activation):
    from keras_sugar import SugarReLU
    from keras_sugar import sugarify

    if not isinstance(activation, SugarReLU):
        return base  # ReLU: the model as saved.
    config = activation.get_config()
    _check_has_relus(model, base)
    return sugarify(base, **config)


def _check_has_relus(model, base):
    from keras_sugar import sugarify

    if not sugarify(base, dry_run=True).replaced:
        raise ValueError(
            f"{describe(model)} has no ReLU that sugarify can reach, so "
            f"SUGAR would change nothing: a saved ReLU model is expected.")


def check_builds(model, input_shape, num_classes, activations,
                 model_kwargs):
    """Builds the model with the first activation (and, for the user's
    models, the first SUGAR one too) and checks each (see `check_built`):
    everything a run would fail on fails here, before anything trains.

    Args:
        model: What `--model` takes (see `kind`).
        input_shape, num_classes: The data's.
        activations: Keras activations, one per requested activation.
        model_kwargs: Keyword arguments of a builder or function.
    """
    from keras_sugar import SugarReLU

    sugar = next((a for a in activations if isinstance(a, SugarReLU)), None)
    todo = [activations[0]]
    if kind(model) != "builtin" and sugar is not None and (
            sugar is not activations[0]):
        todo.append(sugar)
    for activation in todo:
        built = build(model, input_shape, num_classes, activation,
                      **model_kwargs)
        check_built(model, built, input_shape, num_classes, activation)
    if starts_from_saved_weights(model) and sugar is None:
        _check_has_relus(model, built)


def check_built(model, built, input_shape, num_classes, activation):
    """Fails, naming the model and what is expected, on a model that does
    not fit the comparison: not a Keras model, several inputs or outputs,
    an input shape that is not the data's, an output that is not one logit
    per class (or ends in a softmax), or a function that ignores a SUGAR
    activation.

    Example:

    >>> import keras
    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> check_built("mine.py:build", net, (4,), 2, "relu")
    Traceback (most recent call last):
    ...
    ValueError: mine.py:build gives outputs of shape (None, 3), but the data has 2 classes: the comparison needs one logit per class, (None, 2).
    """
    import keras

    from keras_sugar import SugarReLU
    from keras_sugar.site_map import count_sugar_sites

    name = describe(model)
    if not isinstance(built, keras.Model):
        raise ValueError(f"{name} returned {type(built).__name__} "
                         f"{built!r:.60}, not a Keras model.")
    if len(built.inputs) != 1 or len(built.outputs) != 1:
        raise ValueError(
            f"{name} has {len(built.inputs)} input(s) and "
            f"{len(built.outputs)} output(s); the comparison feeds one "
            f"input and trains one output of logits.")
    expected = tuple(input_shape)
    takes = tuple(built.inputs[0].shape[1:])
    if len(takes) != len(expected) or any(
            t is not None and t != e for t, e in zip(takes, expected)):
        raise ValueError(
            f"{name} takes inputs of shape {takes}, but the data's examples "
            f"have shape {expected}.")
    gives = tuple(built.outputs[0].shape)
    if gives[1:] != (num_classes,):
        raise ValueError(
            f"{name} gives outputs of shape {gives}, but the data has "
            f"{num_classes} classes: the comparison needs one logit per "
            f"class, (None, {num_classes}).")
    if _ends_in_softmax(built):
        raise ValueError(
            f"{name} ends in a softmax; the comparison trains on logits "
            f"(from_logits=True): end it with Dense({num_classes}) and no "
            f"activation (keras.applications: classifier_activation=None).")
    if (kind(model) in ("file", "module", "function")
            and isinstance(activation, SugarReLU)
            and not count_sugar_sites(built)):
        raise ValueError(
            f"{name} ignores its activation argument: asked for "
            f"{activation!r}, it built a model without it. Pass "
            f"`activation` to the layers that would use ReLU, e.g. "
            f"Dense(64, activation=activation).")


def _ends_in_softmax(model):
    import keras

    last = model.layers[-1] if model.layers else None
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", None) == "softmax"

"""`sugarify`: rewrite an existing model's ReLU (or GELU, SiLU) units to SUGAR.

The rewrite is a `keras.models.clone_model` pass: every layer is rebuilt
from its config (target activations swapped for `SugarReLU`), raw `relu`
op nodes become `Activation(SugarReLU)` layers, nested models are cloned
recursively (shared layers stay shared), and the weights are copied. The
original model is never touched.
"""

import inspect
import warnings

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import patching
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU

# Layers from other packages (keras_cv, keras_hub, user code) are walked for
# sublayer activations; core Keras layers hold theirs in their config.
_CORE_PACKAGE = "keras"


class Site:
    """One place in a model where an activation lives."""

    def __init__(self, path, form, activation, note=""):
        self.path = path
        self.form = form
        self.activation = activation
        self.note = note

    def __repr__(self):
        return f"Site({self.path!r}, {self.form}, {self.activation})"


class SugarifyReport:
    """What `sugarify` replaced, left alone, and could not reach.

    Attributes:
        replaced: `Site`s rewritten to SUGAR.
        skipped: `Site`s seen but deliberately left unchanged (e.g.
            `ReLU(max_value=6)`), with the reason.
        unreachable: `Site`s that may hold a target activation the rewrite
            cannot reach (e.g. `ops.relu` inside a custom layer's `call`).
        changes_forward: True when a non-ReLU target (GELU, SiLU) was
            replaced, so predictions change by the user's choice.
    """

    def __init__(self, activation, targets):
        self.activation = activation
        self.targets = targets
        self.replaced = []
        self.skipped = []
        self.unreachable = []

    @property
    def changes_forward(self):
        return any(site.activation != "relu" for site in self.replaced)

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        lines = [f"sugarify: {len(self.replaced)} site(s) -> {self.activation}"
                 f" (targets: {', '.join(self.targets)})"]
        sections = [("replaced", self.replaced), ("left unchanged",
                                                  self.skipped),
                    ("NOT reachable", self.unreachable)]
        for title, sites in sections:
            if not sites:
                continue
            lines.append(f"  {title}: {len(sites)}")
            for site in sites:
                note = f"  ({site.note})" if site.note else ""
                lines.append(f"    {site.path:<48} {site.form:<18} "
                             f"{site.activation}{note}")
        if self.changes_forward:
            lines.append("  note: non-ReLU targets were replaced, so the "
                         "forward pass (predictions) changes.")
        if not self.replaced:
            lines.append("  nothing to replace: the model has no "
                         f"{'/'.join(self.targets)} activation sites.")
        return "\n".join(lines)

    __repr__ = __str__


def _is_core_keras(obj):
    return type(obj).__module__.split(".")[0] == _CORE_PACKAGE


def _calls_target_in_source(layer, targets):
    try:
        source = inspect.getsource(type(layer).call)
    except (OSError, TypeError):
        return None
    for target in targets:
        if f"{target}(" in source or f'"{target}"' in source:
            return target
    return None


class _Rewriter:
    """One `sugarify` pass: the clone function, the report, the pairs."""

    def __init__(self, model, activation, targets):
        self.activation = activation
        self.targets = targets
        self.report = SugarifyReport(repr(activation), targets)
        self.paths = {}
        self._index_paths(model, model.name)
        self.pairs = []

    def _index_paths(self, layer, path):
        self.paths.setdefault(id(layer), path)
        children = []
        if hasattr(layer, "operations"):
            children = layer.operations
        elif isinstance(layer, keras.layers.Layer):
            children = patching.children(layer)
        for child in children:
            if child is not layer and id(child) not in self.paths:
                self._index_paths(child, f"{path}/{child.name}")

    def path(self, layer):
        return self.paths.get(id(layer), layer.name)

    def _serialized_activation(self):
        return keras.saving.serialize_keras_object(self.activation)

    def clone(self, layer):
        if not isinstance(layer, keras.layers.Layer):
            return self._clone_op(layer)
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        new = self._rebuild(layer)
        self.pairs.append((layer, new))
        if not _is_core_keras(layer):
            return self._patch_custom_layer(layer, new)
        return new

    def _clone_op(self, op):
        target = relu_sites.raw_op_target(op, self.targets)
        if target == "capped":
            self.report.skipped.append(Site(
                self.path(op), "raw op", "relu",
                f"{type(op).__name__} with a cap, slope or threshold: not a "
                f"plain ReLU, kept exactly"))
        elif target:
            self.report.replaced.append(Site(self.path(op), "raw op", target))
            return keras.layers.Activation(self.activation,
                                           name=f"sugar_{op.name}")
        return op

    def _rebuild(self, layer):
        config = layer.get_config()
        path = self.path(layer)
        if isinstance(layer, keras.layers.ReLU):
            if "relu" not in self.targets:
                return layer.__class__.from_config(config)
            if not relu_sites.is_plain_relu(layer):
                self.report.skipped.append(Site(
                    path, "ReLU layer", "relu",
                    f"max_value={layer.max_value}, negative_slope="
                    f"{layer.negative_slope}, threshold={layer.threshold}: "
                    f"not a plain ReLU, kept exactly"))
                return layer.__class__.from_config(config)
            self.report.replaced.append(Site(path, "ReLU layer", "relu"))
            return sugar_layers.SugarReLU(
                self.activation.surrogate,
                negative_only=self.activation.negative_only,
                implementation=self.activation.implementation,
                name=layer.name, dtype=layer.dtype_policy,
                **self.activation.params)
        activation = getattr(layer, "activation", None)
        target = (relu_sites.target_of_function(activation, self.targets)
                  if callable(activation) else None)
        if target and "activation" in config:
            form = ("Activation layer"
                    if isinstance(layer, keras.layers.Activation)
                    else f"inline ({type(layer).__name__})")
            self.report.replaced.append(Site(path, form, target))
            config["activation"] = self._serialized_activation()
        return layer.__class__.from_config(config)

    def matches(self, function):
        return relu_sites.target_of_function(function, self.targets) is not None

    def _patch_custom_layer(self, original, new):
        """Swaps activations inside a custom layer; wraps it to persist."""
        path = self.path(original)
        sites = self.swap_inside(new, path, "inside custom layer")
        target = _calls_target_in_source(original, self.targets)
        if target and not sites:
            self.report.unreachable.append(Site(
                path, type(original).__name__, target,
                f"its call() uses {target} directly; rewrite that code "
                f"with keras_sugar.SugarReLU"))
        if not sites:
            return new
        return patching.SugarPatched(new, sites, self.activation,
                                     name=original.name)

    def swap_inside(self, layer, path, form):
        """Returns the sublayer sites of `layer` to swap (and reports them),
        and reports the ReLU layers inside, which a swap cannot reach."""
        sites = []
        for site, names, sublayer in patching.activation_sites(
                layer, self.matches):
            sites.append(site)
            self.report.replaced.append(Site(
                f"{path}/{names}", form,
                relu_sites.target_of_function(sublayer.activation,
                                              self.targets)))
        if "relu" in self.targets:
            for sublayer in layer._flatten_layers(include_self=False):
                if (isinstance(sublayer, keras.layers.ReLU)
                        and relu_sites.is_plain_relu(sublayer)):
                    self.report.unreachable.append(Site(
                        f"{path}/.../{sublayer.name}", "ReLU layer", "relu",
                        f"inside {type(layer).__name__}, which builds its "
                        f"sublayers itself"))
        return sites


def _clone_graph(model, rewriter):
    new_model = keras.models.clone_model(
        model, clone_function=rewriter.clone, recursive=True)
    for old, new in rewriter.pairs:
        if old.weights:
            new.set_weights(old.get_weights())
    return new_model


def count_sugar_sites(model):
    """Number of SugarReLU activations anywhere in `model`."""
    return sum(isinstance(getattr(layer, "activation", None), SugarReLU)
               for layer in model._flatten_layers(include_self=False))


def _check_reloads(model):
    """Raises unless `model` rebuilds from its config with every SugarReLU:
    a rewrite that loads back without them would revert silently."""
    with warnings.catch_warnings():
        # Rebuilding warns about the user's own unbuilt layers; loading
        # their model would too, and this check is ours, not theirs.
        warnings.simplefilter("ignore")
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(model))
    expected, found = count_sugar_sites(model), count_sugar_sites(restored)
    if found != expected:
        raise ValueError(
            f"the rewritten model reloads with {found} of its {expected} "
            f"SugarReLU activations")


def _patch_whole_model(model, rewriter, clone_error):
    """For models whose graph cannot be cloned layer by layer (e.g. a layer
    whose config does not round-trip): rebuild the model from its own
    config, swap activations in place, and wrap it so the swap persists."""
    try:
        copy = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(model))
        copy.set_weights(model.get_weights())
    except Exception as config_error:
        raise ValueError(
            f"sugarify cannot rewrite model '{model.name}' "
            f"({type(model).__name__}): cloning its graph failed "
            f"({clone_error}) and rebuilding it from its config failed "
            f"({config_error}). Nothing was changed.") from config_error
    sites = rewriter.swap_inside(copy, model.name, "in place (wrapped)")
    for op in copy.operations:
        target = relu_sites.raw_op_target(op, rewriter.targets)
        if target and target != "capped":
            rewriter.report.unreachable.append(Site(
                f"{model.name}/{op.name}", "raw op", target,
                "the graph could not be cloned, so raw ops stay"))
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype,
                              name=t.name), model.input)
    outputs = patching.SugarPatched(copy, sites, rewriter.activation,
                                    name=model.name)(inputs)
    return keras.Model(inputs, outputs, name=model.name)


def sugarify(model, surrogate="bsilu", *, targets=("relu",),
             negative_only=False, implementation="auto", dry_run=False,
             **params):
    """Returns a copy of `model` whose target activations use SUGAR.

    For `targets=("relu",)` (the default) the new model's predictions equal
    the original's exactly: only the backward pass changes. Replacing
    `"gelu"` or `"silu"` swaps those units for ReLU forward, which changes
    predictions; the report says so.

    Reaches `Activation("relu")` layers, inline `activation="relu"` on any
    layer, plain `ReLU()` layers, raw `relu` op nodes, nested models
    (shared layers stay shared) and custom layers whose sublayers hold an
    `activation`. `ReLU` layers with `max_value`, `negative_slope` or
    `threshold` (e.g. relu6) are not plain ReLUs: they are kept exactly and
    reported. Subclassed Backbones (keras_cv, keras_hub) come back as plain
    functional models so that the rewrite survives saving.

    Args:
        model: A functional or `Sequential` Keras model.
        surrogate: Registered surrogate name. Defaults to `"bsilu"`.
        targets: Activations to replace, any of `"relu"`, `"gelu"`,
            `"silu"`. Defaults to `("relu",)`.
        negative_only: See `SugarReLU`. Defaults to `False`.
        implementation: See `SugarReLU`. Defaults to `"auto"`.
        dry_run: Only return the report. Defaults to `False`.
        **params: The surrogate's parameters, e.g. `alpha=0.01`.

    Returns:
        The new model (with `model.sugar_report` set), or the
        `SugarifyReport` when `dry_run=True`.

    Raises:
        ValueError: For bad arguments or a model without a graph
            (subclassed models): nothing is changed.

    Example:

    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(8, activation="relu")(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> new_model = sugarify(model, "nelu", alpha=0.01)
    >>> len(new_model.sugar_report.replaced)
    1
    """
    if isinstance(targets, str):
        targets = (targets,)
    targets = tuple(targets)
    unknown = [t for t in targets if t not in relu_sites.TARGETS]
    if unknown or not targets:
        raise ValueError(
            f"Unknown sugarify target(s) {unknown or targets}. Valid "
            f"targets: {sorted(relu_sites.TARGETS)}. Received: "
            f"targets={targets}")
    activation = SugarReLU(surrogate, negative_only=negative_only,
                           implementation=implementation, **params)
    # Functional models (and their Backbone subclasses) run their graph
    # through `_run_through_graph`; subclassed models have no graph.
    if not isinstance(model, keras.Sequential) and not hasattr(
            model, "_run_through_graph"):
        raise ValueError(
            f"sugarify rewrites functional and Sequential models, whose "
            f"layer graph it can clone. Received: {type(model).__name__} "
            f"(a subclassed model has no graph). Use "
            f"keras_sugar.SugarReLU in its layers instead, or set "
            f"layer.activation = SugarReLU(...) on the layers you own.")
    rewriter = _Rewriter(model, activation, targets)
    try:
        new_model = _clone_graph(model, rewriter)
        _check_reloads(new_model)
    except Exception as clone_error:  # Fall back, or raise a clear error.
        rewriter = _Rewriter(model, activation, targets)
        new_model = _patch_whole_model(model, rewriter, clone_error)
        _check_reloads(new_model)
    report = rewriter.report
    if dry_run:
        return report
    new_model.sugar_report = report
    return new_model

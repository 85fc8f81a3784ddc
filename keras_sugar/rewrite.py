"""`sugarify`: rewrite an existing model's ReLU (or GELU, SiLU) units to SUGAR.

A rewrite is a plan (`keras_sugar.rewrite_plan`: the sites, the route, the
report) and its application here: a `keras.models.clone_model` pass (every
layer rebuilt from its config, target activations swapped for `SugarReLU`,
raw `relu` op nodes replaced by `Activation(SugarReLU)` layers, nested
models cloned recursively, shared layers kept shared), or the rebuild route
for models whose layers do not round-trip through their config. Weights
are copied; the original model is never touched.
"""

import warnings

import keras

from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import relu_sites
from keras_sugar import rewrite_plan
from keras_sugar.activations import SugarReLU


# Where the other walkers are; kept here for the code that imports it so.
count_sugar_sites = relu_sites.count_sugar_sites


def _check_reloads(model, expected):
    """Raises unless `model` rebuilds from its config with all `expected`
    SugarReLUs: a rewrite that loads back without them would revert
    silently."""
    with warnings.catch_warnings():
        # Rebuilding warns about the user's own unbuilt layers; loading
        # their model would too, and this check is ours, not theirs.
        warnings.simplefilter("ignore")
        restored = model_graph.round_trip(model)
    found = count_sugar_sites(restored)
    if found != expected:
        raise ValueError(
            f"sugarify's rewrite of model '{model.name}' reloads with "
            f"{found} of its {expected} SugarReLU activations, so it would "
            f"revert when saved and loaded; it is not returned. Please "
            f"report this with the model's summary().")


class _CloneFunction:
    """Rebuilds each layer for `clone_model` as the plan says."""

    def __init__(self, plan):
        self.plan = plan
        self.pairs = []
        self.clones = {}  # Keeps shared layers shared, at every depth.
        self.sites = {}  # The sites of each node, `{id(node): [Site]}`.
        for site in plan.sites:
            self.sites.setdefault(id(site.node), []).append(site)

    def clone(self, model):
        """Clones a graph model (the one rewritten, or one nested in it),
        its inputs keeping their names."""
        inputs = (None if isinstance(model, keras.Sequential)
                  else model_graph.new_inputs(model))
        return keras.models.clone_model(model, input_tensors=inputs,
                                        clone_function=self)

    def __call__(self, layer):
        if id(layer) not in self.clones:
            self.clones[id(layer)] = (
                self.clone(layer) if model_graph.is_graph_model(layer)
                else self._clone_layer(layer))
        return self.clones[id(layer)]

    def _clone_layer(self, layer):
        sites = self.sites.get(id(layer), [])
        if not isinstance(layer, keras.layers.Layer):
            if not sites:
                return layer
            (site,) = sites  # A raw op is one site.
            return keras.layers.Activation(site.sugar,
                                           name=f"sugar_{layer.name}")
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        new = self._rebuild(layer, sites)
        self.pairs.append((layer, new))
        activations, relu_layers = _inner(sites)
        if activations or relu_layers:
            return patching.SugarPatched(new, activations,
                                         self.plan.activation,
                                         relu_layers=relu_layers,
                                         name=layer.name)
        return new

    def _rebuild(self, layer, sites):
        kinds = {site.kind for site in sites}
        if rewrite_plan.Kind.RELU_LAYER in kinds:
            (site,) = sites
            return patching.sugar_relu_layer(site.sugar, layer)
        if rewrite_plan.Kind.LAMBDA in kinds:
            (site,) = sites
            return keras.layers.Activation(site.sugar, name=layer.name,
                                           dtype=layer.dtype_policy)
        config = rewrite_plan.with_activations(
            layer.get_config(),
            [(site.key_path, site.sugar) for site in sites
             if site.kind is rewrite_plan.Kind.CONFIG])
        return layer.__class__.from_config(config)


def _inner(sites):
    """The positions of `sites` that `SugarPatched` swaps in place:
    `(sublayer activations, ReLU sublayers)`."""
    kind = rewrite_plan.Kind
    return ([site.position for site in sites
             if site.kind is kind.SUBLAYER_ACTIVATION],
            [site.position for site in sites
             if site.kind is kind.SUBLAYER_RELU_LAYER])


def _apply_clone(plan):
    clone_function = _CloneFunction(plan)
    with model_graph.rebuilding_own_objects():
        new_model = clone_function.clone(plan.model)
    for old, new in clone_function.pairs:
        if old.weights:
            new.set_weights(old.get_weights())
    return new_model


_GRAPH_KINDS = {rewrite_plan.Kind.RAW_OP: patching.GRAPH_OP,
                rewrite_plan.Kind.RELU_LAYER: patching.GRAPH_RELU_LAYER}


def _apply_rebuild(plan):
    model = plan.model
    rebuilt = model_graph.round_trip(model)
    rebuilt.set_weights(model.get_weights())
    graph_sites = [[site.position, _GRAPH_KINDS[site.kind], site.sugar]
                   for site in plan.sites if site.kind in _GRAPH_KINDS]
    activations, relu_layers = _inner(plan.sites)
    inputs = model_graph.new_inputs(model)
    outputs = patching.SugarPatched(
        rebuilt, activations, plan.activation, relu_layers=relu_layers,
        graph_sites=graph_sites, name=model.name)(inputs)
    return keras.Model(inputs, outputs, name=model.name)


def _check_arguments(model, targets, dry_run, existing):
    model_graph.check_graph_model(
        model, "sugarify", "Use keras_sugar.SugarReLU in its layers "
        "instead, or set layer.activation = SugarReLU(...) on the layers "
        "you own.")
    if not isinstance(dry_run, bool):
        raise TypeError(
            f"sugarify's dry_run must be True or False. Received: "
            f"dry_run={dry_run!r}")
    if not isinstance(existing, str) or existing not in rewrite_plan.EXISTING:
        raise ValueError(
            f"sugarify's existing says what to do with the SugarReLUs the "
            f"model holds already: one of {list(rewrite_plan.EXISTING)}. "
            f"Received: existing={existing!r}")
    if isinstance(targets, str):
        targets = (targets,)
    if not isinstance(targets, (tuple, list)):
        raise TypeError(
            f"sugarify's targets must be a name or a tuple of names from "
            f"{sorted(relu_sites.TARGETS)}. Received: targets={targets!r}")
    targets = tuple(targets)
    unknown = [t for t in targets if t not in relu_sites.TARGETS]
    if unknown or not targets:
        raise ValueError(
            f"Unknown sugarify target(s) {unknown or targets}. Valid "
            f"targets: {sorted(relu_sites.TARGETS)}. Received: "
            f"targets={targets}")
    return targets


def sugarify(model, surrogate="bsilu", *, targets=("relu",),
             negative_only=False, implementation="auto", existing="keep",
             layers=None, dry_run=False, **params):
    """Returns a copy of `model` whose target activations use SUGAR.

    For `targets=("relu",)` (the default) the new model's predictions equal
    the original's exactly: only the backward pass changes. Replacing
    `"gelu"` or `"silu"` swaps those units for ReLU forward, which changes
    predictions; the report says so.

    Reaches `Activation("relu")` layers, inline `activation="relu"` on any
    layer, plain `ReLU()` layers, raw `relu` op nodes, nested models
    (shared layers stay shared) and custom layers whose sublayers hold an
    `activation`, inside `TimeDistributed`/`Bidirectional` wrappers and
    recurrent cells (`activation` and `recurrent_activation`), and
    `Lambda(keras.activations.relu)`. Capped ReLUs (relu6) are rewritten
    when `"relu6"` is a target, and otherwise kept exactly and reported,
    as are `ReLU` layers with a `negative_slope` or `threshold`.
    Subclassed Backbones (keras_cv, keras_hub) come back as plain
    functional models so that the rewrite survives saving. Inputs keep
    their names.

    SugarReLUs the model holds already (placed by hand, or by an earlier
    `sugarify`) are kept as they are and listed in the report's
    `already_sugar`, so `sugarify(sugarify(model))` predicts as `model`;
    `existing="replace"` puts the new activation there too (a capped one
    keeps its cap), listing them in `replaced`.

    `layers` rewrites only some sites: every ReLU but the stem's is
    `layers=lambda site: not site.path.startswith("stem")`. The sites it
    leaves out are listed in the report's `left_by_filter`, and kept as
    they are.

    Args:
        model: A functional or `Sequential` Keras model.
        surrogate: Registered surrogate name. Defaults to `"bsilu"`.
        targets: Activations to replace, any of `"relu"`, `"relu6"`
            (capped ReLUs: `relu6`, `ReLU(max_value=...)`; the forward
            stays exact, the gradient is 0 at and above the cap),
            `"gelu"`, `"silu"`. Defaults to `("relu",)`.
        negative_only: See `SugarReLU`. Defaults to `False`.
        implementation: See `SugarReLU`. Defaults to `"auto"`.
        existing: `"keep"` the SugarReLUs the model holds already, or
            `"replace"` them with the new activation. Defaults to
            `"keep"`.
        layers: Which sites to rewrite, matched against each site's path
            as the report prints it (`"block_3_conv/dense"`, see
            `keras_sugar.model_graph`): a glob string matched against the
            whole path with `fnmatch.fnmatchcase` (`"block_3*"`), a
            compiled regular expression (`re.compile(...)`, matched with
            `search`), or a callable taking a `rewrite_plan.Site` (with
            `path`, `form`, `activation`) and returning a bool. A filter
            that matches no site raises `ValueError`. Defaults to None,
            every site.
        dry_run: Only plan: return the report of what would change (the
            sites `layers` selects and leaves) and by which route. It
            clones no model, rebuilds no model from its config and copies
            no weights; it only rebuilds custom layers (classes from
            outside Keras) from their configs, unweighted, since only that
            shows whether a config round-trips and which sublayers such a
            layer builds from its own activation argument (see
            `rewrite_plan.Plan`). Defaults to `False`.
        **params: The surrogate's parameters, e.g. `alpha=0.01`.

    Returns:
        The new model (with `model.sugar_report` set), or the
        `SugarifyReport` when `dry_run=True`.

    Raises:
        ValueError: For bad arguments or a model without a graph
            (subclassed models): nothing is changed.
        TypeError: For arguments of the wrong type.

    Example:

    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.Dense(8, activation="relu", name="stem")(inputs)
    >>> hidden = keras.layers.Dense(8, activation="relu", name="top")(hidden)
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> new_model = sugarify(model, "nelu", alpha=0.01)
    >>> len(new_model.sugar_report.replaced)
    2
    >>> sugarify(model, dry_run=True).route
    'clone'
    >>> report = sugarify(model, layers="to*", dry_run=True)
    >>> report.replaced, report.left_by_filter
    ([Site('top', inline (Dense), relu)], [Site('stem', inline (Dense), relu)])
    """
    targets = _check_arguments(model, targets, dry_run, existing)
    activation = SugarReLU(surrogate, negative_only=negative_only,
                           implementation=implementation, **params)
    plan = rewrite_plan.plan(model, activation, targets, existing, layers)
    if dry_run:
        plan.report.dry_run = True  # Its first line says so.
        return plan.report
    if plan.route == "clone":
        new_model = _apply_clone(plan)
    else:
        new_model = _apply_rebuild(plan)
    # What the rewrite must keep: the sites it replaced and the SugarReLUs
    # it left as they were.
    _check_reloads(new_model, len(plan.sites) + plan.kept_sugar)
    new_model.sugar_report = plan.report
    return new_model

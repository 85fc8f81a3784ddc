"""`sugarify`: rewrite an existing model's ReLU (or GELU, SiLU) units to SUGAR.

A rewrite is a plan (`keras_sugar.rewrite_plan`: the sites, the route, the
report, from the model's site map) and its application here: a clone
(`keras_sugar.cloning`: every layer rebuilt from its config, target
activations swapped for `SugarReLU`, raw `relu` op nodes replaced by
`Activation(SugarReLU)` layers named as them, the sublayers of layers that
build them themselves patched by `SugarPatched`, nested models cloned
recursively, shared layers kept shared), or the rebuild route for models
whose layers do not round-trip through their config. Weights are copied;
the original model is never touched.
"""

import warnings

import keras

from keras_sugar import cloning
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import rewrite_plan
from keras_sugar import site_map
from keras_sugar import site_records
from keras_sugar.activation_kinds import TARGETS
from keras_sugar.activations import SugarReLU

# Where it is defined; kept here for the code that imports it so.
count_sugar_sites = site_map.count_sugar_sites


def _check_reloads(model, plan):
    """Raises unless `model` rebuilds from its config with a SugarReLU at
    every site the plan put or kept one, and nowhere else: a rewrite that
    loads back without them would revert silently."""
    with warnings.catch_warnings():
        # Rebuilding warns about the user's own unbuilt layers; loading
        # their model would too, and this check is ours, not theirs.
        warnings.simplefilter("ignore")
        restored = model_graph.round_trip(model)
    found = sorted(((site.path, site.sugar) for site in
                    site_map.read(restored).sugar_sites),
                   key=lambda pair: (pair[0], repr(pair[1])))
    if found != plan.expected_sugar:
        expected = [path for path, _ in plan.expected_sugar]
        raise ValueError(
            f"sugarify's rewrite of model '{model.name}' reloads with "
            f"SugarReLUs at {[path for path, _ in found]} instead of "
            f"{expected}, so it would not be what it is once saved and "
            f"loaded; it is not returned. Please report this with the "
            f"model's summary().")


def patch_of(change):
    """The `patching.Patch`es that make `change` in the layer at its
    site's node (the node itself: `node` is relative to it)."""
    replace, sugar = change.site.replace, change.sugar
    if isinstance(replace, site_records.SwapNode):
        return [patching.Patch("node", (), (), sugar)]
    if isinstance(replace, site_records.EditConfig):
        return [patching.Patch("activation", (), position, sugar, attribute)
                for position, attribute in replace.holders]
    kind = "relu_layer" if replace.relu_layer else "activation"
    return [patching.Patch(kind, (), replace.position, sugar)]


def _by_node(changes):
    found = {}
    for change in changes:
        found.setdefault(id(change.site.replace.node), []).append(change)
    return found


class _Rebuild:
    """The clone route's `clone_function`: each node as the plan says."""

    def __init__(self, plan):
        self.changes = _by_node(plan.changes)
        self.kept = _by_node(plan.kept_patches)

    def __call__(self, node):
        changes = self.changes.get(id(node), [])
        swaps = [c for c in changes
                 if isinstance(c.site.replace, site_records.SwapNode)]
        if swaps:
            return patching.node_replacement(node, swaps[0].sugar)
        if not isinstance(node, keras.layers.Layer):
            return node  # A raw op that stays.
        if isinstance(node, patching.SugarPatched) and not changes:
            # Rebuilt from its own config, with every patch it holds.
            return node.__class__.from_config(node.get_config())
        base = patching.base_of(node)
        config = site_map.with_values(base.get_config(), [
            (c.site.replace.key_path,
             keras.saving.serialize_keras_object(c.sugar)) for c in changes
            if isinstance(c.site.replace, site_records.EditConfig)])
        new = base.__class__.from_config(config)
        patches = [patch for change in self.kept.get(id(node), []) + [
            c for c in changes
            if isinstance(c.site.replace, site_records.PatchSublayer)]
            for patch in patch_of(change)]
        if not patches:
            return new
        return patching.SugarPatched(new, patches, name=node.name)


def _apply_clone(plan):
    return cloning.clone(plan.model, _Rebuild(plan), "sugarify")


def _apply_rebuild(plan):
    """Rebuilds the model (or, for a model rewritten through this route
    before, the model its wrapper saved) from its own config, and wraps it
    in a `SugarPatched` making every change and keeping every patch."""
    model, wrapper = plan.model, plan.map.wrapper
    source = (wrapper.source_config() if wrapper is not None
              else keras.saving.serialize_keras_object(model))
    with model_graph.rebuilding_own_objects():
        rebuilt = keras.saving.deserialize_keras_object(source)
    running = patching.graph_of(wrapper) if wrapper is not None else model
    cloning.copy_weights(running, rebuilt, "sugarify")
    # The nodes keep the names (and so the paths) they have now.
    names = patching.node_names_of(running)
    patches = []
    for change in plan.changes + plan.kept_patches:
        index = change.site.replace.index
        patches += [patching.Patch(p.kind, index, p.position, p.activation,
                                   p.attribute) for p in patch_of(change)]
    inputs = model_graph.new_inputs(model)
    outputs = patching.SugarPatched(rebuilt, patches, names,
                                    name=model.name)(inputs)
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
            f"{sorted(TARGETS)}. Received: targets={targets!r}")
    targets = tuple(targets)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(
            f"Unknown sugarify target(s) {unknown or targets}. Valid "
            f"targets: {sorted(TARGETS)}. Received: targets={targets}")
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
    `activation` or are `ReLU` layers, inside `TimeDistributed`/
    `Bidirectional` wrappers and recurrent cells (`activation` and
    `recurrent_activation`), and `Lambda(keras.activations.relu)`. Capped
    ReLUs (relu6) are rewritten when `"relu6"` is a target, and otherwise
    kept exactly and reported, as are `ReLU` layers with a
    `negative_slope` or `threshold`. Subclassed Backbones (keras_cv,
    keras_hub) come back as plain functional models so that the rewrite
    survives saving. Inputs keep their names, and every site keeps its
    path (`keras_sugar.site_map`): a second rewrite, a filter, the
    dead-unit report and `strip_sugar` name it the same.

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
        model: A functional or `Sequential` Keras model (a `Sequential`
            made without `keras.Input` too: its layers are rewritten, and
            built on its first call).
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
            as the report prints it (`"block_3_conv/dense"`): a glob
            string matched against the whole path with
            `fnmatch.fnmatchcase` (`"block_3*"`), a compiled regular
            expression (`re.compile(...)`, matched with `search`), or a
            callable taking a `site_records.Site` (with `path`, `form`,
            `activation`) and returning a bool. A filter that matches no
            site raises `ValueError`. Defaults to None, every site.
        dry_run: Only plan: return the report of what would change (the
            sites `layers` selects and leaves) and by which route. It
            clones no model, rebuilds no model from its config and copies
            no weights; it only rebuilds custom layers (classes from
            outside Keras) from their configs, unweighted, since only that
            shows whether a config round-trips and which sublayers such a
            layer builds from its own activation argument (see
            `site_map.read`). Defaults to `False`.
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
    <Route.CLONE: 'clone'>
    >>> report = sugarify(model, layers="to*", dry_run=True)
    >>> report.replaced, report.left_by_filter
    ([Site('top', inline (Dense), relu)], [Site('stem', inline (Dense), relu)])
    """
    targets = _check_arguments(model, targets, dry_run, existing)
    activation = SugarReLU(surrogate, negative_only=negative_only,
                           implementation=implementation, **params)
    plan = rewrite_plan.plan(model, activation, targets, existing, layers,
                             dry_run)
    if dry_run:
        plan.report.dry_run = True  # Its first line says so.
        return plan.report
    if plan.route is rewrite_plan.Route.CLONE:
        new_model = _apply_clone(plan)
    else:
        new_model = _apply_rebuild(plan)
    _check_reloads(new_model, plan)
    new_model.sugar_report = plan.report
    return new_model

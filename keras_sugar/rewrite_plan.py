"""The plan of a `sugarify` rewrite: which sites change, by which route, why.

Planning reads the model and builds nothing big: it finds every target
activation site, decides how each is rewritten, and chooses the route:

- `"clone"`: `keras.models.clone_model`, layer by layer (the usual route).
- `"rebuild"`: when a layer's config does not round-trip (Keras cannot
  rebuild it from `get_config()`), a layer-by-layer clone would not reload;
  the model is rebuilt from its own config instead, its sublayers'
  activations are swapped in place, and its own graph's raw ops and ReLU
  layers are replaced in a copy of the graph that shares every other layer
  (`SugarPatched` saves the model's own config and redoes both on load).

`sugarify(..., dry_run=True)` returns the plan's report and stops here.
"""

import inspect
import re

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import patching
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU

ROUTES = {
    "clone": "cloned layer by layer",
    "rebuild": "rebuilt from the model's own config, activations set in "
               "place, graph copied sharing its layers",
}


class Site:
    """One place in a model where a target activation lives.

    Attributes:
        path: Layer path (see `keras_sugar.model_graph`).
        form: How the activation appears, e.g. `"ReLU layer"`, `"raw op"`,
            `"inline (Dense)"`.
        activation: The target it computes: `"relu"`, `"gelu"` or `"silu"`.
        note: Why it was left unchanged or cannot be reached, if so.
    """

    def __init__(self, path, form, activation, note=""):
        self.path = path
        self.form = form
        self.activation = activation
        self.note = note

    def __repr__(self):
        return f"Site({self.path!r}, {self.form}, {self.activation})"


class SugarifyReport:
    """What `sugarify` replaces, leaves alone, and cannot reach.

    Attributes:
        replaced: `Site`s rewritten to SUGAR.
        skipped: `Site`s seen but deliberately left unchanged (e.g.
            `ReLU(max_value=6)`), with the reason.
        unreachable: `Site`s that may hold a target activation the rewrite
            cannot reach (e.g. `ops.relu` inside a custom layer's `call`).
        already_sugar: `Site`s that held a `SugarReLU` already and keep
            it (the default, `existing="keep"`). With `existing="replace"`
            they are in `replaced` instead (noting what they held), but
            for those swapped in place (inside custom layers, or anywhere
            on the rebuild route) that are capped or already the new
            activation.
        route: `"clone"` or `"rebuild"` (see `ROUTES`).
        route_reason: Why the route was chosen.
        changes_forward: True when a non-ReLU target (GELU, SiLU) is
            replaced, so predictions change by the user's choice.
    """

    def __init__(self, activation, targets):
        self.activation = activation
        self.targets = targets
        self.replaced = []
        self.skipped = []
        self.unreachable = []
        self.already_sugar = []
        self.route = "clone"
        self.route_reason = "every layer's config round-trips"

    @property
    def changes_forward(self):
        return any(site.activation not in relu_sites.EXACT_FORWARD
                   for site in self.replaced)

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        lines = [f"sugarify: {len(self.replaced)} site(s) -> {self.activation}"
                 f" (targets: {', '.join(self.targets)})",
                 f"  route: {ROUTES[self.route]} ({self.route_reason})"]
        sections = [("replaced", self.replaced),
                    ("already SUGAR (kept)", self.already_sugar),
                    ("left unchanged", self.skipped),
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
            lines.append("  nothing to replace: the model has no reachable "
                         f"{'/'.join(self.targets)} activation sites.")
        return "\n".join(lines)

    __repr__ = __str__


class Plan:
    """A rewrite decided but not applied.

    Attributes:
        model: The model to rewrite (never modified).
        activation: The `SugarReLU` to put in.
        targets: The target activation names.
        report: The `SugarifyReport` the rewrite will return.
        actions: For the clone route, `{id(node): (action, activation)}`,
            the `SugarReLU` to put there (capped for relu6 sites) and the
            action: `"op"` (a raw
            op becomes an `Activation` layer), `"relu_layer"` (a `ReLU`
            layer becomes a SugarReLU layer), `"config"` (the activations
            at `config_paths[id(layer)]` in the layer's config are
            replaced: its own, a wrapped layer's, a recurrent cell's; a
            list of `(key_path, activation)`),
            `"lambda"` (a `Lambda` of a target becomes an `Activation`).
            Custom layers may also have `patches[id(layer)]`: sublayer
            sites to swap in place.
        rebuilt: For the rebuild route, the model rebuilt from its config
            (unweighted), `rebuilt_sites` its sublayer sites to swap, and
            `graph_sites` the nodes of its own graph (raw ops, ReLU layers)
            to replace in a copy of that graph (see `SugarPatched`).
    """

    def __init__(self, model, activation, targets, existing="keep"):
        self.model = model
        self.activation = activation
        self.targets = targets
        self.existing = existing
        # `(id(holder), attribute)` of the SugarReLUs the rewrite replaces
        # through a config or a graph node (see `_existing_sites`).
        self.replaced_holders = set()
        self.report = SugarifyReport(repr(activation), targets)
        self.actions = {}
        self.config_paths = {}
        self.patches = {}
        self.rebuilt = None
        self.rebuilt_sites = []
        self.graph_sites = []

    @property
    def route(self):
        return self.report.route

    def activation_for(self, target, site=None):
        """The `SugarReLU` for a site of `target`: for `"relu6"` the same
        surrogate with the site's cap (`relu_sites.cap`)."""
        if target != "relu6":
            return self.activation
        return SugarReLU.from_config({**self.activation.get_config(),
                                      "max_value": relu_sites.cap(site)})

    def config_sites(self, layer):
        """`relu_sites.config_sites` of `layer` for this plan: with
        `existing="replace"`, a `SugarReLU` there is a site too (of
        `"relu"`, or `"relu6"` when capped)."""
        return relu_sites.config_sites(
            layer, self.targets, replace_sugar=self.replaces_existing)

    @property
    def replaces_existing(self):
        return self.existing == "replace"

    def replaces_inside(self, activation):
        """Whether a `SugarReLU` that a custom layer builds itself is
        replaced: with `existing="replace"`, when uncapped (sublayers are
        swapped with one activation) and not already the new one (as
        sublayers holding what their parent's rewritten config passes
        on)."""
        return (self.replaces_existing and isinstance(activation, SugarReLU)
                and activation.max_value is None
                and activation != self.activation)

    def inner_target(self, function):
        """The target of a sublayer's activation for the in-place swap
        (see `_inner_sites`), or None."""
        if self.replaces_inside(function):
            return "relu"
        return relu_sites.target_of_function(
            function, tuple(t for t in self.targets if t in _PATCHABLE))


# A custom layer's inner sites are swapped with one activation (see
# `patching.SugarPatched`); capped ones would need their own.
_PATCHABLE = ("relu", "gelu", "silu")


def _target_call_in_source(function, targets):
    """The first target named as a whole word in `function`'s source
    (`ops.relu(`, `activations.gelu(`, `"relu"`), or None: `leaky_relu(`
    and `relu6(` are other functions."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # Built-ins and code made at runtime.
        return None
    for target in targets:
        if re.search(rf"(?<![\w.]){target}\s*\(|\.{target}\s*\(|"
                     rf"[\"']{target}[\"']", source):
            return target
    return None


def _inner_sites(layer, path, form, plan, handled=()):
    """Reports the swappable sublayer activations of `layer`, and its plain
    `ReLU` sublayers that one attribute holds (replaced by SugarReLU
    layers; others cannot be reached); returns their positions (see
    `patching.SugarPatched`)."""
    targets = plan.targets
    sites = []
    for indices, names, sublayer in patching.activation_sites(
            layer, lambda function: plan.inner_target(function) is not None):
        sites.append(indices)
        plan.report.replaced.append(Site(
            model_graph.join(path, names), form,
            plan.inner_target(sublayer.activation),
            _was(sublayer.activation)))
    swapped = set()
    if "relu" in targets:
        for indices, names, relu in patching.relu_layer_sites(layer):
            sites.append(indices + (patching.LAYER,))
            swapped.add(id(relu))
            plan.report.replaced.append(Site(
                model_graph.join(path, names), f"{form} (ReLU layer)",
                "relu"))
    inside = (f"inside {type(layer).__name__}, which builds its sublayers "
              f"itself")
    for sublayer in model_graph.descendants(layer):
        where = model_graph.join(path, f".../{sublayer.name}")
        if id(sublayer) in handled:
            continue
        if isinstance(sublayer, keras.layers.ReLU):
            if ("relu" in targets and relu_sites.is_plain_relu(sublayer)
                    and id(sublayer) not in swapped):
                plan.report.unreachable.append(Site(
                    where, "ReLU layer", "relu",
                    f"{inside}, as a node of its graph or in a list"))
            elif ("relu6" in targets
                  and relu_sites.is_capped_relu(sublayer)):
                plan.report.unreachable.append(Site(
                    where, "ReLU layer", "relu6", inside))
        elif "relu6" in targets and callable(getattr(
                sublayer, "activation", None)) and (
                relu_sites.target_of_function(
                    sublayer.activation, ("relu6",))):
            plan.report.unreachable.append(Site(
                where, f"inline ({type(sublayer).__name__})", "relu6",
                f"{inside}; inner capped activations are not swapped"))
    return sites


_RELU6_HINT = " (targets=('relu', 'relu6') rewrites capped ReLUs too)"


def _was(activation):
    """The note of a site that held a SugarReLU and is replaced."""
    return f"was {activation!r}" if isinstance(activation, SugarReLU) else ""


def _plan_op(op, path, plan):
    target = relu_sites.raw_op_target(op, plan.targets)
    if target == "capped":
        plan.report.skipped.append(Site(
            path, "raw op", "relu",
            f"{type(op).__name__} with a cap, slope or threshold: not a "
            f"plain ReLU, kept exactly{_RELU6_HINT}"))
    elif target:
        plan.report.replaced.append(Site(path, "raw op", target))
        plan.actions[id(op)] = ("op", plan.activation_for(target, op))


def _form(layer, key):
    if isinstance(layer, keras.layers.Activation):
        return "Activation layer"
    if key == "recurrent_activation":
        return f"recurrent ({type(layer).__name__})"
    return f"inline ({type(layer).__name__})"


def _plan_lambda(layer, path, plan):
    """`Lambda(keras.activations.relu)` (or `ops.relu`), without extra
    arguments, becomes an `Activation` layer; a Lambda whose own code
    calls a target is reported as not reachable."""
    target = relu_sites.target_of_function(layer.function, plan.targets)
    if target and not layer.arguments:
        plan.report.replaced.append(Site(path, "Lambda layer", target))
        plan.actions[id(layer)] = ("lambda", plan.activation_for(target))
        return
    target = target or _target_call_in_source(layer.function, plan.targets)
    if target:
        plan.report.unreachable.append(Site(
            path, "Lambda layer", target,
            f"its function calls {target} in Python code; use "
            f"Activation(keras_sugar.SugarReLU(...)) there"))


def _plan_layer(layer, path, plan, rebuilt):
    report = plan.report
    if isinstance(layer, sugar_layers.SugarReLU):
        if plan.replaces_existing:
            target = relu_sites.sugar_target(layer.activation)
            report.replaced.append(Site(path, "SugarReLU layer", target,
                                        _was(layer.activation)))
            plan.actions[id(layer)] = (
                "relu_layer", plan.activation_for(target, layer.activation))
            plan.replaced_holders.add((id(layer), "activation"))
        return
    if isinstance(layer, keras.layers.ReLU):
        target = relu_sites.relu_layer_target(layer, plan.targets)
        if target:
            report.replaced.append(Site(path, "ReLU layer", target))
            plan.actions[id(layer)] = (
                "relu_layer", plan.activation_for(target, layer))
        elif "relu" in plan.targets and not relu_sites.is_plain_relu(layer):
            hint = (_RELU6_HINT if relu_sites.is_capped_relu(layer)
                    else "")
            report.skipped.append(Site(
                path, "ReLU layer", "relu",
                f"max_value={layer.max_value}, negative_slope="
                f"{layer.negative_slope}, threshold={layer.threshold}: not "
                f"a plain ReLU, kept exactly{hint}"))
        return
    if isinstance(layer, keras.layers.Lambda):
        _plan_lambda(layer, path, plan)
        return
    entries = []
    for key_path, names, owner, key, target in plan.config_sites(layer):
        site_path = (model_graph.join(path, "/".join(names)) if names
                     else path)
        held = getattr(owner, key)
        report.replaced.append(Site(site_path, _form(owner, key), target,
                                    _was(held)))
        if isinstance(held, SugarReLU):
            # A recurrent layer's activations are its cell's.
            holder = (owner.cell if isinstance(owner, keras.layers.RNN)
                      else owner)
            plan.replaced_holders.add((id(holder), key))
        entries.append((key_path, plan.activation_for(target, held)))
    if entries:
        plan.actions[id(layer)] = ("config", None)
        plan.config_paths[id(layer)] = entries
    if model_graph.is_core_keras(layer):
        return
    # A custom layer is rebuilt from its config when cloned: find the sites
    # on such a rebuilt copy, whose sublayers are the ones the swap sees.
    sites = _inner_sites(rebuilt[id(layer)], path, "inside custom layer",
                         plan)
    if sites:
        plan.patches[id(layer)] = sites
        return
    target = _target_call_in_source(type(layer).call, plan.targets)
    if target:
        report.unreachable.append(Site(
            path, type(layer).__name__, target,
            f"its call() uses {target} directly; rewrite that code with "
            f"keras_sugar.SugarReLU"))


def _plan_clone(model, plan, paths, rebuilt, seen):
    for node in model_graph.nodes(model):
        if id(node) in seen or isinstance(node, keras.layers.InputLayer):
            continue
        seen.add(id(node))
        path = paths[id(node)]
        if not isinstance(node, keras.layers.Layer):
            _plan_op(node, path, plan)
        elif model_graph.is_graph_model(node):
            _plan_clone(node, plan, paths, rebuilt, seen)
        else:
            _plan_layer(node, path, plan, rebuilt)


def set_activations(config, entries):
    """Puts each `(key_path, activation)` of `entries` (serialized) at its
    key path of a layer config (see `relu_sites.config_sites`), in
    place."""
    for key_path, activation in entries:
        place = config
        for key in key_path[:-1]:
            place = place[key]
        place[key_path[-1]] = keras.saving.serialize_keras_object(activation)


def _config_entries(layer, plan):
    return [(key_path, plan.activation_for(target, getattr(owner, key)))
            for key_path, _, owner, key, target in plan.config_sites(layer)]


def _rebuild_custom_layers(model, plan, rebuilt, seen):
    """Rebuilds from its config every custom layer the clone would rebuild,
    into `rebuilt` (`{id(layer): copy}`), with its own target activations
    already replaced as the clone will (so the sublayers it builds from
    them are not counted again); returns `(layer, reason)` for the first
    whose config does not round-trip, or None."""
    for node in model_graph.nodes(model):
        if (id(node) in seen or not isinstance(node, keras.layers.Layer)
                or isinstance(node, keras.layers.InputLayer)):
            continue
        seen.add(id(node))
        if model_graph.is_graph_model(node):
            failure = _rebuild_custom_layers(node, plan, rebuilt, seen)
            if failure:
                return failure
        elif not model_graph.is_core_keras(node):
            entries = _config_entries(node, plan)
            copy, reason = model_graph.rebuilt_from_config(
                node, lambda config: set_activations(config, entries))
            if reason:
                return node, reason
            rebuilt[id(node)] = copy
    return None


def _graph_site(node, plan):
    """`(kind, target)` for a node of the rebuilt model's own graph that a
    copy of the graph can replace, or None."""
    if isinstance(node, keras.layers.ReLU):
        target = relu_sites.relu_layer_target(node, plan.targets)
        return ("relu_layer", target) if target else None
    if isinstance(node, keras.layers.Layer):
        return None
    target = relu_sites.raw_op_target(node, plan.targets)
    return ("op", target) if target and target != "capped" else None


def _plan_rebuild(model, plan):
    rebuilt = model_graph.round_trip(model)
    plan.rebuilt = rebuilt
    handled = set()
    for index, node in enumerate(model_graph.nodes(rebuilt)):
        site = _graph_site(node, plan)
        if site is None:
            continue
        kind, target = site
        handled.add(id(node))
        plan.graph_sites.append(
            [index, kind, plan.activation_for(target, node)])
        form = "ReLU layer" if kind == "relu_layer" else "raw op"
        plan.report.replaced.append(Site(node.name, f"{form} (rebuilt)",
                                         target))
    plan.rebuilt_sites = _inner_sites(rebuilt, "", "in place (rebuilt)",
                                      plan, handled)


def sugar_holders(layer, names=(), inside=False, inherited=(), seen=None):
    """Yields `(names, holder, attribute, activation, inside)` for every
    `SugarReLU` anywhere in `layer`.

    Each is yielded once, on the layer that holds it: a recurrent layer's
    on its cell, and one a layer passes on to the sublayers it builds
    (keras_hub's `TransformerEncoder` to its feed-forward `Dense`) on that
    layer only. `names` are the layer names from `layer` down (a path, see
    `keras_sugar.model_graph`); `inside` tells a sublayer that a custom
    layer of a model's graph builds itself.
    """
    seen = set() if seen is None else seen
    for child in model_graph.children(layer):
        if id(child) in seen:
            continue  # A shared layer.
        seen.add(id(child))
        held = () if isinstance(child, keras.layers.RNN) else [
            (key, getattr(child, key, None))
            for key in relu_sites.ACTIVATION_KEYS]
        own = [(key, a) for key, a in held if isinstance(a, SugarReLU)
               and not any(a is b for b in inherited)]
        child_names = names + (child.name,)
        for key, activation in own:
            yield child_names, child, key, activation, inside
        # The sublayers a custom node of a graph builds itself.
        child_inside = inside or (model_graph.is_graph_model(layer)
                                  and not model_graph.is_graph_model(child)
                                  and not model_graph.is_core_keras(child))
        yield from sugar_holders(
            child, child_names, child_inside,
            inherited + tuple(a for _, a in own), seen)


def _holder_form(holder, key, inside):
    if inside:
        return "inside custom layer"
    if isinstance(holder, sugar_layers.SugarReLU):
        return "SugarReLU layer"
    return _form(holder, key)


def _existing_sites(walked, plan, rebuilt=False):
    """Lists, as kept, the SugarReLUs of `walked` (the model, or its rebuilt
    copy on the rebuild route) that the rewrite leaves as they are: every
    one by default; with `existing="replace"` those neither replaced
    through a config or graph node nor swapped inside a custom layer."""
    for names, holder, key, activation, within in sugar_holders(
            walked, inside=rebuilt):
        if ((id(holder), key) in plan.replaced_holders
                or within and plan.replaces_inside(activation)):
            continue
        note = f"{activation!r}, kept"
        if plan.replaces_existing:
            note += (" (the new activation already)"
                     if activation == plan.activation else
                     " (capped, and swapped in place: only uncapped ones "
                     "are)")
        form = ("in place (rebuilt)" if rebuilt
                else _holder_form(holder, key, within))
        plan.report.already_sugar.append(Site(
            "/".join(names), form,
            relu_sites.sugar_target(activation), note))


EXISTING = ("keep", "replace")


def plan(model, activation, targets, existing="keep"):
    """Plans the rewrite of `model`'s `targets` to `activation`.

    Args:
        model: A functional or `Sequential` model (checked by the caller).
        activation: The `SugarReLU` to put in.
        targets: Tuple of target names (checked by the caller).
        existing: What to do with the SugarReLUs `model` holds already, one
            of `EXISTING` (checked by the caller). Defaults to `"keep"`.

    Returns:
        A `Plan`; `plan.report` says what will change and by which route.
    """
    result = Plan(model, activation, targets, existing)
    rebuilt = {}
    failure = _rebuild_custom_layers(model, result, rebuilt, set())
    paths = model_graph.node_paths(model)
    if failure is None:
        _plan_clone(model, result, paths, rebuilt, set())
        _existing_sites(model, result)
        return result
    layer, reason = failure
    result.report.route = "rebuild"
    result.report.route_reason = (
        f"layer '{paths.get(id(layer), layer.name)}' "
        f"({type(layer).__name__}) does not round-trip through its config, "
        f"so a layer-by-layer clone would not reload: {reason}")
    _plan_rebuild(model, result)
    # Every sublayer of the rebuilt model is swapped in place.
    _existing_sites(result.rebuilt, result, rebuilt=True)
    return result

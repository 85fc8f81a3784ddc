"""The plan of a `sugarify` rewrite: which sites change, by which route, why.

Planning reads the model and builds no model: it finds every target
activation site, records for each one `Site` (where it is, how it is
rewritten, the `SugarReLU` to put there), and chooses the route:

- `"clone"`: `keras.models.clone_model`, layer by layer (the usual route).
- `"rebuild"`: when a layer's config does not round-trip (Keras cannot
  rebuild it from `get_config()`), a layer-by-layer clone would not reload;
  the model is rebuilt from its own config instead, its sublayers'
  activations are swapped in place, and its own graph's raw ops and ReLU
  layers are replaced in a copy of the graph that shares every other layer
  (`SugarPatched` saves the model's own config and redoes both on load).

The sites of the rebuild route are found on the model itself, addressed by
position (its rebuilt copy has the same structure; `SugarPatched` checks
that when it applies them). Planning rebuilds only custom layers (classes
from outside Keras), each from its config and unweighted, because it is
the one way to know (see `Plan`). `sugarify(..., dry_run=True)` returns
the plan's report and stops here.
"""

import enum
import fnmatch
import inspect
import re

import keras

from keras_sugar import layers as sugar_layers
from keras_sugar import model_graph
from keras_sugar import relu_sites
from keras_sugar.activations import SugarReLU

ROUTES = {
    "clone": "cloned layer by layer",
    "rebuild": "rebuilt from the model's own config, activations set in "
               "place, graph copied sharing its layers",
}


class Kind(enum.Enum):
    """How a replaced `Site` is rewritten."""

    # A raw op node becomes an `Activation(SugarReLU)` layer; on the
    # rebuild route it is replaced in a copy of the model's graph.
    RAW_OP = "raw op"
    # A `ReLU` layer (or a SugarReLU layer being replaced) becomes a
    # SugarReLU layer.
    RELU_LAYER = "ReLU layer"
    # The activation at `Site.key_path` of the layer's config is replaced.
    CONFIG = "config"
    # A `Lambda` of a target function becomes an `Activation` layer.
    LAMBDA = "Lambda"
    # A sublayer's `activation`, at `Site.position` in a layer that builds
    # its sublayers itself, is set in place (`SugarPatched`).
    SUBLAYER_ACTIVATION = "sublayer activation"
    # A plain `ReLU` sublayer at `Site.position` is replaced by a SugarReLU
    # layer in its parent's attribute (`SugarPatched`).
    SUBLAYER_RELU_LAYER = "sublayer ReLU layer"


class Site:
    """One place in a model where a target activation lives.

    Attributes:
        path: Layer path (see `keras_sugar.model_graph`), as the report
            prints it and as `sugarify(..., layers=...)` matches it.
        form: How the activation appears, e.g. `"ReLU layer"`, `"raw op"`,
            `"inline (Dense)"`.
        activation: The target it computes: `"relu"`, `"relu6"`, `"gelu"`
            or `"silu"` (see `relu_sites.TARGETS`).
        note: Why it was left unchanged or cannot be reached, if so, or
            the SugarReLU it held when it is replaced.
        kind: For a site to replace, how (a `Kind`); None otherwise.
        sugar: For a site to replace, the `SugarReLU` to put there (capped
            for relu6 sites).
        node: For a site to replace on the clone route, the node of the
            model's graph (layer or raw op) the clone rewrites.
        key_path: For `Kind.CONFIG`, the keys leading through the layer's
            config to the activation (see `relu_sites.config_sites`).
        position: For `Kind.SUBLAYER_*`, the sublayer's child indices (see
            `model_graph.sublayer_at`); for the rebuild route's graph
            sites, the node's index in the model's graph.
        held_sugar: Whether the site holds a `SugarReLU` already (it stays
            when the site is left by the filter).
    """

    def __init__(self, path, form, activation, note="", *, kind=None,
                 sugar=None, node=None, key_path=(), position=None,
                 held_sugar=False):
        self.path = path
        self.form = form
        self.activation = activation
        self.note = note
        self.kind = kind
        self.sugar = sugar
        self.node = node
        self.key_path = tuple(key_path)
        self.position = position
        self.held_sugar = held_sugar

    def __repr__(self):
        return f"Site({self.path!r}, {self.form}, {self.activation})"


def _replacing(path, form, target, kind, sugar, held=None, **fields):
    """A `Site` to replace; `held` is the activation it holds now."""
    return Site(path, form, target, _was(held), kind=kind, sugar=sugar,
                held_sugar=isinstance(held, SugarReLU), **fields)


class SugarifyReport:
    """What `sugarify` replaces, leaves alone, and cannot reach.

    Attributes:
        replaced: `Site`s rewritten to SUGAR.
        left_by_filter: `Site`s that would be replaced but that
            `sugarify(..., layers=...)` leaves as they are.
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
        layers: The `layers=` filter as the report prints it, or None.
        changes_forward: True when a non-ReLU target (GELU, SiLU) is
            replaced, so predictions change by the user's choice.
    """

    def __init__(self, activation, targets):
        self.activation = activation
        self.targets = targets
        self.replaced = []
        self.left_by_filter = []
        self.skipped = []
        self.unreachable = []
        self.already_sugar = []
        self.route = "clone"
        self.route_reason = "every layer's config round-trips"
        self.layers = None

    @property
    def changes_forward(self):
        return any(site.activation not in relu_sites.EXACT_FORWARD
                   for site in self.replaced)

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        layers = f"; layers={self.layers}" if self.layers else ""
        lines = [f"sugarify{' dry run, nothing changed' if getattr(self, 'dry_run', False) else ''}: {len(self.replaced)} site(s) -> {self.activation}"
                 f" (targets: {', '.join(self.targets)}{layers})",
                 f"  route: {ROUTES[self.route]} ({self.route_reason})"]
        sections = [("replaced", self.replaced),
                    ("left by the filter", self.left_by_filter),
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

    What changes is data: `report.replaced` holds one `Site` per site to
    replace, each with its `kind`, the `sugar` to put there and where
    (`node`, `key_path`, `position`); `report.route` and
    `report.route_reason` say how and why; the skipped and unreachable
    sites carry their reasons in `note`. Applying it (`keras_sugar.rewrite`)
    builds the new model from these alone.

    Planning builds no model and copies no weights. It rebuilds each custom
    layer (a class from outside Keras) from its config, unweighted, as the
    clone would: whether a config round-trips (which decides the route) is
    known only by trying, and which sublayers such a layer builds from its
    own activation argument (and so are replaced with it, not swapped in
    place) shows only on a copy built with the new one.

    Attributes:
        model: The model to rewrite (never modified).
        activation: The `SugarReLU` to put in.
        targets: The target activation names.
        existing: `"keep"` or `"replace"` the SugarReLUs the model holds.
        report: The `SugarifyReport` the rewrite will return.
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

    @property
    def route(self):
        return self.report.route

    @property
    def sites(self):
        """The `Site`s to replace."""
        return self.report.replaced

    @property
    def kept_sugar(self):
        """How many SugarReLUs the rewritten model holds besides those
        put in: those kept, and those at sites the filter leaves."""
        return len(self.report.already_sugar) + sum(
            site.held_sugar for site in self.report.left_by_filter)

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


def _names_at(layer, indices):
    """The "/"-joined names of the sublayers of `layer` down to `indices`,
    or None where `layer` has no sublayer there."""
    names = []
    for index in indices:
        found = model_graph.children(layer)
        if index >= len(found):
            return None
        layer = found[index]
        names.append(layer.name)
    return "/".join(names)


def _inner_sites(layer, path, form, plan, node=None, handled=()):
    """Lists as replaced the swappable sublayer activations of `layer`, and
    its plain `ReLU` sublayers that one attribute holds (replaced by
    SugarReLU layers), by position (see `patching.SugarPatched`); lists the
    others as not reachable. Returns whether any was found.

    `layer` may be a copy of `node` rebuilt from its config: the sites are
    then named after `node`'s own sublayers at the same positions, as the
    user's model names them (a copy's automatic names, `dense_16`, differ
    from one copy to the next)."""
    targets = plan.targets
    found = False

    def named(indices, names):
        own = _names_at(node, indices) if node is not None else None
        return model_graph.join(path, own or names)

    for indices, names, sublayer in relu_sites.activation_sites(
            layer, lambda function: plan.inner_target(function) is not None):
        found = True
        plan.report.replaced.append(_replacing(
            named(indices, names), form,
            plan.inner_target(sublayer.activation),
            Kind.SUBLAYER_ACTIVATION, plan.activation, sublayer.activation,
            node=node, position=indices))
    swapped = set()
    if "relu" in targets:
        for indices, names, relu in relu_sites.relu_layer_sites(layer):
            found = True
            swapped.add(id(relu))
            plan.report.replaced.append(_replacing(
                named(indices, names), f"{form} (ReLU layer)",
                "relu", Kind.SUBLAYER_RELU_LAYER, plan.activation,
                node=node, position=indices))
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
    return found


_RELU6_HINT = " (targets=('relu', 'relu6') rewrites capped ReLUs too)"


def _was(activation):
    """The note of a site that held a SugarReLU and is replaced."""
    return f"was {activation!r}" if isinstance(activation, SugarReLU) else ""


def _plan_op(op, path, plan):
    target = relu_sites.raw_op_target(op, plan.targets)
    if target:
        plan.report.replaced.append(_replacing(
            path, "raw op", target, Kind.RAW_OP,
            plan.activation_for(target, op), node=op))
    elif relu_sites.is_uncovered_relu_op(op, plan.targets):
        plan.report.skipped.append(Site(
            path, "raw op", "relu",
            f"{type(op).__name__} with a cap, slope or threshold: not a "
            f"plain ReLU, kept exactly{_RELU6_HINT}"))


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
        plan.report.replaced.append(_replacing(
            path, "Lambda layer", target, Kind.LAMBDA,
            plan.activation_for(target), node=layer))
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
            report.replaced.append(_replacing(
                path, "SugarReLU layer", target, Kind.RELU_LAYER,
                plan.activation_for(target, layer.activation),
                layer.activation, node=layer))
            plan.replaced_holders.add((id(layer), "activation"))
        return
    if isinstance(layer, keras.layers.ReLU):
        target = relu_sites.relu_layer_target(layer, plan.targets)
        if target:
            report.replaced.append(_replacing(
                path, "ReLU layer", target, Kind.RELU_LAYER,
                plan.activation_for(target, layer), node=layer))
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
    for key_path, names, owner, key, target in plan.config_sites(layer):
        site_path = (model_graph.join(path, "/".join(names)) if names
                     else path)
        held = getattr(owner, key)
        report.replaced.append(_replacing(
            site_path, _form(owner, key), target, Kind.CONFIG,
            plan.activation_for(target, held), held, node=layer,
            key_path=key_path))
        if isinstance(held, SugarReLU):
            # A recurrent layer's activations are its cell's.
            holder = (owner.cell if isinstance(owner, keras.layers.RNN)
                      else owner)
            plan.replaced_holders.add((id(holder), key))
    if model_graph.is_core_keras(layer):
        return
    # A custom layer is rebuilt from its config when cloned: find the sites
    # on such a rebuilt copy, whose sublayers are the ones the swap sees.
    if _inner_sites(rebuilt[id(layer)], path, "inside custom layer", plan,
                    node=layer):
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


def with_activations(config, entries):
    """A copy of a layer config with each `(key_path, activation)` of
    `entries` (serialized) at its key path (see `relu_sites.config_sites`).
    `config` is not changed (a layer's `get_config()` may hand out a dict
    it holds): the dicts and lists on the way to a key are new, the rest
    is shared.

    Example:

    >>> config = {"layer": {"config": {"activation": "relu", "units": 2}}}
    >>> new = with_activations(
    ...     config, [(("layer", "config", "activation"), "gelu")])
    >>> new["layer"]["config"], config["layer"]["config"]["activation"]
    ({'activation': 'gelu', 'units': 2}, 'relu')
    """
    for key_path, activation in entries:
        config = _with_value(
            config, key_path,
            keras.saving.serialize_keras_object(activation))
    return config


def _with_value(container, key_path, value):
    if not key_path:
        return value
    key, rest = key_path[0], key_path[1:]
    copy = dict(container) if isinstance(container, dict) else list(container)
    copy[key] = _with_value(container[key], rest, value)
    return tuple(copy) if isinstance(container, tuple) else copy


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
                node, lambda config: with_activations(config, entries))
            if reason:
                return node, reason
            rebuilt[id(node)] = copy
    return None


def _graph_site(node, plan):
    """`(kind, target)` for a node of the model's own graph that a copy of
    the graph can replace, or None."""
    if isinstance(node, keras.layers.ReLU):
        target = relu_sites.relu_layer_target(node, plan.targets)
        return (Kind.RELU_LAYER, target) if target else None
    if isinstance(node, keras.layers.Layer):
        return None
    target = relu_sites.raw_op_target(node, plan.targets)
    return (Kind.RAW_OP, target) if target else None


def _plan_rebuild(model, plan):
    """Plans the rebuild route on `model` itself: the copy rebuilt from its
    config when the plan is applied has the same graph and sublayers, at
    the same positions."""
    handled = set()
    for index, node in enumerate(model_graph.nodes(model)):
        site = _graph_site(node, plan)
        if site is None:
            continue
        kind, target = site
        handled.add(id(node))
        form = "ReLU layer" if kind is Kind.RELU_LAYER else "raw op"
        plan.report.replaced.append(_replacing(
            node.name, f"{form} (rebuilt)", target, kind,
            plan.activation_for(target, node), position=index))
    _inner_sites(model, "", "in place (rebuilt)", plan, handled=handled)


def _holder_form(holder, key, inside):
    if inside:
        return "inside custom layer"
    if isinstance(holder, sugar_layers.SugarReLU):
        return "SugarReLU layer"
    return _form(holder, key)


def _existing_sites(walked, plan, rebuilt=False):
    """Lists, as kept, the SugarReLUs of `walked` that the rewrite leaves as
    they are: every one by default; with `existing="replace"` those neither
    replaced through a config or graph node nor swapped inside a custom
    layer (on the rebuild route, `rebuilt`, every sublayer is)."""
    for names, holder, key, activation, within in relu_sites.sugar_holders(
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


def site_filter(layers):
    """`(predicate over a Site, description)` for `sugarify`'s `layers=`.

    Args:
        layers: None (every site), a glob string matched against the whole
            site path with `fnmatch.fnmatchcase` (`"block_3*"`), a compiled
            regular expression matched with `search` anywhere in the path,
            or a callable taking a `Site` and returning a bool.

    Returns:
        `(predicate, description)`, or `(None, None)` for None.

    Raises:
        TypeError: For anything else.

    Example:

    >>> keep, text = site_filter("block_3*")
    >>> keep(Site("block_3_conv/relu", "raw op", "relu")), text
    (True, "'block_3*'")
    """
    if layers is None:
        return None, None
    if isinstance(layers, str):
        return (lambda site: fnmatch.fnmatchcase(site.path, layers),
                repr(layers))
    if isinstance(layers, re.Pattern):
        return (lambda site: layers.search(site.path) is not None,
                f"re.compile({layers.pattern!r})")
    if callable(layers):
        return (lambda site: bool(layers(site)),
                getattr(layers, "__name__", repr(layers)))
    raise TypeError(
        f"sugarify's layers selects the sites to rewrite: a glob string "
        f"over the site paths the report prints (e.g. 'block_3*'), a "
        f"compiled re.Pattern (matched with search), a callable taking a "
        f"Site and returning a bool, or None for every site. Received: "
        f"layers={layers!r}")


def _select(plan, layers):
    """Moves the sites to replace that `layers` leaves out to the report's
    `left_by_filter`; refuses a filter that matches none."""
    keep, description = site_filter(layers)
    if keep is None:
        return
    report = plan.report
    candidates = report.replaced
    report.replaced = [site for site in candidates if keep(site)]
    report.left_by_filter = [site for site in candidates if not keep(site)]
    report.layers = description
    if not report.replaced:
        shown = ", ".join(repr(site.path) for site in candidates[:5])
        more = (f" (and {len(candidates) - 5} more)" if len(candidates) > 5
                else "")
        raise ValueError(
            f"sugarify's layers={description} matches none of the "
            f"{len(candidates)} site(s) it could replace"
            f"{': ' + shown + more if candidates else ''}. Received: "
            f"layers={layers!r}")


def plan(model, activation, targets, existing="keep", layers=None):
    """Plans the rewrite of `model`'s `targets` to `activation`.

    Args:
        model: A functional or `Sequential` model (checked by the caller).
        activation: The `SugarReLU` to put in.
        targets: Tuple of target names (checked by the caller).
        existing: What to do with the SugarReLUs `model` holds already, one
            of `EXISTING` (checked by the caller). Defaults to `"keep"`.
        layers: Which sites to replace (see `site_filter`). Defaults to
            None, every site.

    Returns:
        A `Plan`; `plan.report` says what will change and by which route.
    """
    site_filter(layers)  # Its type is refused before any work.
    result = Plan(model, activation, targets, existing)
    rebuilt = {}
    failure = _rebuild_custom_layers(model, result, rebuilt, set())
    paths = model_graph.node_paths(model)
    if failure is None:
        _plan_clone(model, result, paths, rebuilt, set())
        _existing_sites(model, result)
        _select(result, layers)
        return result
    layer, reason = failure
    result.report.route = "rebuild"
    result.report.route_reason = (
        f"layer '{paths.get(id(layer), layer.name)}' "
        f"({type(layer).__name__}) does not round-trip through its config, "
        f"so a layer-by-layer clone would not reload: {reason}")
    _plan_rebuild(model, result)
    # Every sublayer of the rebuilt model is swapped in place.
    _existing_sites(model, result, rebuilt=True)
    _select(result, layers)
    return result

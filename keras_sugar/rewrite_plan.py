"""The plan of a `sugarify` rewrite: which sites change, by which route, why.

Planning reads the model's site map (`keras_sugar.site_map`) and builds no
model: it decides, site by site, whether the site is replaced (and with
which `SugarReLU`), left by the `layers=` filter, kept (SugarReLUs already
there), left unchanged (capped or leaky ReLUs that are not targets) or not
reachable, and chooses the `Route`:

- `Route.CLONE`: `keras.models.clone_model`, layer by layer (the usual
  route).
- `Route.REBUILD`: when a layer's config does not round-trip (Keras cannot
  rebuild it from `get_config()`), a layer-by-layer clone would not reload;
  the model is rebuilt from its own config instead, its sublayers'
  activations are set in place, and its own graph's raw ops and ReLU
  layers are replaced in a copy of the graph that shares every other layer
  (`SugarPatched` saves the model's own config and redoes both on load).

The report (`SugarifyReport`) is made from the decisions at the end.
`sugarify(..., dry_run=True)` returns it and stops here.
"""

import dataclasses
import enum
import fnmatch
import re
from typing import Any

from keras_sugar import activation_kinds as kinds
from keras_sugar import site_map
from keras_sugar import site_records
from keras_sugar.activations import SugarReLU
from keras_sugar.report_rows import Change
from keras_sugar.report_rows import format_rows


class Route(str, enum.Enum):
    """How the rewrite builds the new model (see the module docstring)."""

    CLONE = "clone"
    REBUILD = "rebuild"


ROUTES = {
    Route.CLONE: "cloned layer by layer",
    Route.REBUILD: "rebuilt from the model's own config, activations set in "
                   "place, graph copied sharing its layers",
}


class SugarifyReport:
    """What `sugarify` replaces, leaves alone, and cannot reach.

    Attributes:
        replaced: `Change`s of the sites rewritten to SUGAR.
        left_by_filter: `Change`s of the sites that would be replaced but
            that `sugarify(..., layers=...)` leaves as they are.
        skipped: `Change`s of the sites seen but deliberately left
            unchanged (e.g. `ReLU(max_value=6)`), with the reason.
        unreachable: `Change`s of the sites that may hold a target the
            rewrite cannot reach (e.g. `ops.relu` in a custom layer's
            `call`), with the reason.
        already_sugar: `Change`s of the sites that held a `SugarReLU`
            already and keep it (the default, `existing="keep"`). With
            `existing="replace"` they are in `replaced` instead, noting
            what they held.
        route: `Route.CLONE` or `Route.REBUILD` (a `str`: `"clone"` or
            `"rebuild"`).
        route_reason: Why the route was chosen.
        layers: The `layers=` filter as the report prints it, or None.
        dry_run: Whether this is the report of a dry run (nothing built).
        changes_forward: True when a non-ReLU target (GELU, SiLU) is
            replaced, so predictions change by the user's choice.
    """

    def __init__(self, activation, targets, route, route_reason, *,
                 replaced=(), left_by_filter=(), already_sugar=(),
                 skipped=(), unreachable=(), layers=None, dry_run=False):
        self.activation = activation
        self.targets = targets
        self.route = route
        self.route_reason = route_reason
        self.replaced = list(replaced)
        self.left_by_filter = list(left_by_filter)
        self.already_sugar = list(already_sugar)
        self.skipped = list(skipped)
        self.unreachable = list(unreachable)
        self.layers = layers
        self.dry_run = dry_run

    @property
    def changes_forward(self):
        return any(change.activation not in kinds.RECTIFIED
                   for change in self.replaced)

    def __len__(self):
        return len(self.replaced)

    def __str__(self):
        layers = f"; layers={self.layers}" if self.layers else ""
        head = ("sugarify dry run (nothing was changed): "
                f"{len(self.replaced)} site(s) would be replaced"
                if self.dry_run else
                f"sugarify: {len(self.replaced)} site(s)")
        lines = [f"{head} -> {self.activation} (targets: "
                 f"{', '.join(self.targets)}{layers})",
                 f"  route: {ROUTES[self.route]} ({self.route_reason})"]
        sections = [("replaced", self.replaced),
                    ("left by the filter", self.left_by_filter),
                    ("already SUGAR (kept)", self.already_sugar),
                    ("left unchanged", self.skipped),
                    ("NOT reachable", self.unreachable)]
        for title, changes in sections:
            if changes:
                lines.append(f"  {title}: {len(changes)}")
                lines += format_rows(changes)
        if self.changes_forward:
            lines.append("  note: non-ReLU targets were replaced, so the "
                         "forward pass (predictions) changes.")
        if not self.replaced:
            lines.append("  nothing to replace: the model has no reachable "
                         f"{'/'.join(self.targets)} activation sites.")
        return "\n".join(lines)

    __repr__ = __str__


@dataclasses.dataclass(frozen=True)
class Plan:
    """A rewrite decided but not applied.

    What changes is data: `changes` holds one `Change` per site to
    replace, each with the `sugar` to put there, and `kept_patches` the
    sites whose SugarReLU a `SugarPatched` put there and which stay.
    Applying it (`keras_sugar.rewrite`) builds the new model from these
    alone.

    Attributes:
        model: The model to rewrite (never modified).
        map: Its `site_records.SiteMap`.
        activation: The `SugarReLU` to put in.
        route: The `Route`.
        report: The `SugarifyReport` the rewrite returns.
    """

    model: Any
    map: Any
    activation: Any
    route: Route
    report: SugarifyReport

    @property
    def changes(self):
        return self.report.replaced

    @property
    def kept_patches(self):
        """The `Change`s (with their own SugarReLU) of the sites whose
        SugarReLU a `SugarPatched` the rewrite rebuilds without its
        patches put there, and which stay: on the rebuild route the
        wrapper of the whole model, on the clone route the node itself
        (a `SugarPatched` left as it is keeps its own)."""
        def rebuilt(change):
            owner = change.site.patched_by
            if self.route is Route.REBUILD:
                return owner is not None and owner is self.map.wrapper
            return owner is not None and owner is getattr(
                change.site.replace, "node", None)

        return [dataclasses.replace(change, sugar=change.site.sugar)
                for change in self.report.already_sugar
                + self.report.left_by_filter if rebuilt(change)]

    @property
    def expected_sugar(self):
        """`(path, SugarReLU)` of every site that holds one after the
        rewrite, sorted."""
        held = [(c.path, c.sugar) for c in self.changes] + [
            (c.path, c.site.sugar) for c in self.report.already_sugar
            + self.report.left_by_filter if c.site.sugar is not None]
        return sorted(held, key=lambda pair: (pair[0], repr(pair[1])))


_RELU6_HINT = " (targets=('relu', 'relu6') rewrites capped ReLUs too)"


def sugar_for(activation, site):
    """The `SugarReLU` that replaces `site`: `activation`, with the site's
    cap for capped ones."""
    if site.activation != "relu6":
        return activation
    return SugarReLU.from_config({**activation.get_config(),
                                  "max_value": site.cap})


def _not_reachable_on(route, site):
    """Why `route` cannot replace a site the map can, or ""."""
    replace = site.replace
    if isinstance(replace, site_records.Unreachable):
        return replace.reason
    if (route is Route.REBUILD and isinstance(replace, site_records.SwapNode)
            and len(replace.index) > 1):
        return ("a node of a nested model's graph: the rebuild route "
                "replaces the nodes of the model's own graph only")
    return ""


def _form(route, site):
    if route is Route.CLONE:
        return site.form
    if isinstance(site.replace, site_records.SwapNode):
        return f"{site.form} (rebuilt)"
    return "in place (rebuilt)"


def _skip_note(site):
    hint = _RELU6_HINT if site.activation == "relu6" else ""
    return f"a cap, slope or threshold: not a plain ReLU, kept exactly{hint}"


EXISTING = ("keep", "replace")


def site_filter(layers):
    """`(predicate over a Site, description)` for `sugarify`'s `layers=`.

    Args:
        layers: None (every site), a glob string matched against the whole
            site path with `fnmatch.fnmatchcase` (`"block_3*"`), a
            compiled regular expression matched with `search` anywhere in
            the path, or a callable taking a `site_records.Site` and returning
            a bool.

    Returns:
        `(predicate, description)`, or `(None, None)` for None.

    Raises:
        TypeError: For anything else.

    Example:

    >>> keep, text = site_filter("block_3*")
    >>> keep(site_records.Site("block_3_conv/relu", "raw op", "relu", None,
    ...                    None, None, None)), text
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


def _select(candidates, layers):
    """`(replaced, left_by_filter, description)`; refuses a filter that
    matches none of the candidates."""
    keep, description = site_filter(layers)
    if keep is None:
        return candidates, [], None
    replaced = [change for change in candidates if keep(change.site)]
    left = [dataclasses.replace(change, sugar=None) for change in candidates
            if not keep(change.site)]
    if not replaced:
        shown = ", ".join(repr(change.path) for change in candidates[:5])
        more = (f" (and {len(candidates) - 5} more)" if len(candidates) > 5
                else "")
        raise ValueError(
            f"sugarify's layers={description} matches none of the "
            f"{len(candidates)} site(s) it could replace"
            f"{': ' + shown + more if candidates else ''}. Received: "
            f"layers={layers!r}")
    return replaced, left, description


def plan(model, activation, targets, existing="keep", layers=None,
         dry_run=False):
    """Plans the rewrite of `model`'s `targets` to `activation`.

    Args:
        model: A functional or `Sequential` model (checked by the caller).
        activation: The `SugarReLU` to put in.
        targets: Tuple of target names (checked by the caller).
        existing: What to do with the SugarReLUs `model` holds already, one
            of `EXISTING` (checked by the caller). Defaults to `"keep"`.
        layers: Which sites to replace (see `site_filter`). Defaults to
            None, every site.
        dry_run: Whether the report is a dry run's. Defaults to `False`.

    Returns:
        A `Plan`; `plan.report` says what will change and by which route.
    """
    site_filter(layers)  # Its type is refused before any work.
    the_map = site_map.read(model)
    failure = the_map.round_trip_failure
    if failure is None:
        route, reason = Route.CLONE, "every layer's config round-trips"
    else:
        path, layer, why = failure
        route = Route.REBUILD
        reason = (f"layer '{path}' ({type(layer).__name__}) does not "
                  f"round-trip through its config, so a layer-by-layer "
                  f"clone would not reload: {why}")
    candidates, kept, skipped, unreachable = [], [], [], []
    for site in the_map.sites:
        form = _form(route, site)
        why = _not_reachable_on(route, site)
        if site.sugar is not None:
            if existing == "replace" and not why:
                candidates.append(Change(site, form, f"was {site.sugar!r}",
                                         sugar_for(activation, site)))
            else:
                kept.append(Change(site, form, f"{site.sugar!r}, kept"))
        elif site.activation in targets:
            if why:
                unreachable.append(Change(site, site.form, why))
            else:
                candidates.append(Change(site, form,
                                         sugar=sugar_for(activation, site)))
        elif "relu" in targets and not why and site.activation in (
                "relu6", kinds.RELU_VARIANT):
            skipped.append(Change(site, site.form, _skip_note(site)))
    replaced, left, description = _select(candidates, layers)
    report = SugarifyReport(
        repr(activation), targets, route, reason, replaced=replaced,
        left_by_filter=left, already_sugar=kept, skipped=skipped,
        unreachable=unreachable, layers=description, dry_run=dry_run)
    return Plan(model, the_map, activation, route, report)

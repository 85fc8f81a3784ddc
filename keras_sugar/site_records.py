"""The records of a site map (`keras_sugar.site_map`): what a site is.

A `Site` says where an activation is (its path), what it computes, how
it can be replaced (a `SwapNode`, `EditConfig`, `PatchSublayer` or
`Unreachable`: one record per kind, each with what that kind needs) and
how its rectified output can be observed (a `NodeOutput`,
`CallOutputs` or `Unobservable`). A `SiteMap` is every site of a model.
"""

import dataclasses
from typing import Any

from keras_sugar import activation_kinds as kinds


# How a site is replaced: one record per kind.

@dataclasses.dataclass(frozen=True)
class SwapNode:
    """The graph node itself computes the activation (a raw op; a `ReLU`,
    SugarReLU or `Lambda` layer): the node is replaced by a new layer.

    Attributes:
        node: The node, in the walked model.
        index: Node indices through the graphs from the walked model's
            (see `patching.node_at`).
    """

    node: Any
    index: tuple


@dataclasses.dataclass(frozen=True)
class EditConfig:
    """The activation is at `key_path` in the node's config (an inline
    activation, a wrapped layer's or a recurrent cell's, a custom layer's
    own argument): the node is rebuilt from its config with another one
    there.

    Attributes:
        node: The node, in the walked model.
        key_path: The keys leading through the node's config to it (e.g.
            `("layer", "config", "activation")` for `TimeDistributed`).
        index: As `SwapNode.index`.
        holders: `(position, attribute)` of every (sub)layer of the node
            that holds it as the model runs (position as in
            `model_graph.sublayer_at`, `()` for the node itself): where it
            is set in place on `sugarify`'s rebuild route.
    """

    node: Any
    key_path: tuple
    index: tuple
    holders: tuple


@dataclasses.dataclass(frozen=True)
class PatchSublayer:
    """In a layer that builds its sublayers itself (a custom layer, a
    Backbone): the `activation` of its sublayer at `position` is set in
    place, or its `ReLU` sublayer there (`relu_layer`), held by one
    attribute of its parent, is replaced, by `patching.SugarPatched`.

    Attributes:
        node: The node, in the walked model.
        position: Child indices in the layer (in the layer a
            `SugarPatched` wraps).
        relu_layer: Whether the sublayer is a `ReLU` layer to replace.
        index: As `SwapNode.index`.
    """

    node: Any
    position: tuple
    relu_layer: bool
    index: tuple


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """No rewrite can reach the site (`relu` called in Python code, a
    `ReLU` sublayer held in a list): why, and what to do."""

    reason: str


# How a site's rectified output is observed: one record per kind.

@dataclasses.dataclass(frozen=True)
class NodeOutput:
    """The output of a node of a graph (at each of its calls) is the
    site's output: read from the graph.

    Attributes:
        graph: The functional (or `Sequential`) graph holding the node: the
            walked model, a model nested in it, or the graph copy a
            `SugarPatched` runs.
        node: The node.
    """

    graph: Any
    node: Any


@dataclasses.dataclass(frozen=True)
class CallOutputs:
    """The outputs of these layers' calls, made inside another layer's own
    `call`, are the site's output: recorded as the model runs eagerly."""

    layers: tuple


@dataclasses.dataclass(frozen=True)
class Unobservable:
    """The site's output cannot be read: why."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Site:
    """One place in a model where an activation lives.

    Attributes:
        path: Layer path (see the module docstring), as reports print it
            and as `sugarify(..., layers=...)` matches it.
        form: How the activation appears, e.g. `"ReLU layer"`, `"raw op"`,
            `"inline (Dense)"`, `"inside custom layer"`.
        activation: What it computes forward: `"relu"`, `"relu6"` (any
            capped ReLU), `"gelu"`, `"silu"` (see
            `activation_kinds.TARGETS`), or `activation_kinds.RELU_VARIANT`
            (a ReLU with a slope or a threshold). A SugarReLU computes
            `"relu"`, or `"relu6"` when capped.
        sugar: The `SugarReLU` there, or None.
        cap: A capped ReLU's cap (6.0 for relu6), else None.
        replace: How it is replaced: `SwapNode`, `EditConfig`,
            `PatchSublayer`, or `Unreachable`.
        observe: How its output is read: `NodeOutput`, `CallOutputs`, or
            `Unobservable`.
        patched_by: The `SugarPatched` whose patch put its SugarReLU
            there (the SugarReLU goes when the patch goes), or None.
    """

    path: str
    form: str
    activation: str
    sugar: Any
    cap: Any
    replace: Any
    observe: Any
    patched_by: Any = None

    @property
    def rectified(self):
        """Whether its output is zero wherever its input is not positive
        (ReLU and capped ReLU, SugarReLU's too)."""
        return self.activation in kinds.RECTIFIED

    @property
    def patched(self):
        return self.patched_by is not None

    @property
    def reachable(self):
        return not isinstance(self.replace, Unreachable)

    def __repr__(self):
        return f"Site({self.path!r}, {self.form}, {self.activation})"


@dataclasses.dataclass(frozen=True)
class SiteMap:
    """Every activation site of a model, from one walk.

    Attributes:
        model: The model walked.
        sites: The `Site`s, in graph order.
        round_trip_failure: `(path, layer, reason)` for the first layer
            whose config does not round-trip (so `sugarify` must rebuild
            the model from its own config), or None.
        wrapper: The `SugarPatched` wrapping the whole model's graph (a
            model `sugarify` rewrote through its rebuild route), whose
            graph the `index` of each site counts in; or None.
    """

    model: Any
    sites: tuple
    round_trip_failure: Any
    wrapper: Any

    @property
    def sugar_sites(self):
        return [site for site in self.sites if site.sugar is not None]

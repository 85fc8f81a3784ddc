"""The built-in surrogates' names, and how a name is matched, without Keras:
the `keras-sugar` command checks a surrogate's name before Keras starts.
`surrogates` registers the built-ins under these names (a test checks
that both agree).
"""

import sys

# Canonical name -> other names it is known by.
BUILTIN_ALIASES = {
    "bsilu": ("b_silu",), "elu": (), "gelu": (), "leaky_relu": (),
    "mish": (), "nelu": (), "selu": (), "silu": ("swish",),
}


def key(name):
    """Names are case-, dash-, underscore- and space-insensitive.

    Example:

    >>> key("B-SiLU") == key("bsilu")
    True
    """
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


def canonical(name):
    """The canonical name of surrogate `name`: from the registry where it
    is loaded (with the user's own surrogates), else among the built-ins.

    Example:

    >>> canonical("Swish")
    'silu'

    Raises:
        ValueError: naming `name` and listing the valid names.
    """
    registry = sys.modules.get("keras_sugar.surrogates")
    if registry is not None:
        return registry.get(name).name
    known = {key(alias): canonical_name
             for canonical_name, aliases in BUILTIN_ALIASES.items()
             for alias in (canonical_name, *aliases)}
    if not isinstance(name, str) or key(name) not in known:
        raise ValueError(
            f"Unknown surrogate '{name}'. Valid names: "
            f"{sorted(BUILTIN_ALIASES)} (or an alias: "
            f"{', '.join(a for v in BUILTIN_ALIASES.values() for a in v)}).")
    return known[key(name)]

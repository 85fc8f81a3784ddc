"""Small reference architectures for benchmarks and comparisons.

Each builder takes the activation to use everywhere a ReLU would be, as a
Keras activation (`"relu"`, `"gelu"`, a `SugarReLU`, ...), and works on 1-D
signals (`(length, channels)`, e.g. mnist1d) and images (`(h, w, c)`).
No batch normalization: the paper's setting, where dead ReLUs matter.

A new architecture is one function added to `BUILDERS`: the command line
lists it, with its keyword arguments and their defaults, from there. Keras
is imported inside each builder so that listing them (`--help`) starts no
backend.
"""

import inspect

# Paper's VGG-16 convolution layout; "M" is a 2x max-pool.
VGG_LAYOUTS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512,
              "M", 512, 512, 512, "M"],
}


def _conv_and_pool(input_shape):
    import keras

    if len(input_shape) == 2:
        return keras.layers.Conv1D, keras.layers.MaxPooling1D
    if len(input_shape) == 3:
        return keras.layers.Conv2D, keras.layers.MaxPooling2D
    raise ValueError(
        f"Convolutional models take (length, channels) or (height, width, "
        f"channels) inputs. Received: input_shape={input_shape}"
    )


def _scaled(filters, width):
    return max(1, int(round(filters * width)))


def vgg(input_shape, num_classes, activation="relu", layout="vgg16",
        width=0.125, dense_units=512, name=None):
    """A VGG-style plain CNN without batch normalization.

    Args:
        input_shape: `(length, channels)` or `(height, width, channels)`.
        num_classes: Number of output logits.
        activation: Activation after every convolution and hidden dense
            layer. Defaults to `"relu"`.
        layout: A key of `VGG_LAYOUTS`, or a list of filter counts and
            `"M"` (max-pool). Pools that would shrink a side below 1 are
            skipped, so deep layouts work on small inputs. Defaults to
            `"vgg16"`.
        width: Multiplier on every filter count: 1.0 is the paper's
            network, the default fits a CPU. Defaults to `0.125`.
        dense_units: Units of the hidden dense layer (scaled by `width`).
            Defaults to `512`.
        name: Model name. Defaults to the layout name.

    Returns:
        An uncompiled functional `keras.Model` producing logits.

    Example:

    >>> model = vgg((40, 1), 10, layout=[8, "M", 16], width=1.0)
    >>> model.output_shape
    (None, 10)
    """
    import keras

    conv, pool = _conv_and_pool(input_shape)
    check("vgg", {"layout": layout, "width": width})
    if isinstance(layout, str):
        name = name or layout
        layout = VGG_LAYOUTS[layout]
    inputs = keras.Input(input_shape)
    x = inputs
    spatial = list(input_shape[:-1])
    for item in layout:
        if item == "M":
            if min(spatial) >= 2:
                x = pool(2)(x)
                spatial = [s // 2 for s in spatial]
            continue
        x = conv(_scaled(item, width), 3, padding="same",
                 activation=activation)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(_scaled(dense_units, width),
                           activation=activation)(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name=name or "vgg")


def resnet(input_shape, num_classes, activation="relu", stages=(16, 32, 64),
           blocks_per_stage=2, width=1.0, name="resnet"):
    """A small ResNet (basic blocks, no batch normalization).

    Each block is `conv-act-conv + shortcut, act`; the first block of every
    stage after the first halves the resolution.

    Args:
        input_shape: `(length, channels)` or `(height, width, channels)`.
        num_classes: Number of output logits.
        activation: Activation inside and after every block. Defaults to
            `"relu"`.
        stages: Filters per stage. Defaults to `(16, 32, 64)`.
        blocks_per_stage: Basic blocks per stage. Defaults to `2`.
        width: Multiplier on every filter count. Defaults to `1.0`.
        name: Model name. Defaults to `"resnet"`.

    Returns:
        An uncompiled functional `keras.Model` producing logits.

    Example:

    >>> resnet((8, 8, 1), 10, stages=(4, 8)).output_shape
    (None, 10)
    """
    import keras

    conv, _ = _conv_and_pool(input_shape)
    pool = (keras.layers.GlobalAveragePooling1D if len(input_shape) == 2
            else keras.layers.GlobalAveragePooling2D)
    inputs = keras.Input(input_shape)
    x = conv(_scaled(stages[0], width), 3, padding="same",
             activation=activation)(inputs)
    for stage, filters in enumerate(stages):
        filters = _scaled(filters, width)
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = conv(filters, 1, strides=strides)(shortcut)
            y = conv(filters, 3, strides=strides, padding="same",
                     activation=activation)(x)
            y = conv(filters, 3, padding="same")(y)
            x = keras.layers.Activation(activation)(
                keras.layers.Add()([y, shortcut]))
    x = pool()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)


def mlp(input_shape, num_classes, activation="relu", depth=4, units=256,
        name="mlp"):
    """A plain multi-layer perceptron.

    Args:
        input_shape: Any shape; inputs are flattened.
        num_classes: Number of output logits.
        activation: Activation of every hidden layer. Defaults to `"relu"`.
        depth: Number of hidden layers. Defaults to `4`.
        units: Units per hidden layer. Defaults to `256`.
        name: Model name. Defaults to `"mlp"`.

    Returns:
        An uncompiled functional `keras.Model` producing logits.

    Example:

    >>> mlp((64,), 10, depth=2, units=32).count_params()
    3466
    """
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(depth):
        x = keras.layers.Dense(units, activation=activation)(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)


def transformer(input_shape, num_classes, activation="gelu", num_layers=2,
                hidden_dim=32, num_heads=4, intermediate_dim=64,
                name="transformer"):
    """A small pre-norm transformer encoder over a sequence.

    A 1-D signal `(length, channels)` (e.g. mnist1d) is read as `length`
    tokens; an image `(h, w, c)` as `h * w` tokens of its pixels. Tokens
    are projected to `hidden_dim`, given sinusoidal positions, and passed
    through `num_layers` blocks of self-attention and a feed-forward
    network `Dense(intermediate_dim, activation) -> Dense(hidden_dim)`,
    each with a residual connection; the mean over tokens feeds the
    classifier. `activation` is the feed-forward activation: GELU as in
    BERT and ViT by default, or SUGAR (the paper's advice for GELU
    networks is `SugarReLU("nelu", alpha=0.01)`).

    Args:
        input_shape: `(length, channels)` or `(height, width, channels)`.
        num_classes: Number of output logits.
        activation: Feed-forward activation. Defaults to `"gelu"`.
        num_layers: Encoder blocks. Defaults to `2`.
        hidden_dim: Token width. Defaults to `32`.
        num_heads: Attention heads. Defaults to `4`.
        intermediate_dim: Feed-forward width. Defaults to `64`.
        name: Model name. Defaults to `"transformer"`.

    Returns:
        An uncompiled functional `keras.Model` producing logits.

    Example:

    >>> transformer((40, 1), 10, num_layers=1).output_shape
    (None, 10)
    """
    import keras
    import numpy as np

    if len(input_shape) not in (2, 3):
        raise ValueError(
            f"The transformer takes (length, channels) or (height, width, "
            f"channels) inputs. Received: input_shape={input_shape}")
    length = int(np.prod(input_shape[:-1]))
    L = keras.layers
    inputs = keras.Input(input_shape)
    x = L.Reshape((length, input_shape[-1]))(inputs)
    x = L.Dense(hidden_dim, name="token_projection")(x)
    x = x + _sinusoidal_positions(length, hidden_dim)
    for i in range(num_layers):
        y = L.LayerNormalization(epsilon=1e-6)(x)
        y = L.MultiHeadAttention(num_heads, hidden_dim // num_heads)(y, y)
        x = L.Add()([x, y])
        y = L.LayerNormalization(epsilon=1e-6)(x)
        y = L.Dense(intermediate_dim, activation=activation,
                    name=f"block_{i}_feedforward")(y)
        y = L.Dense(hidden_dim)(y)
        x = L.Add()([x, y])
    x = L.LayerNormalization(epsilon=1e-6)(x)
    x = L.GlobalAveragePooling1D()(x)
    outputs = L.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name=name)


def _sinusoidal_positions(length, dim):
    """The fixed sine/cosine position code of "Attention is all you need",
    shape `(length, dim)`, float32."""
    import numpy as np

    positions = np.arange(length)[:, None]
    rates = 1.0 / 10000 ** (2 * (np.arange(dim) // 2) / dim)
    angles = positions * rates[None, :]
    code = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
    return code.astype("float32")


BUILDERS = {"vgg": vgg, "resnet": resnet, "mlp": mlp,
            "transformer": transformer}


def builder_defaults(name):
    """The keyword arguments of builder `name` and their defaults (the
    first three parameters, input shape, classes and activation, are set by
    the caller).

    Example:

    >>> builder_defaults("mlp")
    {'depth': 4, 'units': 256, 'name': 'mlp'}
    """
    parameters = list(inspect.signature(BUILDERS[name]).parameters.values())
    return {p.name: p.default for p in parameters[3:]}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What a builder keyword takes, from its default's type (`layout` also
# takes a list of filters and "M").
_KINDS = {
    int: (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    float: (lambda v: _is_number(v) and v > 0, "a number > 0"),
    str: (lambda v: isinstance(v, str), "a string"),
    tuple: (lambda v: isinstance(v, (tuple, list)) and len(v) >= 1
            and all(_is_int(x) and x >= 1 for x in v),
            "a list of integers >= 1"),
}
_LAYOUT = (lambda v: isinstance(v, str) or isinstance(v, (tuple, list))
           and all(x == "M" or _is_int(x) and x >= 1 for x in v),
           "a layout name or a list like [64, 'M', 128]")


def _keyword_kind(key, default):
    """`(predicate, description)` of what keyword `key` takes."""
    if key == "layout":
        return _LAYOUT
    return _KINDS[str if default is None else type(default)]


def check(name, kwargs):
    """Fails on an unknown builder or keyword, a keyword of another type
    than its default's (or not positive), or a VGG layout name that does
    not exist, before anything is built.

    Example:

    >>> check("mlp", {"units": 64})
    >>> check("mlp", {"width": 2.0})
    Traceback (most recent call last):
    ...
    ValueError: Unknown keyword(s) ['width'] for model 'mlp'. Its keywords and defaults: {'depth': 4, 'units': 256, 'name': 'mlp'}.
    >>> check("mlp", {"depth": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: model 'mlp' takes depth as an integer >= 1 (default 4). Received: depth=1.5
    """
    if name not in BUILDERS:
        raise ValueError(f"Unknown model '{name}'. Valid choices: "
                         f"{sorted(BUILDERS)}.")
    known = builder_defaults(name)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(f"Unknown keyword(s) {unknown} for model "
                         f"'{name}'. Its keywords and defaults: {known}.")
    for key, value in kwargs.items():
        kind, description = _keyword_kind(key, known[key])
        if not kind(value):
            raise ValueError(
                f"model '{name}' takes {key} as {description} (default "
                f"{known[key]!r}). Received: {key}={value!r}")
    layout = kwargs.get("layout")
    if isinstance(layout, str) and layout not in VGG_LAYOUTS:
        raise ValueError(
            f"Unknown VGG layout '{layout}'. Valid layouts: "
            f"{sorted(VGG_LAYOUTS)} or a list like [64, 'M', 128].")

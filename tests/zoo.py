"""Models to rewrite: every form an activation takes, and real backbones
built from config (weights=None, no downloads, small inputs)."""

import keras
from keras import ops


IMAGE = (32, 32, 3)


def relu_sites(model, targets=("relu",)):
    """Counts target activation sites independently of `sugarify`."""
    functions = {"relu": [keras.activations.relu, ops.relu],
                 "gelu": [keras.activations.gelu, ops.gelu],
                 "silu": [keras.activations.silu, ops.silu],
                 "relu6": [keras.activations.relu6, ops.relu6]}
    wanted = [f for t in targets for f in functions[t]]
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        # A recurrent layer's activations are its cell's (counted there).
        keys = () if isinstance(layer, keras.layers.RNN) else (
            "activation", "recurrent_activation")
        for key in keys:
            if any(getattr(layer, key, None) is f for f in wanted):
                count += 1
        if isinstance(layer, keras.layers.Lambda) and any(
                layer.function is f for f in wanted):
            count += 1
        if (isinstance(layer, keras.layers.ReLU) and "relu" in targets
                and layer.max_value is None and not layer.negative_slope
                and not layer.threshold):
            count += 1
        if (isinstance(layer, keras.layers.ReLU) and "relu6" in targets
                and layer.max_value is not None
                and not layer.negative_slope and not layer.threshold):
            count += 1
    for op in getattr(model, "operations", []):
        if isinstance(op, keras.layers.Layer):
            if hasattr(op, "operations") and op is not model:
                count += sum(1 for o in op.operations
                             if _is_target_op(o, targets))
            continue
        count += _is_target_op(op, targets)
    return count


def _is_target_op(op, targets):
    name = type(op).__name__
    if isinstance(op, keras.layers.Layer):
        return False
    if name == "ReLU":
        plain = not (op.negative_slope or op.threshold)
        return plain and ("relu" in targets and op.max_value is None
                          or "relu6" in targets and op.max_value is not None)
    return (name == "Relu" and "relu" in targets
            or name == "Relu6" and "relu6" in targets
            or name == "Gelu" and "gelu" in targets)


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class Block(keras.layers.Layer):
    """A custom block that builds its sublayers from its arguments."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(units)

    def call(self, x):
        return self.out(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class ReluLayerBlock(keras.layers.Layer):
    """A custom block holding a plain `ReLU` layer it builds itself (as
    keras_hub MobileNet's `DepthwiseConvBlock`), and one in a list."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)
        self.act = keras.layers.ReLU()
        self.in_list = [keras.layers.ReLU()]

    def call(self, x):
        return self.in_list[0](self.act(self.dense(x)) - 0.1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class SugarBlock(keras.layers.Layer):
    """A custom block whose author placed SugarReLUs in it by hand: an ELU
    one and a capped one (ReLU6)."""

    def __init__(self, units=8, **kwargs):
        # Imported here: the zoo's other layers load without keras_sugar.
        from keras_sugar import SugarReLU

        super().__init__(**kwargs)
        self.units = units
        self.inner = keras.layers.Dense(
            units, activation=SugarReLU("elu"), name="inner")
        self.capped = keras.layers.Dense(
            units, activation=SugarReLU("elu", max_value=6.0),
            name="capped")

    def call(self, x):
        return self.capped(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class HeldConfigBlock(keras.layers.Layer):
    """Hands out the config dict it holds from `get_config()`, as some
    third-party layers do: editing a config in place would change it."""

    def __init__(self, units=8, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(units)
        self.activation = keras.activations.get(activation)
        self.held_config = {**super().get_config(), "units": units,
                            "activation": activation}

    def call(self, x):
        return self.activation(self.inner(x))

    def get_config(self):
        return self.held_config


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class OpaqueBlock(keras.layers.Layer):
    """A custom layer that calls relu inside call(): unreachable."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 8))

    def call(self, x):
        return ops.relu(ops.matmul(x, self.kernel))


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class LeakyBlock(keras.layers.Layer):
    """A custom layer whose call() uses leaky_relu and relu6, not relu."""

    def call(self, x):
        return ops.relu6(ops.leaky_relu(x))


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class HelperBlock(keras.layers.Layer):
    """Returns a sublayer object from get_config() that its __init__ cannot
    take back, as keras_cv's SqueezeAndExcite2D does: its config does not
    round-trip."""

    def __init__(self, units=8, helper=None, **kwargs):
        super().__init__(**kwargs)
        if helper is not None and not isinstance(helper, keras.layers.Layer):
            raise TypeError(f"helper must be a layer, not "
                            f"{type(helper).__name__}")
        self.units = units
        self.helper = helper or keras.layers.Dense(units)

    def call(self, x):
        return self.helper(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "helper": self.helper}


@keras.saving.register_keras_serializable(package="keras_sugar_tests")
class TinyBackbone(keras.Model):
    """A functional model rebuilt from its constructor arguments (like
    keras_cv and keras_hub Backbones) holding a HelperBlock."""

    def __init__(self, units=8, **kwargs):
        inputs = keras.Input((4,))
        x = keras.layers.Dense(units, activation="relu",
                               name="dense_relu")(inputs)
        x = HelperBlock(units, name="helper_block")(x)
        x = ops.relu(x)
        outputs = keras.layers.Dense(2, name="head")(x)
        super().__init__(inputs, outputs, **kwargs)
        self.units = units

    def get_config(self):
        return {"units": self.units, "name": self.name,
                "trainable": self.trainable}


class Subclassed(keras.Model):
    """A subclassed model: no layer graph to rewrite or probe."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2, activation="relu")

    def call(self, x):
        return self.dense(x)


def every_form():
    """Inline, Activation, ReLU layer, relu6, raw op, nested Sequential,
    shared layer and a custom block, in one functional model."""
    inner = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(8, activation="relu", name="inner_dense"),
        keras.layers.ReLU(name="inner_relu"),
    ], name="inner")
    shared = keras.layers.Dense(8, activation="relu", name="shared")
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, name="first")(inputs)
    x = ops.relu(x)
    x = keras.activations.relu(x)
    x = inner(x)
    x = shared(x)
    x = keras.layers.Activation("relu", name="act")(x)
    x = shared(x)
    x = keras.layers.ReLU(max_value=6.0, name="relu6")(x)
    x = Block(8, name="block")(x)
    x = keras.layers.Dense(8, activation="gelu", name="gelu_dense")(x)
    x = OpaqueBlock(name="opaque")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inputs, outputs, name="every_form")


def wrapped_and_recurrent():
    """`{name: (builder, sites)}`: ReLUs inside wrappers and recurrent
    layers, and the `ops.relu` function object, in small models. Each
    builder takes the activation to use (default: the ReLU form named), so
    a test can build the same model with `SugarReLU` directly."""
    L = keras.layers
    seq = (5, 4)

    def model(*layers, shape=seq):
        return keras.Sequential([keras.Input(shape), *layers])

    def lambda_or_activation(act):
        return (L.Lambda(keras.activations.relu) if act is None
                else L.Activation(act))

    return {
        "TimeDistributed(Dense)": (lambda act="relu": model(
            L.TimeDistributed(L.Dense(6, activation=act)), L.Flatten(),
            L.Dense(2)), 1),
        "Bidirectional(LSTM)": (lambda act="relu": model(L.Bidirectional(
            L.LSTM(6, activation=act)), L.Dense(2)), 2),
        "LSTM both activations": (lambda act="relu": model(L.LSTM(
            6, activation=act, recurrent_activation=act), L.Dense(2)), 2),
        "GRU": (lambda act="relu": model(L.GRU(6, activation=act),
                                         L.Dense(2)), 1),
        "SimpleRNN": (lambda act="relu": model(
            L.SimpleRNN(6, activation=act), L.Dense(2)), 1),
        "RNN(SimpleRNNCell)": (lambda act="relu": model(L.RNN(
            L.SimpleRNNCell(6, activation=act)), L.Dense(2)), 1),
        "Dense(activation=ops.relu)": (lambda act=ops.relu: model(
            L.Dense(6, activation=act), L.Dense(2), shape=(4,)), 1),
        "Activation(ops.relu)": (lambda act=ops.relu: model(
            L.Dense(6), L.Activation(act), L.Dense(2), shape=(4,)), 1),
        "Lambda(activations.relu)": (lambda act=None: model(
            L.Dense(6), lambda_or_activation(act), L.Dense(2),
            shape=(4,)), 1),
    }


def transformers():
    """`{name: (builder, inputs, feed-forward layers)}`: keras_hub text
    encoders and decoders and a vision transformer, from small configs."""
    import numpy as np
    import keras_hub

    M = keras_hub.models
    text = dict(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
                intermediate_dim=16, max_sequence_length=8)
    tokens = {"token_ids": np.array([[1, 2, 3, 4, 5, 6, 0, 0]] * 2),
              "padding_mask": np.array([[1] * 6 + [0, 0]] * 2)}
    image = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(
        "float32")
    return {
        "BERT": (lambda: M.BertBackbone(**text),
                 {**tokens, "segment_ids": np.zeros((2, 8), "int32")}, 2),
        "GPT2": (lambda: M.GPT2Backbone(**text), tokens, 2),
        "ViT": (lambda: M.ViTBackbone(
            image_shape=(16, 16, 3), patch_size=4, num_layers=2,
            num_heads=2, hidden_dim=8, mlp_dim=16), image, 2),
    }


def applications():
    A = keras.applications
    small = dict(weights=None, include_top=False, input_shape=IMAGE)
    return {
        "VGG16": lambda: A.VGG16(**small),
        "ResNet50": lambda: A.ResNet50(**small),
        "ResNet50V2": lambda: A.ResNet50V2(**small),
        "MobileNetV2": lambda: A.MobileNetV2(**small),
        "MobileNetV3Small": lambda: A.MobileNetV3Small(**small),
        "MobileNetV3Large": lambda: A.MobileNetV3Large(**small),
        "DenseNet121": lambda: A.DenseNet121(**small),
        "Xception": lambda: A.Xception(weights=None, include_top=False,
                                       input_shape=(71, 71, 3)),
        "ConvNeXtTiny": lambda: A.ConvNeXtTiny(**small),
        "EfficientNetB0": lambda: A.EfficientNetB0(**small),
    }


def keras_cv_backbones():
    import keras_cv

    M = keras_cv.models
    return {
        "ResNet": lambda: M.ResNetBackbone(
            stackwise_filters=[8, 16], stackwise_blocks=[1, 1],
            stackwise_strides=[1, 2], include_rescaling=False,
            input_shape=IMAGE),
        "ResNetV2": lambda: M.ResNetV2Backbone(
            stackwise_filters=[8, 16], stackwise_blocks=[2, 2],
            stackwise_strides=[1, 2], include_rescaling=False,
            input_shape=IMAGE),
        "DenseNet": lambda: M.DenseNetBackbone(
            stackwise_num_repeats=[1, 1], include_rescaling=False,
            input_shape=IMAGE, growth_rate=8),
        "MobileNetV3": lambda: M.MobileNetV3Backbone(
            stackwise_expansion=[1, 4.5], stackwise_filters=[16, 24],
            stackwise_kernel_size=[3, 3], stackwise_stride=[2, 2],
            stackwise_se_ratio=[0.25, None],
            stackwise_activation=["relu", "relu"], include_rescaling=False,
            input_shape=IMAGE),
        "EfficientNetV2": lambda: M.EfficientNetV2Backbone(
            include_rescaling=False, width_coefficient=0.25,
            depth_coefficient=0.25, stackwise_kernel_sizes=[3, 3],
            stackwise_num_repeats=[1, 1], stackwise_input_filters=[24, 24],
            stackwise_output_filters=[24, 48],
            stackwise_expansion_ratios=[1, 4],
            stackwise_squeeze_and_excite_ratios=[0, 0.25],
            stackwise_strides=[1, 2],
            stackwise_conv_types=["fused", "unfused"], activation="relu",
            input_shape=IMAGE),
    }


def keras_hub_backbones():
    import keras_hub

    M = keras_hub.models
    return {
        "ResNet": lambda: M.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2], block_type="basic_block",
            image_shape=IMAGE),
        "VGG": lambda: M.VGGBackbone(
            stackwise_num_repeats=[1, 1], stackwise_num_filters=[8, 16],
            image_shape=IMAGE),
        "DenseNet": lambda: M.DenseNetBackbone(
            stackwise_num_repeats=[1, 1], image_shape=IMAGE, growth_rate=8),
        "MobileNet": lambda: M.MobileNetBackbone(
            stackwise_expansion=[[16], [4]], stackwise_num_blocks=[1, 1],
            stackwise_num_filters=[[16], [24]],
            stackwise_kernel_size=[[3], [3]],
            stackwise_num_strides=[[2], [2]],
            stackwise_se_ratio=[[0.25], [None]],
            stackwise_activation=[["relu"], ["relu"]],
            stackwise_padding=[[1], [1]], output_num_filters=32,
            depthwise_filters=8, depthwise_stride=1,
            depthwise_residual=False, last_layer_filter=32,
            image_shape=IMAGE),
        "ViT": lambda: M.ViTBackbone(
            image_shape=(16, 16, 3), patch_size=4, num_layers=2,
            num_heads=2, hidden_dim=8, mlp_dim=16),
    }

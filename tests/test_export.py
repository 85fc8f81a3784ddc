"""A default SUGAR model serves as its ReLU twin does, without stripping:
the same values in every inference path and `model.export` format of its
backend, and the same operations in every artifact that lists them."""

import os

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar import strip_sugar
from tests.testing import BACKEND
from tests.testing import to_numpy


def twins(implementation="auto"):
    """A small CNN with ReLU and the same CNN, same weights, with
    SugarReLU (the default); and an input."""
    def build(activation):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same",
                                activation=activation)(inputs)
        x = keras.layers.Conv2D(4, 3, padding="same",
                                activation=activation)(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inputs, keras.layers.Dense(
            3, activation=activation)(x))

    relu = build("relu")
    sugar = build(SugarReLU(implementation=implementation))
    # Both set as values: an initializer's zeros bias is an operation in
    # OpenVINO's graph, a set one a constant.
    relu.set_weights(relu.get_weights())
    sugar.set_weights(relu.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    return relu, sugar, x


@pytest.mark.inference
@pytest.mark.parametrize("jit_compile", [False, True])
def test_predict_is_relus(jit_compile):
    relu, sugar, x = twins()
    for model in (relu, sugar):
        model.compile(jit_compile=jit_compile)
    np.testing.assert_array_equal(sugar.predict(x, verbose=0),
                                  relu.predict(x, verbose=0))
    np.testing.assert_array_equal(sugar.predict_on_batch(x),
                                  relu.predict_on_batch(x))


def saved_and_run(model, x, directory):
    """`{format: output}` for `model` saved or exported in every format of
    this backend and run from there; on TensorFlow also the operations
    of its TFLite model."""
    directory = str(directory)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        model.export(directory, verbose=False)
        loaded = tf.saved_model.load(directory)
        interpreter = tf.lite.Interpreter(model_content=(
            tf.lite.TFLiteConverter.from_keras_model(model).convert()))
        run = interpreter.get_signature_runner()
        (tflite,) = run(**{next(iter(run.get_input_details())): x}).values()
        return {"saved_model": to_numpy(loaded.serve(x)), "tflite": tflite,
                "tflite_ops": [op["op_name"] for op in
                               interpreter._get_ops_details()]}
    if BACKEND == "jax":
        import jax
        from jax import export

        def predict(trainable, non_trainable, inputs):
            return model.stateless_call(trainable, non_trainable, inputs)[0]

        variables = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables])
        exported = export.export(jax.jit(predict))(*variables, x)
        restored = export.deserialize(exported.serialize())
        return {"jax_export": np.asarray(restored.call(*variables, x))}
    import onnxruntime
    import torch

    os.makedirs(directory)
    inputs = torch.as_tensor(x)
    model.eval()
    with torch.no_grad():
        torch.jit.trace(model, inputs).save(f"{directory}/model.pt")
        traced = torch.jit.load(f"{directory}/model.pt")(inputs).numpy()
    program = torch.export.export(model, (inputs,))
    model(x)  # Keras exports models that have been called.
    model.export(f"{directory}/model.onnx", format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(f"{directory}/model.onnx")
    return {"jit_trace": traced,
            "torch_export": program.module()(inputs).detach().numpy(),
            "onnx": session.run(None, {session.get_inputs()[0].name: x})[0]}


# Implementations whose inference graph is ReLU's on this backend: the
# default everywhere; `multiplicative` where it has a native form (JAX,
# PyTorch; on TensorFlow its carrier ops are in every graph).
DEPLOYABLE = ["auto"] + (["multiplicative"] if BACKEND != "tensorflow"
                         else [])


@pytest.mark.parametrize("implementation", DEPLOYABLE)
def test_every_format_of_this_backend_gives_relus_values(implementation,
                                                         tmp_path):
    relu, sugar, x = twins(implementation)
    expected = saved_and_run(relu, x, tmp_path / "relu")
    found = saved_and_run(sugar, x, tmp_path / "sugar")
    assert list(found) == list(expected)
    for name, value in expected.items():
        # TFLite: the same operations (ReLU fused into the convolutions).
        np.testing.assert_array_equal(found[name], value, err_msg=name)
    # And the runtimes' values are ReLU's (to their own rounding).
    for name, value in found.items():
        if name != "tflite_ops":
            np.testing.assert_allclose(value, to_numpy(relu(x)), rtol=1e-5,
                                       atol=1e-6, err_msg=name)


def inference_jaxpr(model, x, transform=lambda f: f):
    """The jaxpr (as text) of `model`'s stateless forward call on `x`,
    through `transform` (e.g. `jax.jit`)."""
    import jax

    return str(jax.make_jaxpr(transform(
        lambda t, v: model.stateless_call(t, v, x)[0]))(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables]))


def test_compiled_inference_inside_another_gradient_holds_no_surrogate():
    """Inference compiled (XLA) while some other gradient is being taken
    (on TensorFlow, traced inside a tape that watches neither the input
    nor the model's weights) is plain ReLU too."""
    _, sugar, x = twins()
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(tf.constant(1.0))
            graph = tf.function(sugar, jit_compile=True).get_concrete_function(
                x).graph
        found = {op.type for op in graph.get_operations()}
        assert "Sigmoid" not in found and "Relu" in found
    elif BACKEND == "jax":
        import jax

        def unrelated(w):
            jaxpr = inference_jaxpr(sugar, x, jax.jit)
            assert "logistic" not in jaxpr and "max" in jaxpr
            return w * 2.0

        jax.grad(unrelated)(1.0)
    else:
        import torch

        with torch.enable_grad():
            t = torch.as_tensor(np.asarray(x))
            assert SugarReLU()(t).grad_fn is None


def test_the_inference_graph_holds_no_surrogate():
    """Outside a gradient computation the default computes plain ReLU: no
    sigmoid (B-SiLU's derivative) in the traced forward pass."""
    _, sugar, x = twins()
    if BACKEND == "tensorflow":
        import tensorflow as tf

        graph = tf.function(sugar).get_concrete_function(x).graph
        found = {op.type for op in graph.get_operations()}
        assert "Sigmoid" not in found and "Relu" in found
    elif BACKEND == "jax":
        jaxpr = inference_jaxpr(sugar, x)
        assert "logistic" not in jaxpr and "max" in jaxpr
    else:
        import torch

        activation = SugarReLU()
        t = torch.linspace(-2, 2, 5, requires_grad=True)
        with torch.no_grad():
            assert activation(t).grad_fn is None
        assert activation(t.detach()).grad_fn is None
        # With a gradient to compute, the surrogate's.
        activation(t).sum().backward()
        assert t.grad[0] != 0


FORMATS = ("tf_saved_model", "onnx", "openvino", "litert", "torch")
# The file each format writes.
SUFFIX = {"tf_saved_model": "", "onnx": ".onnx", "openvino": ".xml",
          "litert": ".tflite", "torch": ".pt2"}

# Where Keras 3.15 exports no model at all, the ReLU twin included: the
# error it (or the converter it calls) raises. The twin must still fail so
# (a Keras that lifts a limit shows here) and SUGAR the same way.
_NOT_THIS_BACKEND = {
    "tf_saved_model": "object has no attribute 'track_and_add_endpoint'",
    "onnx": "`export_onnx` is only compatible with TensorFlow, JAX and Torch",
    # The numpy backend without the openvino package fails at its import.
    "openvino": ("compatible with OpenVINO, TensorFlow, JAX and Torch"
                 "|No module named 'openvino'"),
    "litert": "LiteRT export requires TensorFlow or PyTorch backend",
    "torch": "Torch export requires PyTorch backend",
}
KERAS_LIMITS = {
    ("tensorflow", "torch"): _NOT_THIS_BACKEND["torch"],
    # jax2tf serializes natively (XlaCallModule), which OpenVINO cannot read.
    ("jax", "openvino"): "No conversion rule found for operations: "
                         "XlaCallModule",
    ("jax", "litert"): _NOT_THIS_BACKEND["litert"],
    ("jax", "torch"): _NOT_THIS_BACKEND["torch"],
    # With a static input_signature instead: "This requires the torch_xla
    # module", which has no build for this torch.
    ("torch", "tf_saved_model"): "Detected mismatch between the structure "
                                 "of `inputs` and `dynamic_shapes`",
    **{("numpy", format): message
       for format, message in _NOT_THIS_BACKEND.items()},
    **{("openvino", format): _NOT_THIS_BACKEND[format]
       for format in ("tf_saved_model", "onnx", "litert", "torch")},
}


def _static_batch(x):
    return {"input_signature": [keras.InputSpec(shape=x.shape,
                                                dtype="float32")]}


def _dynamic_batch(x):
    import torch

    return {"dynamic_shapes": ({0: torch.export.Dim("batch")},)}


# Arguments Keras documents that the twin's artifact needs to serve `x`:
# LiteRT from PyTorch and the OpenVINO backend fix the batch of their
# sample input (1) without a static `input_signature`; `torch.export`
# guards it unless the batch is declared dynamic.
EXPORT_ARGUMENTS = {
    ("torch", "litert"): _static_batch,
    ("openvino", "openvino"): _static_batch,
    ("torch", "torch"): _dynamic_batch,
}


def run_artifact(format, path, x):
    """`(output, operations)` of an exported artifact run by its own
    runtime; `operations` lists what the artifact computes, in order."""
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        graph = loaded.signatures["serving_default"].graph.as_graph_def()
        return to_numpy(loaded.serve(x)), _called_operations(graph)
    if format == "onnx":
        import onnx
        import onnxruntime

        session = onnxruntime.InferenceSession(path)
        output = session.run(None, {session.get_inputs()[0].name: x})[0]
        return output, [node.op_type for node in onnx.load(path).graph.node]
    if format == "openvino":
        import openvino

        core = openvino.Core()
        model = core.read_model(path)
        # float32 throughout: the CPU plugin's default may be bfloat16.
        compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": "f32"})
        return compiled(x)[0], [op.get_type_name()
                                for op in model.get_ordered_ops()]
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)
        runner = interpreter.get_signature_runner()
        (output,) = runner(**{next(iter(runner.get_input_details())): x}
                           ).values()
        return output, [op["op_name"]
                        for op in interpreter._get_ops_details()]
    import torch

    program = torch.export.load(path)
    output = program.module()(torch.as_tensor(x)).detach().numpy()
    return output, [str(node.target) for node in program.graph.nodes
                    if node.op == "call_function"]


def _called_operations(graph):
    """The operations a SavedModel's serving graph runs, those of the
    functions it calls included (not the gradient functions it keeps for
    SugarReLU, which no call reaches), sorted."""
    functions = {f.signature.name: f.node_def for f in graph.library.function}
    operations, pending, seen = [], [graph.node], set()
    while pending:
        for node in pending.pop():
            operations.append(node.op)
            for value in node.attr.values():
                if value.func.name and value.func.name not in seen:
                    seen.add(value.func.name)
                    pending.append(functions[value.func.name])
    return sorted(operations)


def exported_and_run(model, format, x, path):
    arguments = EXPORT_ARGUMENTS.get((BACKEND, format), lambda x: {})(x)
    model.export(path, format=format, verbose=False, **arguments)
    return run_artifact(format, path, x)


@pytest.mark.inference
@pytest.mark.parametrize("format", FORMATS)
def test_every_export_format_ships_relu(format, tmp_path):
    """The default SugarReLU model, and its `strip_sugar` result (never
    called before), export as the ReLU twin does: each artifact, run by its
    own runtime, gives the twin's artifact's values bit for bit and holds
    its operations; where Keras exports no model, SUGAR fails as the twin
    does."""
    relu, sugar, x = twins()
    expected = to_numpy(relu(x))
    sugar(x)  # Keras exports models that have been called.
    models = {"relu": relu, "sugar": sugar, "stripped": strip_sugar(sugar)}
    paths = {name: str(tmp_path / (name + SUFFIX[format]))
             for name in models}
    limit = KERAS_LIMITS.get((BACKEND, format))
    if limit is not None:
        errors = []
        for name, model in models.items():
            with pytest.raises(Exception, match=limit) as error:
                exported_and_run(model, format, x, paths[name])
            errors.append((type(error.value), str(error.value)))
        assert errors[1:] == errors[:1] * 2
        return
    twin_output, twin_operations = exported_and_run(relu, format, x,
                                                    paths["relu"])
    # The runtime's values are Keras' own, to its rounding.
    np.testing.assert_allclose(twin_output, expected, rtol=1e-5, atol=1e-6)
    for name in ("sugar", "stripped"):
        output, operations = exported_and_run(models[name], format, x,
                                              paths[name])
        np.testing.assert_array_equal(output, twin_output, err_msg=name)
        assert operations == twin_operations, name

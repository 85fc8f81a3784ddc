"""A default SUGAR model serves as its ReLU twin does, without stripping:
the same values in every inference path and export format of its backend,
and, where a format counts operations (TFLite), the same operations."""

import os

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
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
    sugar.set_weights(relu.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    return relu, sugar, x


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

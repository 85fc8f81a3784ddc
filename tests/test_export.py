"""A default SUGAR model serves as its ReLU twin does, without stripping:
the same values in every inference path and export format of its backend,
and, where a format counts operations (TFLite), the same operations."""

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


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow formats")
class TestTensorFlow:
    def test_saved_model_serves_relus_values(self, tmp_path):
        import tensorflow as tf

        relu, sugar, x = twins()
        served = []
        for name, model in (("relu", relu), ("sugar", sugar)):
            model.export(str(tmp_path / name), verbose=False)
            loaded = tf.saved_model.load(str(tmp_path / name))
            served.append(to_numpy(loaded.serve(x)))
        np.testing.assert_array_equal(served[1], served[0])
        np.testing.assert_array_equal(served[1], to_numpy(relu(x)))

    def test_tflite_has_relus_ops_and_values(self):
        import tensorflow as tf

        relu, sugar, x = twins()
        results = []
        for model in (relu, sugar):
            interpreter = tf.lite.Interpreter(model_content=(
                tf.lite.TFLiteConverter.from_keras_model(model).convert()))
            ops = [op["op_name"] for op in interpreter._get_ops_details()]
            run = interpreter.get_signature_runner()
            (output,) = run(**{next(iter(run.get_input_details())): x}
                            ).values()
            results.append((ops, output))
        (relu_ops, relu_out), (sugar_ops, sugar_out) = results
        # ReLU fused into each convolution and the dense layer.
        assert sugar_ops == relu_ops
        assert "RELU" not in relu_ops and "LOGISTIC" not in sugar_ops
        np.testing.assert_array_equal(sugar_out, relu_out)


@pytest.mark.skipif(BACKEND != "jax", reason="JAX formats")
def test_jax_export_gives_relus_values():
    import jax
    from jax import export

    relu, sugar, x = twins()
    outputs = []
    for model in (relu, sugar):
        def predict(trainable, non_trainable, inputs, model=model):
            return model.stateless_call(trainable, non_trainable, inputs)[0]

        variables = ([v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables])
        exported = export.export(jax.jit(predict))(*variables, x)
        restored = export.deserialize(exported.serialize())
        outputs.append(np.asarray(restored.call(*variables, x)))
    np.testing.assert_array_equal(outputs[1], outputs[0])


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch formats")
class TestTorch:
    @pytest.mark.parametrize("implementation", ["auto", "multiplicative"])
    def test_traced_module_saves_and_loads(self, implementation, tmp_path):
        import torch

        relu, sugar, x = twins(implementation)
        sugar.eval()
        with torch.no_grad():
            torch.jit.trace(sugar, torch.as_tensor(x)).save(
                str(tmp_path / "sugar.pt"))
            loaded = torch.jit.load(str(tmp_path / "sugar.pt"))
            np.testing.assert_array_equal(
                loaded(torch.as_tensor(x)).numpy(), to_numpy(relu(x)))

    def test_torch_export(self):
        import torch

        relu, sugar, x = twins()
        program = torch.export.export(sugar, (torch.as_tensor(x),))
        np.testing.assert_array_equal(
            program.module()(torch.as_tensor(x)).detach().numpy(),
            to_numpy(relu(x)))

    def test_onnx_runs_relus_values(self, tmp_path):
        import onnxruntime

        relu, sugar, x = twins()
        outputs = []
        for name, model in (("relu", relu), ("sugar", sugar)):
            path = str(tmp_path / f"{name}.onnx")
            model(x)  # Keras exports models that have been called.
            model.export(path, format="onnx", verbose=False)
            session = onnxruntime.InferenceSession(path)
            outputs.append(session.run(
                None, {session.get_inputs()[0].name: x})[0])
        np.testing.assert_array_equal(outputs[1], outputs[0])
        np.testing.assert_allclose(outputs[1], to_numpy(relu(x)),
                                   rtol=1e-5, atol=1e-6)

    def test_inference_runs_plain_relu(self):
        """No autodiff mode can see the input: no autograd node is made."""
        import torch

        activation = SugarReLU()
        x = torch.linspace(-2, 2, 5, requires_grad=True)
        with torch.no_grad():
            assert activation(x).grad_fn is None
        assert activation(x.detach()).grad_fn is None
        # With a gradient to compute, the surrogate's.
        activation(x).sum().backward()
        assert x.grad[0] != 0

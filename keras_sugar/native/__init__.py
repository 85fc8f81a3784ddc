"""ReLU with a given derivative, written with each backend's own autodiff.

The only backend-native code, one module per Keras backend, named after
it (`keras_sugar.native.jax` for `keras.backend.backend() == "jax"`);
this file picks the current backend's, so a new backend is one new
module. Each module defines:

- `relu_with_derivative(x, derivative, fused_backward=None, forward=None,
  traced_forward=None)`: `forward(x)` (default `ops.relu(x)`) whose
  derivative is `derivative(x)` (the `custom_gradient` implementation).
- `relu_saving_derivative(x, derivative, forward=None)`: the same,
  `derivative(x)` computed in the forward pass and kept (first
  derivatives only; the `multiplicative` implementation), or None where
  the generic formula is used instead.
- `FUSED_BACKWARD`: surrogate name -> a faster `(x, upstream, **params)
  -> upstream * f'(x)` for `fused_backward`, where the backend has one.
- `DIFFERENTIATES`: False for inference-only backends (numpy, OpenVINO),
  where every SugarReLU is its forward value, plain (or capped) ReLU.

Each function takes the input tensor and `derivative`, a function of the
input built from `keras.ops`; the forward value is exactly `forward(x)`.
Only call them on real tensors (inside a layer's `call` or eagerly), never
on a symbolic `KerasTensor`: `SugarReLU` guarantees that.
"""

import importlib

import keras

# Keras' backends, each with its module here.
BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


def module_for(backend):
    """The native module of `backend`, imported (with its backend).

    Raises:
        ValueError: For a backend this package has no module for.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"keras_sugar has no native code for the Keras backend "
            f"'{backend}'. Supported backends: {list(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{backend}")


_CURRENT = module_for(keras.backend.backend())
relu_with_derivative = _CURRENT.relu_with_derivative
relu_saving_derivative = _CURRENT.relu_saving_derivative
FUSED_BACKWARD = _CURRENT.FUSED_BACKWARD
DIFFERENTIATES = _CURRENT.DIFFERENTIATES

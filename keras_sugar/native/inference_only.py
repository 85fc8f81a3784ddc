"""Backends that run inference only (Keras' numpy and OpenVINO backends:
no autodiff, and `ops.custom_gradient` a pass-through that warns on every
call): every SugarReLU is its forward value, Keras' (capped) ReLU, with no
other backend imported. `keras_sugar.native.numpy` and `.openvino` are
this module."""

from keras import ops

DIFFERENTIATES = False
FUSED_BACKWARD = {}


def relu_with_derivative(x, derivative, fused_backward=None, forward=None,
                         traced_forward=None):
    """`forward(x)` (default `ops.relu(x)`); nothing differentiates it."""
    return (forward or ops.relu)(x)


def relu_saving_derivative(x, derivative, forward=None):
    """`forward(x)` (default `ops.relu(x)`); nothing differentiates it."""
    return (forward or ops.relu)(x)

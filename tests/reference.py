"""Independent numpy (float64) derivatives of the built-in surrogates."""

import math

import numpy as np

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(x, 0.0)


def bsilu(x, alpha=1.67):
    s = _sigmoid(x)
    return s + (x + alpha) * s * (1 - s)


def nelu(x, alpha=0.05):
    return np.where(x > 0, 1.0, 2 * alpha * x / (1 + x**2) ** 2)


def elu(x, alpha=1.0):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def selu(x):
    return SELU_SCALE * elu(x, SELU_ALPHA)


def gelu(x, approximate=False):
    if approximate:
        k, c = math.sqrt(2 / math.pi), 0.044715
        t = np.tanh(k * (x + c * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * c * x**2)
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(
        -0.5 * x**2) / math.sqrt(2 * math.pi)


def silu(x):
    s = _sigmoid(x)
    return s + x * s * (1 - s)


def mish(x):
    t = np.tanh(_softplus(x))
    return t + x * _sigmoid(x) * (1 - t**2)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, 1.0, negative_slope)


DERIVATIVES = {
    "bsilu": bsilu, "nelu": nelu, "elu": elu, "selu": selu, "gelu": gelu,
    "silu": silu, "mish": mish, "leaky_relu": leaky_relu,
}

# (surrogate, params): every built-in, at its defaults and at a non-default
# setting, so that tests also prove a user's parameter reaches the backward.
CASES = [
    ("bsilu", {}), ("bsilu", {"alpha": 0.0}), ("nelu", {}),
    ("nelu", {"alpha": 0.1}), ("elu", {}), ("elu", {"alpha": 0.5}),
    ("selu", {}), ("gelu", {}), ("gelu", {"approximate": True}),
    ("silu", {}), ("mish", {}), ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
]


def case_id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def derivative(name, params, x):
    return DERIVATIVES[name](np.asarray(x, "float64"), **params)

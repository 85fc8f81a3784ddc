"""`sugar_relu`: ReLU forward, surrogate derivative backward; and `SugarReLU`.

`SugarReLU` is the serializable activation object to pass wherever Keras
takes an activation: `Dense(activation=...)`, `Conv2D(activation=...)`,
`Activation(...)`, or `layer.activation = ...`.
"""

import keras
import numpy as np
from keras import ops

from keras_sugar import implementations
from keras_sugar import surrogates

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _check_input(x):
    """Refuses what is not numeric before a backend turns it into an
    obscure error (None, strings, lists of strings)."""
    if ops.is_tensor(x) or isinstance(x, np.ndarray):
        return
    kind = np.asarray(x).dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"SugarReLU takes a floating-point tensor or array. Received: "
            f"x={x!r} (type {type(x).__name__})")


def _check_float(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"SugarReLU needs a floating-point input to have a gradient. "
            f"Received: dtype={dtype}. Valid dtypes: {list(FLOAT_DTYPES)}"
        )


def check_not_called_on_a_tensor(surrogate):
    """`activation=SugarReLU` (the class, not an instance) makes a layer
    call the class on its output: say that an instance is needed, rather
    than that a tensor names no surrogate."""
    if isinstance(surrogate, (str, surrogates.Surrogate)):
        return
    if ops.is_tensor(surrogate) or isinstance(
            surrogate, (np.ndarray, keras.KerasTensor)):
        dtype = keras.backend.standardize_dtype(surrogate.dtype)
        raise TypeError(
            f"SugarReLU was given as the class where an activation goes, so "
            f"the layer called the class on its output: an instance is "
            f"needed, activation=SugarReLU() (or SugarReLU(\"elu\"), any "
            f"surrogate). Received: the class SugarReLU called on a tensor "
            f"of shape {tuple(surrogate.shape)}, {dtype}")


def _check_negative_only(negative_only):
    if not isinstance(negative_only, bool):
        raise TypeError(
            f"negative_only must be True or False. Received: "
            f"negative_only={negative_only!r}"
        )


def _check_max_value(max_value):
    if max_value is None:
        return None
    if (isinstance(max_value, bool) or not isinstance(
            max_value, (int, float, np.integer, np.floating))
            or not 0 < float(max_value) < float("inf")):
        raise ValueError(
            f"max_value must be None (no cap) or a finite number > 0, e.g. "
            f"6.0 for ReLU6. Received: max_value={max_value!r}")
    return float(max_value)


# Registered so that `activation=sugar_relu` saves by name and loads (safe
# mode included) wherever keras_sugar is imported, as Keras' own do.
@keras.saving.register_keras_serializable(package="keras_sugar")
def sugar_relu(x, surrogate="bsilu", negative_only=False,
               implementation="auto", max_value=None, **params):
    """ReLU whose backward pass uses the derivative of a smooth surrogate.

    Forward: exactly `ops.relu(x)` (same values, same zeros). Backward:
    `f'(x)`, the surrogate's derivative, on both sides of zero as in the
    paper; with `negative_only=True`, 1 for `x > 0` and `f'(x)` otherwise.

    Called on a symbolic `KerasTensor` (functional model building), this
    adds a `keras.layers.Activation(SugarReLU(...))` node, so the surrogate
    gradient and its configuration are kept in the graph and when saving.

    Args:
        x: Floating-point input tensor.
        surrogate: Registered surrogate name, see
            `keras_sugar.surrogates.available()`. Defaults to `"bsilu"`.
        negative_only: Apply the surrogate only where `x <= 0`. Defaults to
            `False` (the paper's behaviour).
        implementation: `"auto"`, `"straight_through"`, `"multiplicative"`
            or `"custom_gradient"`; all give identical values and
            gradients. Defaults to `"auto"`.
        max_value: A cap, as in `keras.layers.ReLU(max_value=...)` (6.0
            for ReLU6): forward exactly that capped ReLU, gradient 0 at and
            above the cap. Defaults to `None` (no cap).
        **params: The surrogate's parameters, e.g. `alpha=1.67`.

    Returns:
        A tensor equal to `ops.relu(x)` (or the capped ReLU).

    Example:

    >>> import numpy as np
    >>> x = np.array([-2.0, 0.0, 3.0], dtype="float32")
    >>> keras.ops.convert_to_numpy(sugar_relu(x, "nelu")).tolist()
    [0.0, 0.0, 3.0]

    Reference:
        - [Horuz et al., 2025](https://arxiv.org/abs/2505.22074)
    """
    return SugarReLU(surrogate, negative_only=negative_only,
                     implementation=implementation, max_value=max_value,
                     **params)(x)


@keras.saving.register_keras_serializable(package="keras_sugar")
class SugarReLU:
    """Serializable SUGAR activation: exact ReLU, surrogate gradient.

    The activation object (`keras_sugar.SugarReLU`), for `activation=` and
    `Activation(...)`; for the layer form, see
    `keras_sugar.layers.SugarReLU`.

    Formula:
    ```
    forward:  y = relu(x)                     (min(relu(x), cap) with a cap)
    backward: dy/dx = f'(x)         (negative_only=False, the paper)
              dy/dx = 1 if x > 0 else f'(x)   (negative_only=True)
              dy/dx = 0 for x >= cap          (with a cap, as ReLU6)
    ```

    Args:
        surrogate: Registered surrogate name (case-, dash- and
            underscore-insensitive). Defaults to `"bsilu"`.
        negative_only: Apply the surrogate only where `x <= 0`. Defaults to
            `False`.
        implementation: How the gradient is injected: `"auto"`,
            `"straight_through"`, `"multiplicative"` or
            `"custom_gradient"`. Defaults to `"auto"`.
        max_value: A cap, for capped ReLUs such as ReLU6 (`6.0`): forward
            exactly `keras.layers.ReLU(max_value=...)`, gradient 0 at and
            above the cap, the surrogate's below it. Defaults to `None`.
        **params: The surrogate's parameters (e.g. `alpha` for `"bsilu"` and
            `"nelu"`); unspecified ones take the paper's defaults.

    Example:

    >>> layer = keras.layers.Dense(4, activation=SugarReLU("nelu", alpha=0.1))
    >>> SugarReLU("B-SiLU").get_config()["alpha"]
    1.67
    """

    def __init__(self, surrogate="bsilu", *, negative_only=False,
                 implementation="auto", max_value=None, **params):
        check_not_called_on_a_tensor(surrogate)
        self.surrogate = surrogates.get(surrogate)
        self.params = self.surrogate.resolve_params(params)
        _check_negative_only(negative_only)
        self.negative_only = negative_only
        self.max_value = _check_max_value(max_value)
        # Validate now rather than on the first call.
        implementations.resolve(implementation, self.surrogate)
        self.implementation = implementation

    def __call__(self, x):
        if isinstance(x, keras.KerasTensor):
            return keras.layers.Activation(self)(x)
        if isinstance(x, keras.Variable):
            # A weight (`SugarReLU()(self.w)`): the backend's own variable
            # or tensor, which its autodiff follows (inside a compiled
            # step, the value being traced).
            x = x.value
        if not ops.is_tensor(x):  # Converting a tensor costs ~8 us.
            _check_input(x)
            x = ops.convert_to_tensor(x)
        _check_float(x)
        name = implementations.resolve(self.implementation, self.surrogate)
        return implementations.FUNCTIONS[name](
            x, self.surrogate, self.params, self.negative_only,
            self.max_value)

    @property
    def __name__(self):
        # Keras names some things after their activation's __name__.
        return "sugar_relu"

    def get_config(self):
        config = {
            "surrogate": self.surrogate.name,
            "negative_only": self.negative_only,
            "implementation": self.implementation,
            **self.params,
        }
        if self.max_value is not None:  # Uncapped configs stay as they were.
            config["max_value"] = self.max_value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return (isinstance(other, SugarReLU)
                and self.get_config() == other.get_config())

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        extra = "" if not self.negative_only else ", negative_only=True"
        if self.max_value is not None:
            extra += f", max_value={self.max_value!r}"
        return (f"SugarReLU({self.surrogate.name!r}"
                f"{', ' + params if params else ''}{extra})")

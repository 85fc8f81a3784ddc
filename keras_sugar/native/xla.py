"""Where XLA (JAX's `jit`, TensorFlow's `jit_compile=True`) computes f'(x):
in the forward pass for a convolution's feature maps, which XLA runs
faster there, in the backward pass elsewhere. Shared by the JAX and
TensorFlow modules; backend-agnostic (`keras.ops`)."""

from keras import ops


def feature_maps(x):
    """Whether `x` has rank 4 or more (a 2-D convolution's feature maps,
    typically), where XLA runs f'(x) faster in the forward pass (see
    `exactly_zero`). A TensorFlow tensor of unknown rank is not."""
    rank = x.shape.rank if hasattr(x.shape, "rank") else len(x.shape)
    return rank is not None and rank >= 4


def exactly_zero(x, d):
    """+0 for every `x` and `d`, computed from both (XLA folds neither
    `t - t` nor `x - x` for floats), so that a value minus it is the value
    bit for bit (the sign of zero included) and depends on `d`.

    Under XLA (TensorFlow's `jit_compile=True`, JAX's `jit`) this decides
    where f'(x) is computed, so it is used where that pays. Measured on a
    2-core CPU (`keras-sugar bench`, interleaved runs): in a VGG step,
    f'(x) computed in the backward pass, fused with the product by the
    upstream gradient, cost 1.05x ReLU's step on TensorFlow and 1.03x on
    JAX; computed in the forward pass, in a loop of its own that nothing
    waits for until the backward pass, 0.99x and 1.00x. After a Dense
    layer (rank 2, batches of 64 to 1024) it is the other way round (JAX
    MLP step 1.02x against 1.06x-1.10x), so there f'(x) stays in the
    backward pass (`feature_maps`). Either way one tensor is kept.
    """
    t = (x - x) * d
    return ops.where(ops.isfinite(t), t - t, ops.zeros_like(t))

"""Train a SUGAR model data-parallel on several devices, and compare with
single-device training.

JAX: `keras.distribution.DataParallel`. TensorFlow: `tf.distribute.
MirroredStrategy`. On a CPU, simulate devices before the backend starts:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python examples/data_parallel.py
    KERAS_BACKEND=tensorflow python examples/data_parallel.py --devices 2

PyTorch: Keras' torch backend has no distribution API yet; train with
`torch.nn.parallel.DistributedDataParallel` around the Keras model (a
`torch.nn.Module`) in your own loop, or use JAX/TensorFlow for multi-device.

Prints one JSON line: the per-epoch losses on one device and on all.
"""

import argparse
import json
import os
import sys

import numpy as np

BATCH, EPOCHS = 64, 4


def _tf_logical_cpus(count):
    # Must run before TensorFlow initializes its runtime.
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def build_model():
    import keras

    from keras_sugar import SugarReLU

    return keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(64, activation=SugarReLU("bsilu")),
        keras.layers.Dense(64, activation=SugarReLU("nelu", alpha=0.05)),
        keras.layers.Dense(1),
    ])


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16)).astype("float32")
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2] ** 2
    return x, y.astype("float32")


def train(model, weights):
    import keras

    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x, y = data()
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False,
                        verbose=0)
    return [float(v) for v in history.history["loss"]]


def main():
    import keras

    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    weights = build_model().get_weights()
    single = train(build_model(), weights)
    if backend == "jax":
        found = keras.distribution.list_devices()
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=found))
        parallel = train(build_model(), weights)
        keras.distribution.set_distribution(None)
    elif backend == "tensorflow":
        import tensorflow as tf

        found = [d.name for d in tf.config.list_logical_devices("CPU")]
        with tf.distribute.MirroredStrategy(found).scope():
            model = build_model()
        parallel = train(model, weights)
    else:
        sys.exit("Keras' torch backend has no data-parallel API yet: use "
                 "torch DistributedDataParallel in your own loop, or the "
                 "JAX / TensorFlow backend (see this file's docstring).")
    print(json.dumps({"backend": backend, "devices": len(found),
                      "single": single, "parallel": parallel}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=2,
                        help="Logical CPU devices to create on TensorFlow.")
    args = parser.parse_args()
    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        _tf_logical_cpus(args.devices)
    main()

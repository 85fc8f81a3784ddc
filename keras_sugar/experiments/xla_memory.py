"""What a TensorFlow training step keeps, read from XLA's buffer assignment.

TensorFlow has no allocator statistics on CPU, but a step compiled with
XLA (`jit_compile=True`, Keras' default on TensorFlow) has one block of
temporary buffers whose size XLA decides at compile time: the counterpart
of JAX's `compiled.memory_analysis().temp_size_in_bytes`. XLA reports it
only in the files it dumps (`--xla_dump_to`), and reads that flag once per
process, so each measurement runs in a child process of its own (which
imports keras_sugar afresh: built-in surrogates only).
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile

# Names the compiled functions, so that only they are dumped.
_FUNCTION_PREFIX = "sugar_memory_"
_TEMP = re.compile(r"^allocation \d+: size (\d+), preallocated-temp:", re.M)


def temp_bytes(kinds, surrogate, batch_size, quick):
    """`{kind: {label: bytes}}`: XLA's temporary buffers of one
    forward+backward of each benchmark model in `kinds` with each variant
    (TensorFlow), all compiled in one child process."""
    with tempfile.TemporaryDirectory(prefix="keras-sugar-xla-") as folder:
        flags = (f"--xla_dump_to={folder} "
                 f"--xla_dump_hlo_module_re=.*{_FUNCTION_PREFIX}.*")
        env = dict(os.environ, KERAS_BACKEND="tensorflow",
                   XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}")
        request = json.dumps({"kinds": list(kinds), "surrogate": surrogate,
                              "batch_size": batch_size, "quick": quick})
        child = subprocess.run([sys.executable, "-m", __name__, request],
                               env=env, capture_output=True, text=True)
        if child.returncode != 0:  # Its log is noise unless it failed.
            raise RuntimeError(
                f"Measuring TensorFlow's memory failed (exit "
                f"{child.returncode}):\n{child.stderr[-4000:]}")
        with open(os.path.join(folder, "labels.json")) as f:
            labels = json.load(f)
        return {kind: {label: _read_temp_bytes(folder, _name(kind, index))
                       for index, label in enumerate(labels)}
                for kind in kinds}


def _name(kind, index):
    """The compiled function's name for a model and a variant's index."""
    return f"{_FUNCTION_PREFIX}{kind}_{index}"


def _read_temp_bytes(folder, name):
    pattern = os.path.join(
        folder, f"*{name}_*after_optimizations-buffer-assignment.txt")
    found = glob.glob(pattern)
    if len(found) != 1:
        raise RuntimeError(
            f"Expected one XLA buffer assignment matching {pattern}, found "
            f"{len(found)}: did this TensorFlow's XLA dump its files?")
    with open(found[0]) as f:
        return sum(int(size) for size in _TEMP.findall(f.read()))


def _compile_each_variant(request, folder):
    """In the child: compiles one forward+backward per model and variant."""
    import keras
    import tensorflow as tf

    from keras_sugar.experiments import bench_models

    found = bench_models.variants(request["surrogate"])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for kind in request["kinds"]:
        for index, activation in enumerate(found.values()):
            keras.utils.set_random_seed(0)
            model = bench_models.build_model(kind, activation,
                                             request["quick"])
            x, y = bench_models.batch(model, request["batch_size"])

            def step(x, y, model=model):
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                return tape.gradient(loss, model.trainable_variables)

            step.__name__ = _name(kind, index)
            tf.function(step, jit_compile=True)(x, y)
    with open(os.path.join(folder, "labels.json"), "w") as f:
        json.dump(list(found), f)


if __name__ == "__main__":
    _dump_to = re.search(r"--xla_dump_to=(\S+)", os.environ["XLA_FLAGS"])
    _compile_each_variant(json.loads(sys.argv[1]), _dump_to.group(1))

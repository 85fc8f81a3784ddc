"""The experiment harness: the `keras-sugar` command and what it runs.

Kept apart from the library (`keras_sugar`), which is what models are built
with: `compare` (train one architecture with several activations and
seeds), `benchmark` (speed and memory against ReLU and GELU), the reference
`architectures` or the user's own (`user_models`), the `datasets` they
train on, `compare_models` (the comparison from Python), and `cli`, whose
subcommands each own their arguments (`*_command.py`).
"""

# `compare_models` (your model and data, from Python) loads on first use:
# the command imports this package before Keras starts.


def __getattr__(name):
    if name == "compare_models":
        from keras_sugar.experiments.python_api import compare_models

        return compare_models
    raise AttributeError(
        f"module 'keras_sugar.experiments' has no attribute '{name}'")

"""Choosing a Keras backend that is installed, before Keras is imported.

Keras falls back to TensorFlow when neither `KERAS_BACKEND` nor
`~/.keras/keras.json` names a backend, and then fails to import on a machine
with only JAX or PyTorch. This module and `versions`, which it
runs, use the standard library only (and `packaging`, a Keras dependency,
once Keras is found installed), so `import keras_sugar` and the
`keras-sugar` command can run it first.
"""

import importlib.util
import json
import os
import sys

from keras_sugar import versions

BACKENDS = ("tensorflow", "jax", "torch")
# Keras' backends without autodiff: they serve SUGAR models (as plain
# ReLU), never train them, and are never picked for the user.
INFERENCE_ONLY = ("numpy", "openvino")

HOW_TO_CHOOSE = (
    "Choose a Keras backend with KERAS_BACKEND=jax (or tensorflow, torch) "
    "or the command's --backend option; install one with "
    "pip install \"keras-sugar[jax]\" (or [tensorflow], [torch]).")


def is_installed(backend):
    """Whether the backend's package can be imported (without importing)."""
    return importlib.util.find_spec(backend) is not None


def _configured():
    """The backend set by `KERAS_BACKEND` or keras.json, or None."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError):  # No file, or not JSON: Keras' default.
        return None


def choose(requested=None):
    """Sets `KERAS_BACKEND` before Keras is imported, if it must be set.

    Args:
        requested: A backend the user asked for (e.g. `--backend`), or
            None to keep the configured one (`KERAS_BACKEND`, else
            keras.json, else Keras' default TensorFlow), or, when that
            comes from keras.json or the default and is not installed,
            to use the first installed of TensorFlow, JAX and PyTorch.

    Returns:
        The backend Keras will use, or None if Keras is already imported
        (its backend is then fixed).

    Raises:
        ImportError: When no backend is installed, or the requested one is
            not; the message says how to choose and install one. Also when
            Keras or the backend's package is older than keras-sugar needs
            (see `keras_sugar.versions`).
    """
    backend = _choose(requested)
    versions.check(backend)
    return backend


def _choose(requested):
    if "keras" in sys.modules:
        return None
    if requested is not None:
        if requested not in BACKENDS + INFERENCE_ONLY:
            raise ValueError(
                f"Unknown Keras backend '{requested}'. Valid choices: "
                f"{list(BACKENDS + INFERENCE_ONLY)}")
        if not is_installed(requested):
            raise ImportError(
                f"The {requested} backend is not installed. {HOW_TO_CHOOSE}")
        os.environ["KERAS_BACKEND"] = requested
        return requested
    backend = _configured() or "tensorflow"
    # KERAS_BACKEND is the user's own choice: kept, even if missing. A
    # keras.json backend may have been written by another environment
    # (Keras writes the one it first ran with), so one that is not
    # installed here gives way to an installed one.
    if os.environ.get("KERAS_BACKEND") or is_installed(backend):
        return backend
    for candidate in BACKENDS:
        if is_installed(candidate):
            os.environ["KERAS_BACKEND"] = candidate
            return candidate
    raise ImportError(f"No Keras backend is installed. {HOW_TO_CHOOSE}")


def is_command_line():
    """Whether this process is the `keras-sugar` command (or `python -m
    keras_sugar...`), which imports Keras only once it has read its
    arguments: `--help` then needs no backend at all."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if program in ("keras-sugar", "keras-sugar.exe"):
        return True
    # `python -m keras_sugar`: the interpreter's own command line says so.
    command = list(getattr(sys, "orig_argv", []))
    if "-m" in command[:-1]:
        module = command[command.index("-m") + 1]
        return module.split(".")[0] == "keras_sugar"
    return False

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


def _keras_json():
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    return os.path.join(home, "keras.json")


def _configured():
    """The backend set by `KERAS_BACKEND` or keras.json, or None; and
    where it was read."""
    if os.environ.get("KERAS_BACKEND"):
        backend = os.environ["KERAS_BACKEND"]
        return backend, f"KERAS_BACKEND={backend}"
    path = _keras_json()
    try:
        with open(path) as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        # No file, not JSON, or not an object: Keras' default.
        return None, None
    return backend, (f"set in {path}" if backend else None)


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
    return choose_and_say_why(requested)[0]


def choose_and_say_why(requested=None):
    """`choose`, and why: returns `(backend, reason)`, the reason a few
    words a user reads (`"--backend jax"`, `"KERAS_BACKEND=jax"`, the
    keras.json that names it, or that it is the first installed);
    `(None, None)` if Keras is already imported.

    Example:

    >>> choose_and_say_why()  # Keras runs already: its backend is fixed.
    (None, None)
    """
    backend, reason = _choose(requested)
    versions.check(backend)
    return backend, reason


def _choose(requested):
    if "keras" in sys.modules:
        return None, None
    if requested is not None:
        if requested not in BACKENDS + INFERENCE_ONLY:
            raise ValueError(
                f"Unknown Keras backend '{requested}'. Valid choices: "
                f"{list(BACKENDS + INFERENCE_ONLY)}")
        if not is_installed(requested):
            raise ImportError(
                f"The {requested} backend is not installed. {HOW_TO_CHOOSE}")
        os.environ["KERAS_BACKEND"] = requested
        return requested, f"--backend {requested}"
    backend, source = _configured()
    first = (f"the first installed of {', '.join(BACKENDS)}; choose "
             f"another with KERAS_BACKEND or --backend")
    # KERAS_BACKEND is the user's own choice: kept, even if missing. A
    # keras.json backend may have been written by another environment
    # (Keras writes the one it first ran with), so one that is not
    # installed here gives way to an installed one.
    if os.environ.get("KERAS_BACKEND"):
        return backend, source
    if backend and is_installed(backend):
        return backend, source
    if backend:
        first = (f"the first installed of {', '.join(BACKENDS)}: "
                 f"{backend}, {source}, is not installed")
    for candidate in BACKENDS:
        if is_installed(candidate):
            if backend or candidate != "tensorflow":  # Else Keras' default.
                os.environ["KERAS_BACKEND"] = candidate
            return candidate, first
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

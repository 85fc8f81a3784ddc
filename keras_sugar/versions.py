"""The oldest Keras and backends keras-sugar works with, checked at import.

pip enforces the same floors (`pyproject.toml`) when it installs
keras-sugar, but not in an environment whose versions were pinned by other
packages or installed with `--no-deps`: there an old Keras would fail deep
inside a call. `check` refuses it at import instead, in one line naming the
installed version and the one needed. It runs before Keras is imported
(see `backend_selection.choose`), so an old Keras that cannot even start
is named too.

The floors are the lowest versions the continuous integration installs and
passes on (the constraints file `constraints-floors.txt`); a test keeps
them equal to `pyproject.toml`'s.
"""

import importlib
import importlib.metadata
import importlib.util
import sys

KERAS = "3.9.0"

# Per Keras backend: the package Keras imports for it, its distribution
# (for the install command) and the lowest version. Backends without an
# entry have no floor of their own beyond Keras'.
BACKENDS = {
    "jax": ("jax", "jax[cpu]", "0.4.30"),
    "tensorflow": ("tensorflow", "tensorflow", "2.16.1"),
    "torch": ("torch", "torch", "2.13.0"),
}


def _at_least(version, floor):
    # Keras depends on `packaging`, so it is installed wherever Keras is;
    # imported here, not at the top, because without Keras there is
    # nothing to compare.
    from packaging.version import Version

    return Version(version).release >= Version(floor).release


def _keras_version():
    """The version of the Keras this process runs (the one imported, or
    the installed one before import), or None if Keras is not installed."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.__version__
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return None  # Not installed: importing it will say so.


def check(backend):
    """Refuses a Keras, or the package behind `backend`, below its floor.

    Args:
        backend: The Keras backend about to be used (`"jax"`,
            `"tensorflow"`, `"torch"`, or another that has no floor of its
            own), or None when Keras is already imported (its backend is
            then the one checked).

    Raises:
        ImportError: One line naming the installed version, the one needed
            and how to upgrade.
    """
    keras_version = _keras_version()
    if keras_version is None:
        return
    if not _at_least(keras_version, KERAS):
        raise ImportError(
            f"keras-sugar needs Keras >= {KERAS}, but Keras "
            f"{keras_version} is installed. Upgrade it with: pip install "
            f"\"keras>={KERAS}\"")
    if backend is None:
        backend = sys.modules["keras"].backend.backend()
    if backend not in BACKENDS:
        return
    module_name, distribution, floor = BACKENDS[backend]
    if importlib.util.find_spec(module_name) is None:
        return  # Keras names a missing backend itself.
    # Keras imports the backend's package first thing anyway.
    version = importlib.import_module(module_name).__version__
    if not _at_least(version, floor):
        raise ImportError(
            f"keras-sugar's {backend} backend needs {module_name} >= "
            f"{floor}, but {module_name} {version} is installed. Upgrade "
            f"it with: pip install \"{distribution}>={floor}\" (or choose "
            f"another backend with KERAS_BACKEND).")

"""An older Keras or backend is refused at import in one line, and the
floors keras-sugar checks are the ones it declares and CI installs.

An old version is simulated in a fresh interpreter: a package of that name
and version (module and distribution metadata) placed first on the path.
CI's floors run (`.ci/run`) also installs the newest real Keras below the
floor and checks the same refusal.
"""

import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from keras_sugar import versions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSTRAINTS = os.path.join(ROOT, "constraints-floors.txt")


def fake_package(site, name, version):
    """An importable `name` of `version`, as pip would have installed it."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(f"__version__ = {version!r}\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def import_keras_sugar(site, backend):
    env = dict(os.environ, KERAS_BACKEND=backend,
               PYTHONPATH=os.pathsep.join([str(site), ROOT]))
    return subprocess.run([sys.executable, "-c", "import keras_sugar"],
                          capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def last_line(proc):
    assert proc.returncode == 1, proc.stderr[-2000:]
    return proc.stderr.strip().splitlines()[-1]


def test_keras_below_the_floor_is_refused_in_one_line(tmp_path):
    fake_package(tmp_path, "keras", "3.8.0")
    line = last_line(import_keras_sugar(tmp_path, "jax"))
    assert line == (
        f"ImportError: keras-sugar needs Keras >= {versions.KERAS}, but "
        f"Keras 3.8.0 is installed. Upgrade it with: pip install "
        f"\"keras>={versions.KERAS}\"")


@pytest.mark.parametrize("backend,old", [
    ("jax", "0.4.29"), ("tensorflow", "2.15.1"), ("torch", "2.12.1")])
def test_backend_below_its_floor_is_refused_in_one_line(tmp_path, backend,
                                                        old):
    fake_package(tmp_path, backend, old)
    line = last_line(import_keras_sugar(tmp_path, backend))
    floor = versions.BACKENDS[backend][2]
    assert line.startswith(
        f"ImportError: keras-sugar's {backend} backend needs {backend} >= "
        f"{floor}, but {backend} {old} is installed. Upgrade it with: ")
    assert "KERAS_BACKEND" in line


def test_a_backend_not_selected_is_not_checked(tmp_path):
    # An old torch beside the selected backend is no concern.
    fake_package(tmp_path, "torch", "1.0.0")
    proc = import_keras_sugar(tmp_path, "jax")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_running_versions_pass():
    versions.check(None)  # Keras is imported: its own backend is checked.


def declared_floors():
    """`{distribution: lowest version}` from pyproject.toml's `>=`s."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+.
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values()
        for r in extra]
    floors = {}
    for text in requirements:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                floors[requirement.name] = spec.version
    return floors


def constraints():
    """`{distribution: version}` pinned by constraints-floors.txt."""
    pins = {}
    with open(CONSTRAINTS) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, version = re.fullmatch(r"([\w.\-]+)==(\S+)",
                                             line).groups()
                pins[name] = version
    return pins


def test_every_declared_floor_is_pinned_in_the_constraints_file():
    floors, pins = declared_floors(), constraints()
    assert {name: pins.get(name) for name in floors} == floors


def test_the_import_check_uses_the_declared_floors():
    floors = declared_floors()
    assert versions.KERAS == floors["keras"]
    assert versions.BACKENDS["jax"][2] == floors["jax"]
    assert versions.BACKENDS["tensorflow"][2] == floors["tensorflow-cpu"]
    assert versions.BACKENDS["torch"][2] == floors["torch"]

"""What a new user meets first: the command's help, the choice of backend on
a machine without TensorFlow, and missing optional packages named with
their install command.

A missing package is simulated in a fresh interpreter: a `sitecustomize`
sets `sys.modules[name] = None`, which makes both `import name` and
`importlib.util.find_spec(name)` report it absent.
"""

import os
import subprocess
import sys

import pytest

from keras_sugar import backend_selection
from keras_sugar.experiments import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = os.path.join(os.path.dirname(sys.executable), "keras-sugar")
BACKENDS = ("tensorflow", "jax", "torch")

SITECUSTOMIZE = """
import os, sys
for name in os.environ["HIDDEN_MODULES"].split(","):
    sys.modules[name] = None
"""


def run_without(hidden, args, tmp_path, **env_vars):
    """Runs `args` with the `hidden` modules absent, no KERAS_BACKEND and
    an empty Keras home (no keras.json), or `env_vars` set."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(HIDDEN_MODULES=",".join(hidden), KERAS_HOME=str(
        tmp_path / "keras_home"), PYTHONPATH=os.pathsep.join(
            [str(tmp_path), ROOT]), **env_vars)
    return subprocess.run(args, capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("args", [
    ["--help"], ["compare", "--help"], ["--backend", "jax", "compare",
                                        "--help"],
    ["bench", "--help"], ["plot", "--help"]])
def test_help_needs_no_keras_and_no_backend(args, tmp_path):
    proc = run_without(("keras",) + BACKENDS, [COMMAND, *args], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # No backend log noise.
    assert "usage: keras-sugar" in proc.stdout
    if args[-2:] == ["compare", "--help"]:
        # Every default is shown, the model builders' included.
        for shown in ("(default: mnist1d)", "(default: 30)",
                      "(default: 0.005)", "width=0.125", "(default: 5)",
                      "paper-resnet18-cifar100"):
            assert shown in " ".join(proc.stdout.split()), shown


def test_python_m_help_needs_no_keras_either(tmp_path):
    proc = run_without(("keras",) + BACKENDS, [
        sys.executable, "-m", "keras_sugar", "compare", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(default: mnist1d)" in proc.stdout


def test_import_without_tensorflow_picks_an_installed_backend(tmp_path):
    proc = run_without(("tensorflow",), [
        sys.executable, "-c",
        "import keras_sugar, keras; print(keras.backend.backend())"],
        tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "jax"  # The first installed one.


def test_a_keras_json_backend_not_installed_gives_way(tmp_path):
    # Keras writes keras.json with the backend it first ran with, maybe
    # in another environment.
    (tmp_path / "keras_home").mkdir()
    (tmp_path / "keras_home" / "keras.json").write_text(
        '{"backend": "jax"}')
    proc = run_without(("jax",), [
        sys.executable, "-c",
        "import keras_sugar, keras; print(keras.backend.backend())"],
        tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "tensorflow"  # The first installed.


def test_command_without_tensorflow_runs_on_an_installed_backend(tmp_path):
    out = tmp_path / "s.png"
    proc = run_without(("tensorflow",), [
        sys.executable, "-m", "keras_sugar", "plot", "--out", str(out),
        "--surrogates", "nelu"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists()


FIRST = "the first installed of tensorflow, jax, torch"


@pytest.mark.parametrize("hidden, env, keras_json, args, expected", [
    ((), {}, None, [], f"tensorflow ({FIRST}; choose another with "
     f"KERAS_BACKEND or --backend)"),
    (("tensorflow",), {}, None, [], f"jax ({FIRST}; choose another with "
     f"KERAS_BACKEND or --backend)"),
    ((), {"KERAS_BACKEND": "torch"}, None, [], "torch (KERAS_BACKEND=torch)"),
    ((), {}, "jax", [], "jax (set in {home}/keras.json)"),
    (("jax",), {}, "jax", [], f"tensorflow ({FIRST}: jax, set in "
     "{home}/keras.json, is not installed)"),
    ((), {"KERAS_BACKEND": "tensorflow"}, None, ["--backend", "jax"],
     "jax (--backend jax)"),
])
def test_the_command_says_first_which_backend_runs_and_why(
        hidden, env, keras_json, args, expected, tmp_path):
    # An extra such as [hub] brings TensorFlow along, and with nothing set
    # the command runs on it: its first line says so, and why.
    home = tmp_path / "keras_home"
    if keras_json:
        home.mkdir()
        (home / "keras.json").write_text(f'{{"backend": "{keras_json}"}}')
    proc = run_without(hidden, [COMMAND, *args, "plot", "--out",
                                str(tmp_path / "s.png"), "--surrogates",
                                "nelu"], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    assert first == "keras-sugar: Keras backend " + expected.format(
        home=home)


def test_no_backend_at_all_says_how_to_install_one(tmp_path):
    proc = run_without(BACKENDS, [sys.executable, "-c", "import keras_sugar"],
                       tmp_path)
    assert proc.returncode != 0
    assert "No Keras backend is installed" in proc.stderr
    assert 'pip install "keras-sugar[jax]"' in proc.stderr


def test_requested_backend_missing_is_one_line_and_status_2(tmp_path):
    proc = run_without(("torch",), [
        COMMAND, "--backend", "torch", "plot", "--out",
        str(tmp_path / "s.png")], tmp_path)
    assert proc.returncode == 2
    assert "The torch backend is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--model", "mlp", "--model-kwargs", "width=2"],
     "Unknown keyword(s) ['width'] for model 'mlp'"),
    (["--model-kwargs", "foo"], "item 'foo' is not of the form key=value"),
    (["--seeds", "a,b"], "'a,b' is neither a count"),
    (["--epochs", "0"], "'0' is not an integer >= 1"),
    (["--model-kwargs", "layout=vgg99"], "Unknown VGG layout 'vgg99'"),
    (["--out", os.path.abspath(__file__)], "is a file; results go in a "
     "folder"),
])
def test_bad_compare_arguments_are_one_line_and_status_2(args, message,
                                                         tmp_path):
    # Refused before Keras starts: Keras and the backends are absent.
    proc = run_without(("keras",) + BACKENDS, [COMMAND, "compare", *args],
                       tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_package_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.delitem(sys.modules, "mnist1d.data", raising=False)
    with pytest.raises(ImportError, match=r'pip install "keras-sugar\[data]"'):
        datasets.load("mnist1d")


def test_example_help_is_whole_and_names_its_extras(tmp_path):
    proc = run_without(("keras",) + BACKENDS, [
        sys.executable, os.path.join(ROOT, "examples",
                                     "sugarify_backbone.py"), "--help"],
        tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = " ".join(proc.stdout.split())
    assert 'pip install "keras-sugar[cv]"' in text
    assert "the data is generated." in text


def test_example_without_its_library_names_the_extra(tmp_path):
    proc = run_without(("keras_cv",), [
        sys.executable, os.path.join(ROOT, "examples",
                                     "sugarify_backbone.py"), "--library",
        "cv"], tmp_path)
    assert proc.returncode != 0
    assert 'This example needs keras_cv: pip install "keras-sugar[cv]"' in (
        proc.stderr)
    assert "Traceback" not in proc.stderr


@pytest.mark.inference
@pytest.mark.parametrize("command", ["compare", "bench"])
@pytest.mark.parametrize("how", ["--backend", "KERAS_BACKEND"])
@pytest.mark.parametrize("backend", backend_selection.INFERENCE_ONLY)
def test_training_commands_refuse_an_inference_only_backend(
        command, how, backend, tmp_path):
    env = dict(os.environ, KERAS_HOME=str(tmp_path))
    args = [COMMAND, command]
    if how == "--backend":
        args += ["--backend", backend]
    else:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run(args, capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"keras-sugar {command}: error: {command} trains models, and "
        f"Keras' {backend} backend runs inference only (it has no "
        f"autodiff). Choose one of tensorflow, jax, torch with --backend "
        f"or KERAS_BACKEND.")
    assert proc.stdout == ""  # Refused before anything starts.

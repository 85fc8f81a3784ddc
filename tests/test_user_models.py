"""Comparing activations on one's own model: a function from a file or a
module, a saved `.keras` ReLU model fine-tuned from its weights, or, from
Python, a function or a model object on arrays; and every bad input
refused in one line, exit 2, before anything trains."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sugar.experiments import compare
from keras_sugar.experiments import compare_models
from keras_sugar.experiments import datasets
from keras_sugar.experiments import user_models
from keras_sugar.experiments.compare_settings import Settings
from keras_sugar.site_map import count_sugar_sites
from tests.test_compare import _cli
from tests.testing import runs_begun_by_workers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NETS = '''
import keras


def build(input_shape, num_classes, activation, units=16):
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Flatten(),
        keras.layers.Dense(units, activation=activation),
        keras.layers.Dense(num_classes)])


def no_contract(shape):
    return shape


def not_a_model(input_shape, num_classes, activation):
    return "a model"


def three_outputs(input_shape, num_classes, activation):
    return build(input_shape, 3, activation)


def ignores_activation(input_shape, num_classes, activation):
    return build(input_shape, num_classes, "relu")


def fixed_input(input_shape, num_classes, activation):
    return build((5, 5, 1), num_classes, activation)


def probabilities(input_shape, num_classes, activation):
    return keras.Sequential([build(input_shape, num_classes, activation),
                             keras.layers.Softmax()])
'''
SMALL = ["--data", "digits", "--epochs", "1", "--seeds", "2",
         "--activations", "relu,sugar:bsilu", "--quiet"]


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


def relu_net(input_shape=(8, 8, 1), activation="relu", num_classes=10):
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Flatten(),
        keras.layers.Dense(16, activation=activation),
        keras.layers.Dense(16, activation=activation),
        keras.layers.Dense(num_classes)])


def saved(tmp_path, model, name="net.keras"):
    path = tmp_path / name
    model.save(path)
    return str(path)


def test_a_function_in_a_file_with_workers_a_folder_and_resume(nets,
                                                               tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "-m", "keras_sugar", "compare", "--model",
               f"{nets}:build", "--model-kwargs", "units=8", *SMALL,
               "--out", str(out)]
    # Two worker processes, each importing the file by its path.
    proc = subprocess.run([*command, "--jobs", "2"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert runs_begun_by_workers(proc.stdout) == 4
    assert f"{nets}:build on digits" in proc.stdout
    with open(out / "results.json") as f:
        results = json.load(f)
    assert results["config"]["model"] == f"{nets}:build"
    source = results["config"]["model_source"]
    assert source["file"] == str(nets)
    assert len(source["sha256"]) == 64
    assert len(results["runs"]) == 4
    assert not (out / "claims").exists()  # No lock files left behind.
    # The same file resumes (nothing to train); a changed one is refused.
    proc = subprocess.run([*command, "--resume"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run 1/" not in proc.stdout
    nets.write_text(NETS.replace("units=16", "units=32"))
    proc = subprocess.run([*command, "--resume"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 2
    assert f"Cannot resume {out}: its runs used other settings " \
           f"(model_source: " in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_function_in_a_module_of_the_current_folder(tmp_path,
                                                      monkeypatch):
    package = tmp_path / "my_sugar_nets"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "small.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != ""])
    for name in ("my_sugar_nets", "my_sugar_nets.small"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    summary, runs = compare.run(data="digits", model="my_sugar_nets.small:build",
                                activations=("relu", "sugar:elu"),
                                seeds=(0, 1), epochs=1, verbose=0)
    assert [row["activation"] for row in summary] == ["relu", "sugar:elu"]
    assert len(runs) == 4
    record = user_models.record("my_sugar_nets.small:build")
    assert record["file"] == str(package / "small.py")


def _trainer(data, model, spec):
    """The comparison's trainer of `spec` for `model`, one epoch a run."""
    settings = Settings.create(data="digits", model=model, activations=(spec,),
                               epochs=1, lr=0.05, momentum=0.9)
    return compare.Trainer(data, settings, settings.specs[0])


def test_each_seed_of_a_function_starts_from_its_own_weights(nets):
    data = datasets.load("digits")
    trainer = _trainer(data, f"{nets}:build", "sugar:bsilu")
    trainer.reset(0)
    first = trainer.model.get_weights()
    trainer.reset(1)
    assert not np.array_equal(first[0], trainer.model.get_weights()[0])
    assert count_sugar_sites(trainer.model) == 1


def test_a_saved_model_is_fine_tuned_from_its_saved_weights(tmp_path):
    model = relu_net()
    path = saved(tmp_path, model)
    data = datasets.load("digits")
    trainers = {spec: _trainer(data, path, spec)
                for spec in ("relu", "sugar:elu")}
    # relu is the model as saved; sugar:elu the same through sugarify.
    assert count_sugar_sites(trainers["relu"].model) == 0
    assert count_sugar_sites(trainers["sugar:elu"].model) == 2
    for trainer in trainers.values():
        for seed in (0, 3):  # Every seed starts from the saved weights.
            trainer.reset(seed)
            for got, want in zip(trainer.model.get_weights(),
                                 model.get_weights()):
                np.testing.assert_array_equal(got, want)
    # What a seed changes is the order of the batches.
    runs = [trainers["relu"].run(seed, verbose=0) for seed in (0, 1)]
    assert runs[0].curves["loss"] != runs[1].curves["loss"]
    summary, _ = compare.run(data="digits", model=path, verbose=0, epochs=1,
                             activations=("relu", "sugar:elu"), seeds=2)
    assert summary[1]["accuracy_verdict"] in ("better", "worse",
                                              "no evidence")


def test_compare_models_from_python(tmp_path, capsys):
    def small_net(input_shape, num_classes, activation, units=8):
        return keras.Sequential([
            keras.Input(input_shape), keras.layers.Flatten(),
            keras.layers.Dense(units, activation=activation),
            keras.layers.Dense(num_classes)])

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    rows = compare_models(small_net, (x, y), seeds=2, epochs=1,
                          activations=("relu", "sugar:bsilu", "gelu"),
                          units=4, out=str(tmp_path / "out"))
    assert [row["activation"] for row in rows] == ["relu", "sugar:bsilu",
                                                   "gelu"]
    assert rows[1]["accuracy_verdict"] in ("better", "worse", "no evidence")
    assert rows[2]["dead_units_verdict"] == "n/a"
    printed = capsys.readouterr().out
    assert "p (Holm)" in printed and "Holm-adjusted" in printed
    with open(tmp_path / "out" / "results.json") as f:
        config = json.load(f)["config"]
    assert config["model"].endswith("small_net")
    assert config["data"].startswith("arrays train=(")
    assert ", 6, 1) sha256:" in config["data"]
    assert config["model_kwargs"] == {"units": 4}
    # Resuming with other arrays is refused: they are named by a hash.
    with pytest.raises(ValueError, match="its runs used other settings "
                       r"\(data: 'arrays"):
        compare_models(small_net, (x + 1, y), seeds=2, epochs=1,
                       activations=("relu", "sugar:bsilu", "gelu"),
                       units=4, out=str(tmp_path / "out"), resume=True,
                       verbose=0)
    # A model object: fine-tuned on copies, the object itself untouched.
    model = relu_net(input_shape=(6, 1), num_classes=2)
    before = model.get_weights()
    rows = compare_models(model, ((x[:200], y[:200]), (x[200:], y[200:])),
                          activations=("relu", "sugar:nelu"), seeds=2,
                          epochs=1, verbose=0)
    assert rows[1]["activation"] == "sugar:nelu"
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="--jobs 2 needs a model its "
                       "worker processes can import"):
        compare_models(small_net, (x, y), jobs=2, out=str(tmp_path / "j"))


def _bad_models(tmp_path, nets):
    no_relu = saved(tmp_path, relu_net(activation="tanh"), "tanh.keras")
    flat = saved(tmp_path, relu_net(input_shape=(4,)), "flat.keras")
    good = saved(tmp_path, relu_net(), "good.keras")
    return {
        "missing file": ([f"{tmp_path}/nowhere.py:build"],
                         f"No such model file: {tmp_path}/nowhere.py"),
        "missing function": ([f"{nets}:nope"], f"{tmp_path}/nets.py has no "
                             f"function 'nope' (from --model {nets}:nope). "
                             f"Its functions: ['build', 'fixed_input', "
                             f"'ignores_activation', 'no_contract', "
                             f"'not_a_model', 'probabilities', "
                             f"'three_outputs']"),
        "missing module": (["nowhere_pkg_x.nets:build"],
                           "Cannot import module 'nowhere_pkg_x.nets' (from "
                           "--model nowhere_pkg_x.nets:build): no module "
                           "named 'nowhere_pkg_x'"),
        "no contract": ([f"{nets}:no_contract"],
                        "must take the builders' arguments (input_shape, "
                        "num_classes, activation, **model_kwargs); its "
                        "signature is no_contract(shape)"),
        "not a model": ([f"{nets}:not_a_model"],
                        "not_a_model returned str 'a model', not a Keras "
                        "model"),
        "output": ([f"{nets}:three_outputs"],
                   "gives outputs of shape (None, 3), but the data has 10 "
                   "classes"),
        "softmax": ([f"{nets}:probabilities"], "ends in a softmax"),
        "activation ignored": ([f"{nets}:ignores_activation"],
                               "ignores its activation argument"),
        "input shape": ([f"{nets}:fixed_input"],
                        "takes inputs of shape (5, 5, 1), but the data's "
                        "examples have shape (8, 8, 1)"),
        "saved without ReLUs": ([no_relu], f"{no_relu} has no ReLU that "
                                "sugarify can reach"),
        "saved input shape": ([flat], f"{flat} takes inputs of shape (4,), "
                              "but the data's examples have shape (8, 8, 1)"),
        "saved forward GELU": ([good, "--activations", "relu,gelu"],
                               "its activations can be relu (the model as "
                               "saved) or sugar:<surrogate>"),
        "saved keywords": ([good, "--model-kwargs", "units=3"],
                           "A saved model takes no keyword arguments"),
        "unknown name": (["vgg19"], "Unknown model 'vgg19'. Valid choices: "
                         "a name of ['mlp', 'resnet', 'transformer', "
                         "'vgg'], FILE.py:FUNCTION"),
        "file without function": ([str(nets)], f"--model {nets} names a "
                                  "file but not its function"),
    }


BAD = ["missing file", "missing function", "missing module", "no contract",
       "not a model", "output", "softmax", "activation ignored",
       "input shape", "saved without ReLUs", "saved input shape",
       "saved forward GELU", "saved keywords", "unknown name",
       "file without function"]


@pytest.mark.parametrize("case", BAD)
def test_bad_models_fail_in_one_line_before_training(case, nets, tmp_path,
                                                     capsys, monkeypatch):
    monkeypatch.setattr(compare.Trainer, "run", None)  # Must not be reached.
    monkeypatch.setattr(sys, "path", list(sys.path))
    args, message = _bad_models(tmp_path, nets)[case]
    status, out, err = _cli(["compare", *SMALL, "--model", *args], capsys)
    assert status == 2, err
    assert message in err
    assert "Traceback" not in err and "run 1/" not in out
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert message in line


def test_arrays_in_both_forms():
    x = np.arange(60, dtype="float32").reshape(30, 2)
    y = np.arange(30) % 3
    data = datasets.from_arrays((x, y))
    assert (len(data.x_train), len(data.x_test)) == (24, 6)
    assert sorted(np.bincount(data.y_test)) == [2, 2, 2]  # Stratified.
    split = datasets.from_arrays(((x[:20], y[:20]), (x[20:], y[20:])))
    np.testing.assert_array_equal(split.y_test, y[20:])
    with pytest.raises(ValueError, match="data must be a dataset name or "
                       "path, .x, y. arrays or"):
        datasets.from_arrays(x)

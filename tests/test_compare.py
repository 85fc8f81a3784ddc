"""The comparison harness: specs, one run's numbers, reuse of a compiled
model across seeds, files written as runs end, resume, argument checks and
the command line."""

import errno
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from keras_sugar import SugarReLU
from keras_sugar.experiments import compare
from keras_sugar.experiments import cli
from keras_sugar.experiments import datasets
from keras_sugar.experiments import interruption
from keras_sugar.experiments import results_folder
from keras_sugar.experiments.compare_settings import Settings
from keras_sugar.experiments.run_result import RunResult
from tests.testing import command_line as _cli
from tests.testing import runs_begun_by_workers
from tests.testing import trained_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("spec, expected", [
    ("relu", keras.activations.relu), ("gelu", keras.activations.gelu),
    ("sugar:bsilu", SugarReLU("bsilu")),
    ("sugar:nelu:alpha=0.1", SugarReLU("nelu", alpha=0.1)),
    ("sugar:gelu:approximate=true", SugarReLU("gelu", approximate=True)),
])
def test_parse_activation(spec, expected):
    assert compare.parse_activation(spec) == expected


@pytest.mark.parametrize("spec, match", [
    ("sugar:", "not of the form"), ("sugar:nelu:alpha=big", "'big'"),
    ("sugar:nope", "Unknown surrogate 'nope'"),
    ("sugar:nelu:beta=1", r"Unknown parameter\(s\) \['beta'\]"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        compare.parse_activation(spec)


def _settings(spec="relu", model="mlp", **kwargs):
    """The settings of a small comparison of `spec`: `Settings.create`'s
    keywords (model keywords among them)."""
    return Settings.create("digits", model=model, activations=(spec,),
                           **kwargs)


def _trainer(data, spec="relu", model="mlp", **kwargs):
    settings = _settings(spec, model, **kwargs)
    return compare.Trainer(data, settings, settings.specs[0])


def test_one_run_reports_what_the_model_does():
    data = datasets.load("digits")
    settings = _settings("sugar:bsilu", epochs=2, batch_size=64, lr=0.1,
                         depth=2, units=32)
    result = compare.train_once(data, settings, settings.specs[0], seed=0,
                                verbose=0)
    assert result.key == ("sugar:bsilu", 0)
    assert result.test_accuracy > 0.5  # digits is easy
    assert 0.0 <= result.dead_units <= 1.0
    assert 0.0 < result.sparsity < 1.0
    assert len(result.curves["val_accuracy"]) == 2
    # The test accuracy is the model's, evaluated after training.
    trainer = compare.Trainer(data, settings, settings.specs[0])
    trainer.run(0, verbose=0)
    _, accuracy = trainer.model.evaluate(data.x_test, data.y_test, verbose=0)
    assert result.test_accuracy == pytest.approx(accuracy, abs=1e-6)
    gelu = _settings("gelu", epochs=1, batch_size=64, lr=0.1, depth=2,
                     units=32)
    gelu = compare.train_once(data, gelu, gelu.specs[0], seed=0, verbose=0)
    assert gelu.dead_units is None  # GELU has no rectified units
    # Its JSON form is what runs.jsonl and results.json hold.
    assert RunResult.from_json(json.loads(json.dumps(
        result.to_json()))) == result


def test_a_reused_model_trains_exactly_like_a_fresh_one():
    # Compiled once per activation, reset per seed: the run must be the
    # one a new model would make (weights, optimizer state and batches).
    data = datasets.load("digits")
    kwargs = dict(lr=0.05, epochs=2, batch_size=64, depth=2, units=32)
    reused = _trainer(data, "sugar:elu", **kwargs)
    reused.run(0, verbose=0)
    second = reused.run(1, verbose=0)
    fresh = _trainer(data, "sugar:elu", **kwargs)
    alone = fresh.run(1, verbose=0)
    for a, b in zip(reused.model.get_weights(), fresh.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert second.curves == alone.curves


def test_same_seed_same_initial_weights_for_every_activation():
    data = datasets.load("digits")
    weights = []
    for spec in ("relu", "sugar:elu"):
        trainer = _trainer(data, spec, "vgg", lr=0.01, layout=[4, "M", 8],
                           width=1.0)
        trainer.reset(3)
        weights.append(trainer.model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_python_run_uses_the_command_line_defaults(monkeypatch):
    from keras_sugar.experiments.compare_command import DEFAULTS

    # One settings object, made the same way from Python and from the
    # command line: no signature repeated, no value passed by position.
    made = []
    monkeypatch.setattr(compare.Comparison, "run",
                        lambda self, verbose=1: made.append(self.settings))
    compare.run()
    args = cli.parser().parse_args(["compare"])
    assert made[0] == Settings.from_args(args)
    for key, value in DEFAULTS.items():
        assert getattr(made[0], key) == value, key
    assert DEFAULTS["seeds"] == (0, 1, 2, 3, 4)  # As in the paper.
    # Keywords that are not settings go to the model builder.
    settings = Settings.create("digits", model="mlp", depth=2, seeds=3,
                               activations="relu,gelu")
    assert settings.model_kwargs == {"depth": 2}
    assert settings.seeds == (0, 1, 2)
    assert settings.activations == ("relu", "gelu")


def _record(activation, seed):
    return RunResult(activation, seed, 0.9, 0.3, 0.1, 0.5, 1, 0.9, 1.0, 2.0,
                     {"loss": [0.3]})


def test_output_to_a_file_is_one_line_per_run_and_names_the_backend(
        tmp_path):
    # A log file or a batch job: no progress bar, whose every update would
    # be a line of its own; the backend and why, before anything else.
    backend = keras.backend.backend()
    proc = subprocess.run(
        [sys.executable, "-m", "keras_sugar", "compare", "--data", "digits",
         "--model", "mlp", "--model-kwargs", "depth=1,units=8", "--epochs",
         "3", "--seeds", "2", "--activations", "relu"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env=dict(os.environ, KERAS_BACKEND=backend))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"keras-sugar: Keras backend {backend} "
                        f"(KERAS_BACKEND={backend})")
    assert "\r" not in proc.stdout and "\b" not in proc.stdout
    assert "/step" not in proc.stdout and "Epoch" not in proc.stdout
    assert len([line for line in lines if " seed " in line]) == 4
    assert len(lines) < 30


def test_offline_keras_datasets_name_the_url_and_the_file(tmp_path):
    # No network: downloads go to a proxy nobody listens at.
    unreachable = "http://127.0.0.1:9"
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "home"),
               https_proxy=unreachable, HTTPS_PROXY=unreachable,
               http_proxy=unreachable, HTTP_PROXY=unreachable, no_proxy="",
               NO_PROXY="")
    home = tmp_path / "home" / "datasets"
    for args, url, cache, instead in [
        (["--data", "mnist"], "https://storage.googleapis.com/tensorflow/"
         "tf-keras-datasets/mnist.npz", home / "mnist.npz", "mnist.npz"),
        (["--preset", "paper-vgg16-cifar10"],
         "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
         home / "cifar-10-batches-py-target_archive",
         "cifar-10-python.tar.gz")]:
        proc = subprocess.run(
            [sys.executable, "-m", "keras_sugar", "compare", *args,
             "--quiet"], capture_output=True, text=True, cwd=ROOT,
            timeout=600, env=env)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("keras-sugar compare: error: Cannot download "
                               f"the {args[1].split('-')[-1]} data from "
                               f"{url} (")
        assert last.endswith(f"download that file elsewhere and put it at "
                             f"{cache}, or pass the downloaded file as "
                             f"--data {instead}.")


def test_a_run_appended_after_a_torn_line_starts_its_own(tmp_path):
    """A process killed while writing leaves a line without its end; the
    next process's record must not be glued onto it (and lost)."""
    folder = results_folder.ResultsFolder(str(tmp_path))
    first = _record("relu", 0)
    with open(folder.file(results_folder.RUNS), "w") as f:
        f.write(json.dumps(first.to_json()) + "\n"
                + '{"activation": "gelu", "se')
    second = _record("relu", 1)
    folder.append(second)
    assert folder.runs() == [first, second]
    with open(folder.file(results_folder.RUNS)) as f:
        assert f.read() == "".join(json.dumps(run.to_json()) + "\n"
                                   for run in (first, second))


def test_each_run_is_on_disk_as_it_ends_and_resume_runs_the_rest(
        tmp_path, monkeypatch):
    out = str(tmp_path / "results")
    specs = ("relu", "sugar:bsilu")
    summary, runs = compare.run(data="digits", activations=specs,
                                seeds=(0, 1), out=out, verbose=0, **_small())
    folder = results_folder.ResultsFolder(out)
    assert [r.key for r in folder.runs()] == [
        ("relu", 0), ("relu", 1), ("sugar:bsilu", 0), ("sugar:bsilu", 1)]
    with open(os.path.join(out, "results.json")) as f:
        saved = json.load(f)
    assert saved["summary"] == json.loads(json.dumps(summary))
    assert saved["summary"][0]["accuracy_delta_ci"] == [0.0, 0.0]
    assert saved["statistics"]["method"] == "holm"
    assert not os.path.exists(folder.file("claims"))  # No lock files left.
    assert saved["statistics"]["alpha"] == 0.05
    # Interrupted after the first run, killed while writing the second.
    with open(folder.file(results_folder.RUNS)) as f:
        lines = f.read().splitlines()
    with open(folder.file(results_folder.RUNS), "w") as f:
        f.write(lines[0] + "\n" + lines[1][:40])
    trained = trained_runs(monkeypatch)
    with pytest.raises(ValueError, match="already holds a comparison"):
        compare.run(data="digits", activations=specs, seeds=(0, 1), out=out,
                    verbose=0, **_small())
    _, resumed = compare.run(data="digits", activations=specs, seeds=(0, 1),
                             out=out, resume=True, verbose=0, **_small())
    assert trained == [("relu", 1), ("sugar:bsilu", 0), ("sugar:bsilu", 1)]
    # The finished run is kept.
    assert resumed[0] == RunResult.from_json(json.loads(lines[0]))
    # Same seeds, same data order: the rerun runs are the same runs.
    for before, after in zip(runs[1:], resumed[1:]):
        assert after.curves == before.curves
    # Nothing missing: resume only rebuilds the table and files.
    trained.clear()
    compare.run(data="digits", activations=specs, seeds=(0, 1), out=out,
                resume=True, verbose=0, **_small())
    assert trained == []


def _small():
    return dict(model="mlp", depth=2, units=16, epochs=1, batch_size=128,
                lr=0.05)


def test_resume_with_other_settings_names_them(tmp_path):
    out = str(tmp_path / "results")
    compare.run(data="digits", activations=("relu",), seeds=(0,), out=out,
                verbose=0, **_small())
    with pytest.raises(ValueError, match=r"epochs: 1 on disk, 2 now"):
        compare.run(data="digits", activations=("relu",), seeds=(0,),
                    out=out, resume=True, verbose=0,
                    **{**_small(), "epochs": 2})
    # --overwrite starts over.
    compare.run(data="digits", activations=("gelu",), seeds=(0,), out=out,
                overwrite=True, verbose=0, **_small())
    runs = results_folder.ResultsFolder(out).runs()
    assert [r.activation for r in runs] == ["gelu"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), r"epochs must be an integer >= 1. Received: epochs=0"),
    (dict(batch_size=2.5), r"batch_size=2.5"),
    (dict(lr=float("nan")), r"lr must be a finite number >= 0"),
    (dict(momentum=1.5), r"momentum must be a number in \[0, 1\]"),
    (dict(seeds=()), r"seeds must be a count from 1 to 10000 .* or a list "
     r"of distinct integer seeds from 0 to 4294967295"),
    (dict(seeds=5_000_000_000), r"Received: seeds=5000000000"),
    (dict(seeds=(0, -5)), r"Received: seeds=\(0, -5\)"),
    (dict(seeds=(1, 1)), r"seeds must be .* distinct integer seeds"),
    (dict(activations=("relu", "sugar:nope")), r"Unknown surrogate 'nope'"),
    (dict(activations=()), r"at least one activation"),
    (dict(activations=("relu", "gelu", "relu")),
     r"activations must be distinct: 'relu' is repeated"),
    (dict(model="vgg", layout="vgg99"), r"Unknown VGG layout 'vgg99'"),
    (dict(data="nothing.npz"), r"No such data file or folder: nothing.npz"),
])
def test_bad_settings_fail_before_any_training(kwargs, message, monkeypatch):
    monkeypatch.setattr(compare.Trainer, "run", None)  # Must not be reached.
    settings = {"data": "digits", **_small(), **kwargs}
    if settings["model"] != "mlp":
        del settings["depth"], settings["units"]
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        compare.run(verbose=0, **settings)


def test_a_model_that_cannot_take_the_data_fails_before_training(tmp_path):
    path = tmp_path / "volumes.npz"
    np.savez(path, x_train=np.zeros((4, 2, 2, 2, 2)), y_train=[0, 1, 0, 1],
             x_test=np.zeros((2, 2, 2, 2, 2)), y_test=[0, 1])
    with pytest.raises(ValueError, match=r"Received: input_shape=\(2, 2, 2, "
                       r"2\)"):
        compare.prepare(Settings.create(str(path), model="vgg"))


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "argument --epochs: '0' is not an integer >= 1"),
    (["--batch-size", "-3"], "argument --batch-size: '-3' is not an integer"),
    (["--lr", "nan"], "argument --lr: 'nan' is not a finite number >= 0"),
    (["--lr", "-1"], "argument --lr: '-1' is not a finite number >= 0"),
    (["--momentum", "2"], "argument --momentum: '2' is not a number in"),
    (["--seeds", "0"], "argument --seeds: '0' is not a count from 1 to "
     "10000"),
    (["--seeds", "1,1"], "argument --seeds: '1,1' is not a count from 1 to "
     "10000 (3 = seeds 0, 1, 2) or a list of distinct integer seeds from 0 "
     "to 4294967295"),
    (["--model-kwargs", "layout=vgg99"], "Unknown VGG layout 'vgg99'"),
    (["--model-kwargs", "width=0"], "model 'vgg' takes width as a number "
     "> 0 (default 0.125). Received: width=0"),
    (["--resume"], "--resume and --overwrite need --out."),
    (["--preset", "paper-vgg99"], "argument --preset: invalid choice"),
    (["--data", "nowhere/data.npz"], "No such data file or folder"),
    (["--activations", "relu,sugar:nope"], "Unknown surrogate 'nope'"),
    (["--activations", "relu,gelu,relu"],
     "activations must be distinct: 'relu' is repeated"),
    (["--jobs", "0"], "argument --jobs: '0' is not an integer >= 1"),
    (["--jobs", "two"], "argument --jobs: 'two' is not an integer >= 1"),
    (["--jobs", "1.5"], "argument --jobs: '1.5' is not an integer >= 1"),
    (["--jobs", "2"], "--jobs 2 needs --out"),
    (["--validation", "0.9"], "argument --validation: '0.9' is not a "
     "number in [0, 0.5]"),
    (["--alpha", "0"], "argument --alpha: '0' is not a number in (0, 0.5]"),
    (["--alpha", "0.6"], "argument --alpha: '0.6' is not a number in"),
])
def test_command_line_errors_are_one_line_and_status_2(args, message, capsys):
    status, out, err = _cli(["compare", *args], capsys)
    assert status == 2
    assert message in err
    assert "Traceback" not in err and "run 1/" not in out


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,-5"], "argument --seeds: '0,-5': seed -5 is not an "
     "integer from 0 to 4294967295"),
    (["--seeds", "4294967296,1"], "argument --seeds: '4294967296,1': seed "
     "4294967296 is not an integer from 0 to 4294967295"),
    (["--seeds", "-1"], "argument --seeds: '-1': seed -1 is not an integer "
     "from 0 to 4294967295"),
    (["--seeds", "5000000000"], "argument --seeds: '5000000000' is too "
     "many seeds: a count is at most 10000"),
    (["--model", "mlp", "--model-kwargs", "depth=1.5"],
     "model 'mlp' takes depth as an integer >= 1 (default 4). Received: "
     "depth=1.5"),
    (["--model", "vgg", "--model-kwargs", "layout=3"],
     "model 'vgg' takes layout as a layout name or a list like [64, 'M', "
     "128] (default 'vgg16'). Received: layout=3"),
    (["--model", "mlp", "--model-kwargs", "units=0"],
     "model 'mlp' takes units as an integer >= 1"),
])
def test_bad_arguments_are_one_line_before_keras_starts(args, message,
                                                        capsys, monkeypatch):
    monkeypatch.setattr(compare.Trainer, "run", None)  # Must not be reached.
    status, out, err = _cli(["compare", "--data", "digits", *args], capsys)
    assert status == 2, err
    assert message in err
    assert "Traceback" not in err and "starting Keras" not in out


def test_an_explicit_model_replaces_the_presets_model_and_its_keywords():
    from keras_sugar.experiments.compare_command import PRESETS

    def settings(*args):
        return Settings.from_args(
            cli.parser().parse_args(["compare", *args]), PRESETS)

    preset = ["--preset", "paper-vgg16-cifar10"]
    assert settings(*preset).model_kwargs == {"layout": "vgg16",
                                             "width": 1.0}
    other = settings(*preset, "--model", "mlp")
    assert (other.model, other.model_kwargs) == ("mlp", {})
    assert (other.data, other.lr) == ("cifar10", 0.001)  # The rest stays.
    assert settings(*preset, "--model", "mlp", "--model-kwargs",
                    "depth=2").model_kwargs == {"depth": 2}
    # The preset's own model keeps its keywords, merged with the flag's.
    assert settings(*preset, "--model", "vgg", "--model-kwargs",
                    "width=0.5").model_kwargs == {"layout": "vgg16",
                                                  "width": 0.5}


# The command with a limit on the size of the files it writes: a write
# past it fails (EFBIG, "File too large") as on a full disk, partly
# written, wherever it comes from.
_WRITE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # Fail the write, not exit.
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from keras_sugar.experiments import cli
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="POSIX limits")
@pytest.mark.parametrize("name, kept", [
    ("runs.jsonl", 1),  # The second run cannot be appended.
    ("results.json", 2),  # Every run is on disk, the table is not.
])
def test_a_full_disk_is_one_line_and_loses_no_finished_run(
        tmp_path, capsys, name, kept):
    command = ["compare", "--data", "digits", "--model", "mlp",
               "--model-kwargs", "depth=1,units=8", "--epochs", "3",
               "--seeds", "2", "--activations", "relu", "--quiet"]
    # How long one run's line is, to set the limit between two files.
    measured = tmp_path / "measured"
    assert cli.main([*command, "--seeds", "1", "--out", str(measured)]) == 0
    line = len((measured / "runs.jsonl").read_bytes())
    config = len((measured / "config.json").read_bytes())
    limit = line * 3 // 2 if name == "runs.jsonl" else 2 * line + 100
    assert config < limit < len((measured / "results.json").read_bytes())
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-c", _WRITE_LIMITED, str(limit), *command,
         "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
        timeout=600)
    err = proc.stderr
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Cannot write {out / name}: [Errno "
                           f"{errno.EFBIG}] File too large."), last
    assert last.endswith(f"Finished runs: {kept} of 2, kept in "
                         f"{out / 'runs.jsonl'}: make room, then run the "
                         f"same command with --resume."), last
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert (out / "runs.jsonl").read_text().count("\n") == kept
    assert len(results_folder.ResultsFolder(str(out)).runs()) == kept
    assert _cli([*command, "--out", str(out), "--resume"], capsys)[0] == 0
    assert len(results_folder.ResultsFolder(str(out)).runs()) == 2
    assert (out / "results.json").exists()


def test_out_must_be_a_writable_folder_not_overwritten(tmp_path, capsys):
    file = tmp_path / "results.txt"
    file.write_text("mine")
    status, _, err = _cli(["compare", "--out", str(file)], capsys)
    assert status == 2 and "is a file; results go in a folder" in err
    folder = tmp_path / "done"
    folder.mkdir()
    (folder / results_folder.RUNS).write_text("")
    status, _, err = _cli(["compare", "--out", str(folder)], capsys)
    assert status == 2 and "Add --resume" in err and "--overwrite" in err
    status, _, err = _cli(["compare", "--out", str(folder), "--resume",
                           "--overwrite"], capsys)
    assert status == 2 and "contradict" in err
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        status, _, err = _cli(["compare", "--out", str(locked / "r")],
                              capsys)
        assert status == 2 and "cannot write in" in err


@pytest.mark.parametrize("config, reason", [
    ("", "it is empty"), ('{"backend": "ja', "not JSON: Unterminated string"),
    ("[1, 2]", "not a JSON object of settings but a list")])
def test_a_torn_config_is_named_with_what_to_do(tmp_path, capsys, config,
                                                reason):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / results_folder.CONFIG).write_text(config)
    (folder / results_folder.RUNS).write_text("")
    status, out, err = _cli(["compare", "--data", "digits", "--out",
                             str(folder), "--resume"], capsys)
    assert status == 2 and "Traceback" not in err and "run 1/" not in out
    assert (f"Cannot resume {folder}: {folder / 'config.json'} cannot be "
            f"read ({reason}") in err
    assert "Use --overwrite to start over" in err


def test_every_file_of_the_comparison_is_writable_before_training(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare.Trainer, "run", None)  # Must not be reached.
    command = ["compare", "--data", "digits", "--model", "mlp", "--epochs",
               "1", "--seeds", "1", "--activations", "relu", "--quiet"]
    folder = tmp_path / "results"
    (folder / "results.json").mkdir(parents=True)  # Written last.
    status, out, err = _cli([*command, "--out", str(folder)], capsys)
    assert status == 2 and "Traceback" not in err and "run 1/" not in out
    assert (f"{folder / 'results.json'} is a folder, where the comparison "
            f"writes a file") in err
    folder = tmp_path / "done"  # A comparison to resume, or so it says.
    folder.mkdir()
    (folder / results_folder.CONFIG).write_text("{}")
    runs = folder / results_folder.RUNS
    runs.write_text("")
    runs.chmod(0o444)
    # Root may write a read-only file anyway: the check asks os.access, so
    # it is answered as it is for every other user.
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        not (os.fspath(path) == str(runs) and mode & os.W_OK)
        and access(path, mode)))
    status, out, err = _cli([*command, "--out", str(folder), "--resume"],
                            capsys)
    assert status == 2 and "Traceback" not in err and "run 1/" not in out
    assert f"{runs} is read-only. Make it writable" in err


def test_bad_data_is_one_line_and_status_2(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((3, 2)), y_train=[0, -1, 1],
             x_test=np.zeros((1, 2)), y_test=[0])
    status, _, err = _cli(["compare", "--data", str(path), "--quiet"],
                          capsys)
    assert status == 2
    assert "bad.npz: y_train[1] = -1 is not a class label" in err
    assert "Traceback" not in err
    path = tmp_path / "missing.npz"
    np.savez(path, x_train=np.zeros((3, 2)))
    status, _, err = _cli(["compare", "--data", str(path)], capsys)
    assert status == 2
    assert "missing ['y_train', 'x_test', 'y_test']" in err
    assert "Traceback" not in err
    for name in ("cat", "dog"):  # An image folder, one image not one.
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "pets" / name / f"{i}.png").write_bytes(b"torn")
    status, _, err = _cli(["compare", "--data", str(tmp_path / "pets")],
                          capsys)
    assert status == 2 and "Traceback" not in err
    assert f"{tmp_path / 'pets' / 'cat' / '0.png'} cannot be read" in err


def test_a_preset_sets_the_paper_settings_and_flags_override_it(
        tmp_path, capsys, monkeypatch):
    # The preset's data through keras.datasets, patched: no download.
    rng = np.random.default_rng(0)

    def load_data():
        x = rng.integers(0, 256, (40, 8, 8, 3), np.uint8)
        y = rng.integers(0, 10, (40, 1))
        return (x, y), (x[:10], y[:10])

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", load_data)
    out = tmp_path / "results"
    status, stdout, err = _cli(
        ["compare", "--preset", "paper-vgg16-cifar10", "--epochs", "1",
         "--seeds", "2", "--model-kwargs", "width=0.0625",
         "--activations", "relu,sugar:bsilu", "--quiet", "--out", str(out)],
        capsys)
    assert status == 0, err
    with open(out / "results.json") as f:
        config = json.load(f)["config"]
    assert config["data"] == "cifar10" and config["epochs"] == 1
    assert config["lr"] == 0.001 and config["momentum"] == 0.0
    assert config["batch_size"] == 128 and config["seeds"] == [0, 1]
    assert config["model_kwargs"] == {"layout": "vgg16", "width": 0.0625}
    assert "run 4/4: sugar:bsilu, seed 1" in stdout


def test_help_lists_the_presets(capsys):
    status, out, _ = _cli(["compare", "--help"], capsys)
    assert status == 0
    text = " ".join(out.split())
    for name in ("paper-vgg16-cifar10", "paper-vgg16-cifar100",
                 "paper-resnet18-cifar10", "paper-resnet18-cifar100"):
        assert name in text
    assert "(default: 5)" in text and "cifar100" in text


def test_command_line_prints_the_table_and_writes_files(tmp_path):
    # --backend switches to another backend than this process's.
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[
        keras.backend.backend()]
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "keras_sugar", "compare", "--data", "digits",
         "--model", "mlp", "--epochs", "1", "--seeds", "2",
         "--activations", "relu,sugar:bsilu", "--quiet", "--out", str(out),
         "--backend", other, "--alpha", "0.2"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"backend={other}" in proc.stdout
    assert "p (Holm)" in proc.stdout
    assert "run 1/4: relu, seed 0 (elapsed" in proc.stdout
    assert "run 2/4: relu, seed 1 (elapsed" in proc.stdout and "left)" in (
        proc.stdout)
    assert "sugar:bsilu, seed 1: test accuracy" in proc.stdout
    with open(out / "results.json") as f:
        results = json.load(f)
    assert [r["activation"] for r in results["runs"]] == [
        "relu", "relu", "sugar:bsilu", "sugar:bsilu"]
    bsilu = results["summary"][1]
    assert bsilu["accuracy_delta"] == pytest.approx(
        (results["runs"][2]["test_accuracy"] + results["runs"][3][
            "test_accuracy"] - results["runs"][0]["test_accuracy"]
         - results["runs"][1]["test_accuracy"]) / 2)
    assert len(bsilu["accuracy_delta_ci"]) == 2
    assert results["statistics"]["alpha"] == 0.2  # --alpha
    assert "vs relu [80% CI]" in proc.stdout and "Holm-adjusted" in (
        proc.stdout)
    assert (out / "results.csv").exists() and (out / "comparison.png").exists()
    assert (out / "runs.jsonl").exists() and (out / "config.json").exists()


def test_a_killed_comparison_keeps_its_finished_runs(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "-m", "keras_sugar", "compare", "--data",
               "digits", "--model", "mlp", "--model-kwargs",
               "depth=2,units=16", "--epochs", "3", "--seeds", "3",
               "--activations", "relu,sugar:bsilu", "--quiet", "--out",
               str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    runs = out / "runs.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if runs.exists() and runs.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = results_folder.ResultsFolder(str(out)).runs()
    assert 1 <= len(kept) < 6
    proc = subprocess.run(command + ["--resume"], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"run {len(kept) + 1}/6" in proc.stdout
    assert "run 1/6" not in proc.stdout
    final = results_folder.ResultsFolder(str(out)).runs()
    assert len(final) == 6 and final[:len(kept)] == kept


# Signs, on the command's output, of three moments of a comparison.
CTRL_C_MOMENTS = {
    "start-up": "starting Keras...",  # Printed before Keras is imported.
    "training": "Epoch 2/1000",  # One epoch trained.
}


@pytest.mark.parametrize("moment", CTRL_C_MOMENTS)
def test_ctrl_c_says_how_to_resume(tmp_path, moment):
    out = tmp_path / "results"
    lines, seen = [], threading.Event()
    with open(tmp_path / "stderr", "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keras_sugar", "compare", "--data",
             "digits", "--model", "mlp", "--model-kwargs",
             "depth=1,units=8", "--epochs", "1000", "--seeds", "1",
             "--activations", "relu", "--progress", "epochs", "--out",
             str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=err_file,
            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            # As from a terminal: a test run started in the background of
            # a shell ignores SIGINT, and its children would inherit that.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

        def read():
            for line in proc.stdout:
                lines.append(line)
                if CTRL_C_MOMENTS[moment] in line:
                    seen.set()
            seen.set()  # The output ended: the assertions below say why.

        threading.Thread(target=read, daemon=True).start()
        try:
            assert seen.wait(timeout=300), "no output for 300 s"
            assert proc.poll() is None, "".join(lines[-20:])
            proc.send_signal(signal.SIGINT)
            status = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:  # Never leave it running.
                proc.kill()
                proc.wait()
    err = (tmp_path / "stderr").read_text()
    assert status == 130, err[-3000:]
    assert "Traceback" not in err and "Exception ignored" not in err
    last = err.strip().splitlines()[-1]
    if moment == "start-up" and not out.exists():
        assert last == f"Interrupted before any training; --out {out} is " \
            f"as it was."
    else:  # Even at start-up, a slow test machine may see training begin.
        assert last == (
            f"Interrupted. Finished runs: 0 of 1, kept in "
            f"{out / 'runs.jsonl'}: run the same command with --resume to "
            f"train the rest.")
        assert (out / "config.json").exists()


def test_a_ctrl_c_python_would_drop_still_stops_the_run(monkeypatch):
    # JAX runs a garbage-collector callback, where Python prints the
    # KeyboardInterrupt of a Ctrl-C as "Exception ignored" and goes on:
    # the command records the Ctrl-C instead, and stops at the next batch.
    data = datasets.load("digits")
    trainer = _trainer(data, "relu", lr=0.05, epochs=3, batch_size=64,
                       depth=1, units=8)
    batches = []

    def ctrl_c_inside_gc(phase, info):
        gc.callbacks.remove(ctrl_c_inside_gc)
        signal.raise_signal(signal.SIGINT)

    def on_train_batch_end(self, batch, logs=None):
        batches.append(batch)
        if batch == 1:
            gc.callbacks.append(ctrl_c_inside_gc)
            gc.collect()

    monkeypatch.setattr(compare._EpochTimer, "on_train_batch_end",
                        on_train_batch_end, raising=False)
    # As from a terminal (a test run in the background ignores SIGINT).
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interruption.install()
        try:
            with pytest.raises(interruption.Interrupted):
                trainer.run(0, verbose=0)
        finally:
            interruption.uninstall()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outside)
    assert batches == [0, 1]  # Not the 3 epochs of 23 batches.


def test_the_transformer_compares_gelu_with_sugar_nelu():
    # The paper left domains other than vision open: a sequence model.
    data = datasets.load("mnist1d")
    kwargs = dict(num_layers=1, hidden_dim=8, num_heads=2,
                  intermediate_dim=16)
    trainer = _trainer(data, "sugar:nelu:alpha=0.01", "transformer",
                       lr=0.005, epochs=2, batch_size=256, **kwargs)
    (feedforward,) = [layer for layer in trainer.model.layers
                      if layer.name == "block_0_feedforward"]
    assert feedforward.activation == SugarReLU("nelu", alpha=0.01)
    result = trainer.run(0, verbose=0)
    assert np.isfinite(result.curves["loss"]).all()
    assert result.curves["loss"][1] < result.curves["loss"][0]
    assert 0.0 <= result.dead_units <= 1.0
    gelu = _trainer(data, "gelu", "transformer", lr=0.005, epochs=1,
                    batch_size=256, **kwargs).run(0, verbose=0)
    assert gelu.dead_units is None


def test_the_progress_bar_counts_the_epochs_of_the_run(capsys):
    data = datasets.load("digits")
    _trainer(data, "relu", lr=0.05, epochs=3, batch_size=256, depth=1,
             units=8).run(0, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 2/3" in out and "Epoch 3/3" in out
    assert "Epoch 2/2" not in out


def _keys(runs):
    return sorted((run["activation"], run["seed"]) for run in runs)


def _run_keys(runs):
    return sorted(run.key for run in runs)


def test_jobs_2_trains_the_same_runs_as_one_process(tmp_path, capfd):
    settings = dict(activations=("relu", "sugar:bsilu"), seeds=(0, 1),
                    verbose=0, **_small())
    _, alone = compare.run(data="digits", out=str(tmp_path / "one"),
                           **settings)
    _, shared = compare.run(data="digits", out=str(tmp_path / "two"),
                            jobs=2, **settings)
    out = capfd.readouterr().out  # The workers write to the file itself.
    assert runs_begun_by_workers(out) == 4
    on_disk = results_folder.ResultsFolder(str(tmp_path / "two")).runs()
    assert _run_keys(on_disk) == _run_keys(alone)  # Each once, none lost.
    by_key = {run.key: run for run in shared}
    for run in alone:  # Bit for bit, run by run.
        other = by_key[run.key]
        assert other.curves == run.curves
        assert other.test_accuracy == run.test_accuracy
    assert (tmp_path / "two" / "results.json").exists()


def _command(out, *extra):
    return [sys.executable, "-m", "keras_sugar", "compare", "--data",
            "digits", "--model", "mlp", "--model-kwargs", "depth=2,units=16",
            "--epochs", "2", "--seeds", "3", "--activations",
            "relu,sugar:bsilu", "--quiet", "--out", str(out), *extra]


def test_processes_sharing_a_folder_train_each_run_once(tmp_path):
    out = tmp_path / "results"
    # Started together, as by hand or a cluster array.
    procs = [subprocess.Popen(_command(out, "--resume"), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr[-3000:]
    lines = (out / "runs.jsonl").read_text().splitlines()
    # One line per training: six runs, each trained once.
    assert _keys(map(json.loads, lines)) == _keys(
        [{"activation": a, "seed": s} for a in ("relu", "sugar:bsilu")
         for s in range(3)])
    started = sum(stdout.count(": test accuracy") for stdout, _ in outputs)
    assert started == 6
    with open(out / "results.json") as f:
        assert len(json.load(f)["runs"]) == 6  # Written by the last.
    assert not (out / "claims").exists()  # Each claim's file went with it.


def test_a_process_killed_mid_run_loses_only_that_run(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.Popen(_command(out, "--epochs", "30"), cwd=ROOT,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = threading.Event()

    def read():
        for line in proc.stdout:
            if line.startswith("run 2/6: relu, seed 1"):
                seen.set()  # Run 1 is on disk, run 2 has begun.
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert seen.wait(timeout=300), "no second run in 300 s"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    folder = results_folder.ResultsFolder(str(out))
    assert _run_keys(folder.runs()) == [("relu", 0)]
    resumed = subprocess.run(_command(out, "--epochs", "30", "--resume"),
                             capture_output=True, text=True, cwd=ROOT,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "run 2/6: relu, seed 1" in resumed.stdout
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 6 and len(set(_keys(map(json.loads, lines)))) == 6


def test_the_epoch_is_chosen_on_a_validation_split(tmp_path):
    data = datasets.hold_out(datasets.load("digits"), 0.1)
    trainer = _trainer(data, "relu", lr=0.05, epochs=4, batch_size=128,
                       depth=2, units=16)
    result = trainer.run(0, verbose=0)
    curves = result.curves
    best = int(np.argmax(curves["val_accuracy"]))  # Validation, not test.
    assert result.epoch == best + 1
    assert result.test_accuracy == pytest.approx(
        curves["test_accuracy"][best], abs=0)
    assert result.last_test_accuracy == curves["test_accuracy"][-1]
    assert result.dead_units == curves["dead_units"][best]
    # The test curve is the test split's: the model after the last epoch.
    _, accuracy = trainer.model.evaluate(data.x_test, data.y_test, verbose=0)
    assert curves["test_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


def test_mnist5k_trains_on_a_slice():
    data = datasets.load("mnist5k")
    data.x_train, data.y_train = data.x_train[:1024], data.y_train[:1024]
    result = _trainer(data, "sugar:bsilu", "vgg", lr=0.05, epochs=3,
                      batch_size=64, layout=[4, "M", 8, "M"], width=1.0,
                      dense_units=32).run(0, verbose=0)
    assert result.curves["loss"][1] < result.curves["loss"][0]
    assert result.test_accuracy > 0.2  # Chance is 0.1.


def test_resume_refuses_another_validation_split(tmp_path):
    # The epoch a run reports depends on it: runs of both cannot mix.
    out = str(tmp_path / "results")
    compare.run(data="digits", activations=("relu",), seeds=(0,), out=out,
                verbose=0, validation=0, **_small())
    with pytest.raises(ValueError, match=r"validation: 0 on disk, 0.1 now"):
        compare.run(data="digits", activations=("relu",), seeds=(0,),
                    out=out, resume=True, verbose=0, validation=0.1,
                    **_small())

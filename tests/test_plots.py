"""Figures: the curves drawn are the real surrogates, files are written."""

import os
import subprocess
import sys

import numpy as np
import pytest

from keras_sugar import surrogates
from tests import reference
from tests.testing import command_line as _cli

plots = pytest.importorskip("keras_sugar.plots")
pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", surrogates.BUILTINS)
def test_curves_are_the_surrogate_and_its_derivative(name):
    x = np.linspace(-4, 4, 81) + 0.01
    f, d = plots.surrogate_curves(name, x)
    np.testing.assert_allclose(d, reference.derivative(name, {}, x),
                               rtol=1e-5, atol=1e-6)
    # f' is the derivative of f (central differences on the grid, away
    # from the ends and from the kinks at 0 of ELU, NeLU and LeakyReLU).
    smooth = (np.abs(x) > 0.25) & (np.abs(x) < 3.9)
    np.testing.assert_allclose(np.gradient(f, x)[smooth], d[smooth],
                               atol=2e-2)


def read_png(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_plot_surrogates_writes_a_png(tmp_path):
    path = plots.plot_surrogates(str(tmp_path / "s.png"), ["bsilu", "nelu"])
    image = read_png(path)
    assert image.shape[0] > 300 and image.shape[1] > 800
    assert image.std() > 0.05  # something was drawn


def test_plot_dead_units(tmp_path):
    history = {"dead_units": [0.5, 0.4, 0.3], "dead_units/a": [0.6, 0.5, 0.2],
               "loss": [3.0, 2.0, 1.0]}
    path = plots.plot_dead_units(history, str(tmp_path / "d.png"))
    assert read_png(path).std() > 0.05
    with pytest.raises(ValueError, match="DeadUnitMonitor"):
        plots.plot_dead_units({"loss": [1.0]}, str(tmp_path / "x.png"))


def test_command_line_draws_the_figure(tmp_path):
    out = tmp_path / "fig.png"
    proc = subprocess.run(
        [sys.executable, "-m", "keras_sugar", "plot", "--out", str(out),
         "--surrogates", "bsilu,elu"], capture_output=True, text=True,
        env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_png(out).std() > 0.05


def test_command_line_creates_the_folder_or_refuses_in_one_line(
        tmp_path, capsys):
    from keras_sugar.experiments import cli

    out = tmp_path / "new" / "figures" / "fig.png"
    assert cli.main(["plot", "--out", str(out), "--surrogates", "elu"]) == 0
    assert read_png(out).std() > 0.05
    (tmp_path / "notes.txt").write_text("mine")
    for bad, message in [
            (tmp_path / "new", f"--out {tmp_path / 'new'} is a folder"),
            (tmp_path / "notes.txt" / "fig.png",
             f"{tmp_path / 'notes.txt'} is a file, not a folder")]:
        with pytest.raises(SystemExit) as exit:
            cli.main(["plot", "--out", str(bad)])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and message in err
        assert "Traceback" not in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_comparison_figure_has_title_bands_and_notes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from keras_sugar.experiments import comparison_plot

    runs = [{"activation": spec, "seed": seed, "curves": {
        "val_accuracy": [0.1 + seed / 10, 0.5], **(
            {"dead_units": [0.2, 0.1]} if spec == "relu" else {})}}
        for spec in ("relu", "gelu") for seed in (0, 1)]
    figures = []
    figure = comparison_plot.plots.figure

    def kept_figure(**kwargs):  # Keep it to read.
        figures.append(figure(**kwargs))
        return figures[-1]

    monkeypatch.setattr(comparison_plot.plots, "figure", kept_figure)
    path = comparison_plot.plot_comparison(runs, str(tmp_path / "c.png"),
                                           title="vgg on mnist1d")
    assert os.path.getsize(path) > 0
    (fig,) = figures
    assert fig._suptitle.get_text() == "vgg on mnist1d"
    accuracy, dead = fig.axes
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == [
        "relu (2 seeds)", "gelu (2 seeds)"]
    # One band per curve, as wide as the spread over seeds.
    (band, _) = accuracy.collections
    low = band.get_paths()[0].vertices[:, 1].min()
    assert low == pytest.approx(100 * (0.15 - 0.05))
    assert any("no dead-unit curve" in t.get_text() and "gelu" in t.get_text()
               for t in dead.texts)


def test_drawing_leaves_the_users_matplotlib_alone(tmp_path):
    """In a notebook: the backend stays the user's, their figures stay
    open, and no pyplot figure is left behind."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    plt.switch_backend("svg")  # Not Agg, which the package draws with.
    try:
        users = plt.figure()
        plots.plot_surrogates(str(tmp_path / "s.png"), names=["nelu"])
        plots.plot_dead_units({"dead_units": [0.5, 0.2]},
                              str(tmp_path / "d.png"))
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == [users.number]
        assert (tmp_path / "s.png").stat().st_size > 0
    finally:
        plt.close("all")
        plt.switch_backend("agg")


@pytest.mark.parametrize("args, message", [
    (["--surrogates", "nope"], "argument --surrogates: Unknown surrogate "
     "'nope'. Valid names: ['bsilu', 'elu'"),
    (["--surrogates", ","], "argument --surrogates: ',' names no "
     "surrogate"),
    (["--surrogates", "elu,,nelu"], "argument --surrogates: 'elu,,nelu' "
     "has an empty name"),
    (["--out", "x.txt"], "--out x.txt: 'txt' is not an image format "
     "matplotlib writes; use one of: "),
    (["--out", "figure"], "--out figure: the file name needs an image "
     "extension, e.g. figure.png"),
    (["--out", ""], "--out '': give the file to write, e.g. "
     "surrogates.png"),
    (["--out", "/proc/x.png"], "--out /proc/x.png cannot be written: "),
])
def test_bad_arguments_are_one_line_before_any_work(args, message, capsys,
                                                    monkeypatch):
    monkeypatch.setattr(plots, "plot_surrogates", None)  # Not reached.
    status, out, err = _cli(["plot", *args], capsys)
    assert status == 2, err
    assert message in err, err
    assert "Traceback" not in err and out == ""


def test_without_matplotlib_plot_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # Not installed.
    status, out, err = _cli(["plot", "--out", str(tmp_path / "s.png")],
                            capsys)
    assert status == 2 and out == ""
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(
        "error: plot needs matplotlib: pip install 'keras-sugar[plot]'")
    assert not (tmp_path / "s.png").exists()

"""The example scripts run as documented and say what they promise."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", script), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "UserWarning" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout


def test_quickstart_trains_rewrites_revives_and_ships():
    out = run("quickstart.py")
    first, last = out.split("train loss ")[1].split(",")[0].split(" -> ")
    assert float(last) < float(first)
    assert "2 site(s) replaced, same predictions: True" in out
    assert "strip_sugar: same predictions: True" in out
    # Dead ReLU units get no gradient; SUGAR brings some back.
    assert "relu: dead units 100% -> 100%" in out
    revived = out.split("sugar: dead units 100% -> ")[1].split("%")[0]
    assert int(revived) < 100


@pytest.mark.parametrize("library", ["cv", "hub"])
def test_sugarify_backbone_survives_reload(library):
    pytest.importorskip(f"keras_{library}")
    out = run("sugarify_backbone.py", "--library", library)
    assert "same predictions: True" in out
    # It trains: the loss falls epoch after epoch (fit, verbose=2).
    losses = [float(line.split("loss: ")[1].split()[0])
              for line in out.splitlines() if " - loss: " in line]
    assert len(losses) == 3 and losses[2] < losses[1] < losses[0], losses
    replaced = out.split("sugarify: ")[1].split(" site(s)")[0]
    assert f"reloaded with {replaced} SugarReLU activations" in out

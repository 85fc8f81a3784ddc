"""The README as a new user meets it: every Python block runs as written,
in order, in a fresh process; every shell command names its backend; the
commands that compare one's own model work; CI keeps its own
environment."""

import os
import re
import shlex
import subprocess
import sys

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def blocks(language):
    """The README's fenced blocks of `language`, in order."""
    with open(README) as f:
        text = f.read()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def shell_commands():
    """Every command line of the README's bash blocks (comments and
    SLURM directives left out)."""
    return [line.strip() for block in blocks("bash")
            for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_every_python_block_runs_in_order_and_so_do_its_commands(
        tmp_path):
    # One script, as a user pasting the blocks one after another would
    # run them, in an empty folder (the blocks write files there).
    script = "\n\n".join(blocks("python"))
    assert "import keras_sugar" in script.splitlines()[0]
    (tmp_path / "readme.py").write_text(script)
    proc = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The sugarify block prints the reports; the dry run says it is one.
    assert ("sugarify dry run (nothing was changed): 13 site(s) would be "
            "replaced") in proc.stdout
    assert (tmp_path / "plain.keras").exists()
    if keras.backend.backend() == "jax":  # The backend they name.
        run_own_model_commands(tmp_path)


def run_own_model_commands(folder):
    """The commands comparing one's own model, as written but shortened
    (later flags win), where the blocks before them ran."""
    (my_model,) = [block for block in blocks("python")
                   if block.startswith("# my_model.py\n")]
    (folder / "my_model.py").write_text(my_model)
    commands = [command for command in shell_commands()
                if "--model my_model.py:build" in command
                or "--model plain.keras" in command]
    assert len(commands) == 2
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["KERAS_BACKEND=jax", ".venv/bin/keras-sugar"]
        argv = [sys.executable, "-m", "keras_sugar", *words[2:], "--epochs",
                "1", "--seeds", "2", "--activations", "relu,sugar:bsilu"]
        proc = subprocess.run(argv, cwd=folder, capture_output=True,
                              text=True, timeout=600,
                              env=dict(os.environ, KERAS_BACKEND="jax"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.startswith("keras-sugar: Keras backend jax "
                                      "(KERAS_BACKEND=jax)")
        rows = [line.split()[0] for line in proc.stdout.splitlines()
                if line.startswith(("relu ", "sugar:bsilu "))]
        assert rows == ["relu", "sugar:bsilu"], proc.stdout  # The table.


def test_every_shell_command_names_its_backend():
    commands = shell_commands()
    assert len(commands) >= 8
    for command in commands:
        if command == "bash .ci/run":  # Every backend, each on its own.
            continue
        names = re.search(r"KERAS_BACKEND=(tensorflow|jax|torch)\b|"
                          r"--backend (tensorflow|jax|torch)\b|"
                          r"pip install \"\.\[(jax|tensorflow|torch)", command)
        assert names, command


def test_the_readme_says_which_extras_bring_tensorflow():
    with open(README) as f:
        text = " ".join(f.read().split())
    assert "`[hub]` installs TensorFlow and `[cv]` needs it" in text
    # Exporting a SavedModel is not promised without TensorFlow.
    assert "a SavedModel (`\"serving\"`) needs TensorFlow" in text
    for block in blocks("python"):
        assert not re.search(r"^[^#]*\.export\(", block, re.M), block


def test_ci_installs_into_its_own_environment():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        script = f.read()
    assert "python3 -m venv .venv-ci" in script
    assert not re.search(r"venv \.venv\s*$|\.venv/bin/activate", script,
                         re.M)
    with open(os.path.join(ROOT, ".gitignore")) as f:
        assert ".venv-ci/" in f.read().split()

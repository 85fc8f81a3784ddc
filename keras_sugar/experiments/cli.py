"""`keras-sugar` command line: `compare`, `bench` and `plot` subcommands.

Arguments are read before Keras is imported, so `--help` starts no backend
and `--backend` takes effect; each subcommand's arguments and defaults live
in its own `*_command.py` module, which names the module that runs it
(`RUNNER`, where Keras is imported).
"""

import argparse
import importlib
import os
import sys

from keras_sugar import backend_selection
from keras_sugar.experiments import interruption

# Subcommand name -> the module that declares and runs it.
COMMANDS = {
    "compare": "keras_sugar.experiments.compare_command",
    "bench": "keras_sugar.experiments.bench_command",
    "plot": "keras_sugar.experiments.plot_command",
}
# The subcommands that train models, which Keras' inference-only backends
# (numpy, OpenVINO) cannot do.
TRAINING_COMMANDS = ("compare", "bench")


def _backend_option():
    # --backend is accepted before or after the subcommand.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--backend",
        choices=backend_selection.BACKENDS + backend_selection.INFERENCE_ONLY,
        default=argparse.SUPPRESS,
        help="Keras backend (default: KERAS_BACKEND, else keras.json, else "
        "the first installed of tensorflow, jax, torch; numpy and openvino "
        "run inference only: plot, not compare or bench).")
    return parent


def parser():
    """The whole command line, built without importing Keras."""
    backend = _backend_option()
    top = argparse.ArgumentParser(
        prog="keras-sugar", parents=[backend],
        description="SUGAR (surrogate gradient learning for ReLU) tools: "
        "compare activations, benchmark them, plot the surrogates.")
    commands = top.add_subparsers(dest="command", required=True,
                                  metavar="{" + ",".join(COMMANDS) + "}")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(
            name, parents=[backend], help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(runner=module.RUNNER, parser=sub)
    return top


def _running_backend():
    import keras

    return keras.backend.backend()


def _reexec_with_backend(backend, argv):
    """Keras fixes its backend when first imported: if `main` runs in a
    process where Keras already runs another one, start afresh."""
    import keras

    if keras.backend.backend() == backend:
        return
    env = dict(os.environ, KERAS_BACKEND=backend)
    os.execve(sys.executable, [sys.executable, "-m", "keras_sugar", *argv],
              env)


def _check_trains(args, backend):
    """Refuses a training subcommand on an inference-only backend."""
    if (args.command in TRAINING_COMMANDS
            and backend in backend_selection.INFERENCE_ONLY):
        args.parser.error(
            f"{args.command} trains models, and Keras' {backend} backend "
            f"runs inference only (it has no autodiff). Choose one of "
            f"{', '.join(backend_selection.BACKENDS)} with --backend or "
            f"KERAS_BACKEND.")


def main(argv=None):
    """Entry point of `keras-sugar` and `python -m keras_sugar`."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # A stop no command records for itself.
        print("\nInterrupted.", file=sys.stderr)
        return interruption.exit_status()
    finally:
        interruption.uninstall()  # For a caller that goes on.


def _chosen_backend(args, argv):
    """`(backend, why)`: the backend this command runs on and why, in a
    few words (an installed extra can bring another backend along:
    `[hub]` brings TensorFlow)."""
    requested = getattr(args, "backend", None)
    try:
        chosen, reason = backend_selection.choose_and_say_why(requested)
    except ImportError as error:
        args.parser.error(str(error))
    if chosen is None:  # Keras runs in this process already.
        if requested:
            _reexec_with_backend(requested, argv)  # Chosen there.
        import keras

        chosen = keras.backend.backend()
        reason = (f"--backend {requested}" if requested else
                  "Keras was already running in this process")
    return chosen, reason


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    command = importlib.import_module(COMMANDS[args.command])
    if hasattr(command, "check"):  # Bad arguments: refused, no backend.
        try:
            command.check(args)
        except (ValueError, FileNotFoundError) as error:
            args.parser.error(str(error))
    _check_trains(args, getattr(args, "backend", None))
    chosen, reason = _chosen_backend(args, argv)
    _check_trains(args, chosen)  # KERAS_BACKEND, keras.json, or Keras' own.
    # The first line of the output: which backend runs, and why.
    print(f"keras-sugar: Keras backend {chosen} ({reason})", flush=True)
    if hasattr(command, "before_keras"):
        command.before_keras(args)
    importlib.import_module(args.runner).main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`keras-sugar bench`: its arguments and their defaults.

`benchmark.run()` called from Python takes the same defaults (`DEFAULTS`).
"""

import os

HELP = "Speed and memory of SugarReLU against ReLU and GELU."
# Runs the command with the parsed arguments (imports Keras).
RUNNER = "keras_sugar.experiments.benchmark"

DEFAULTS = {"surrogate": "bsilu", "batch_size": 64}


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="Tiny sizes and few repeats (a smoke run).")
    parser.add_argument("--surrogate", default=DEFAULTS["surrogate"],
                        help="Surrogate of the SUGAR variants.")
    parser.add_argument("--repeats", type=int, default=None,
                        help="Timed steps per variant; unset means 30, or 3 "
                        "with --quick.")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"Batch of the train-step and inference "
                        f"measurements; unset means "
                        f"{DEFAULTS['batch_size']}, or 8 with --quick.")
    parser.add_argument("--json", default=None,
                        help="Also write the results here.")
    parser.add_argument("--torch-compile", action="store_true",
                        help="torch: time the steps compiled with "
                        "torch.compile (Keras' jit_compile=True) instead of "
                        "eager; TensorFlow and JAX are always compiled with "
                        "XLA.")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and TensorFlow (JAX's "
                        "CPU backend has no such setting); unset keeps the "
                        "backend's default.")


def before_keras(args):
    """TensorFlow reads its thread limits when it starts, so they are set
    before Keras is imported."""
    if args.threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)

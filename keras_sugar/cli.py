"""`keras-sugar` command line: `bench`, `compare` and `plot` subcommands.

`--backend` re-runs the command under that Keras backend, since Keras fixes
its backend when first imported.
"""

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-sugar",
        description="SUGAR (surrogate gradient learning for ReLU) tools.")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: KERAS_BACKEND).")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench", help="Speed and memory against ReLU and GELU.")
    bench.add_argument("--quick", action="store_true",
                       help="Tiny sizes and few repeats (a smoke run).")
    bench.add_argument("--surrogate", default="bsilu")
    bench.add_argument("--repeats", type=int, default=None)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--json", help="Also write the results here.")

    plot = commands.add_parser(
        "plot", help="Draw the surrogates and derivatives beside ReLU.")
    plot.add_argument("--out", default="surrogates.png")
    plot.add_argument("--surrogates", default=None,
                      help="Comma-separated names (default: all built-ins).")
    return parser


def _ensure_backend(backend, argv):
    """Re-executes this command with KERAS_BACKEND set, if it differs."""
    if not backend or os.environ.get("KERAS_BACKEND") == backend:
        return
    import keras

    if keras.backend.backend() == backend:
        return
    env = dict(os.environ, KERAS_BACKEND=backend)
    os.execve(sys.executable, [sys.executable, "-m", "keras_sugar", *argv],
              env)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _ensure_backend(args.backend, argv)
    if args.command == "bench":
        from keras_sugar import benchmark

        benchmark.main(args)
    elif args.command == "plot":
        from keras_sugar import plots

        names = args.surrogates.split(",") if args.surrogates else None
        print(plots.plot_surrogates(args.out, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`keras-sugar` command line: `bench`, `compare` and `plot` subcommands.

`--backend` re-runs the command under that Keras backend, since Keras fixes
its backend when first imported.
"""

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def _parser():
    # --backend is accepted before or after the subcommand.
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=BACKENDS,
                         default=argparse.SUPPRESS,
                         help="Keras backend (default: KERAS_BACKEND).")
    parser = argparse.ArgumentParser(
        prog="keras-sugar", parents=[backend],
        description="SUGAR (surrogate gradient learning for ReLU) tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench", parents=[backend],
        help="Speed and memory against ReLU and GELU.")
    bench.add_argument("--quick", action="store_true",
                       help="Tiny sizes and few repeats (a smoke run).")
    bench.add_argument("--surrogate", default="bsilu")
    bench.add_argument("--repeats", type=int, default=None)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--json", help="Also write the results here.")

    compare = commands.add_parser(
        "compare", parents=[backend],
        help="Train one model with several activations and "
        "seeds; print the paper-style table.")
    compare.add_argument("--data", default="mnist1d",
                         help="mnist1d, digits, or a .npz file with x_train, "
                         "y_train, x_test, y_test.")
    compare.add_argument("--model", default="vgg",
                         choices=["vgg", "resnet", "mlp"])
    compare.add_argument("--layout", default="vgg16",
                         help="VGG layout: vgg11, vgg16.")
    compare.add_argument("--width", type=float, default=0.125,
                         help="Filter-count multiplier (1.0 = the paper's).")
    compare.add_argument("--dense-units", type=int, default=512)
    compare.add_argument("--activations",
                         default="relu,sugar:bsilu,sugar:nelu,sugar:elu,gelu",
                         help="Comma-separated: relu, gelu, ..., "
                         "sugar:<surrogate>[:param=value].")
    compare.add_argument("--seeds", default="3",
                         help="A count (3 = seeds 0,1,2) or a list: 0,4,7.")
    compare.add_argument("--epochs", type=int, default=30)
    compare.add_argument("--batch-size", type=int, default=64)
    compare.add_argument("--lr", type=float, default=0.005)
    compare.add_argument("--momentum", type=float, default=0.9,
                         help="SGD momentum; 0 for plain SGD.")
    compare.add_argument("--out", default=None,
                         help="Folder for results.json/.csv and a PNG.")
    compare.add_argument("--quiet", action="store_true",
                         help="No progress bars.")

    plot = commands.add_parser(
        "plot", parents=[backend],
        help="Draw the surrogates and derivatives beside ReLU.")
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
    _ensure_backend(getattr(args, "backend", None), argv)
    if args.command == "bench":
        from keras_sugar import benchmark

        benchmark.main(args)
    elif args.command == "compare":
        from keras_sugar import compare

        compare.main(args)
    elif args.command == "plot":
        from keras_sugar import plots

        names = args.surrogates.split(",") if args.surrogates else None
        print(plots.plot_surrogates(args.out, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

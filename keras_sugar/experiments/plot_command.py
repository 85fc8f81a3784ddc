"""`keras-sugar plot`: its arguments and their defaults."""

import os

HELP = "Draw the surrogates and their derivatives beside ReLU."
# Runs the command with the parsed arguments: `main` below.
RUNNER = __name__


def add_arguments(parser):
    parser.add_argument("--out", default="surrogates.png",
                        help="PNG file to write (its folder is created if "
                        "needed).")
    parser.add_argument("--surrogates", default=None,
                        help="Comma-separated names (default: every "
                        "built-in surrogate).")


def check(args):
    """Refuses an `--out` that cannot be written, before Keras starts (a
    ValueError becomes a one-line command-line error)."""
    if os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a folder; give the path of "
                         f"the PNG file to write.")
    existing = os.path.dirname(os.path.abspath(args.out))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"--out {args.out}: {existing} is a file, not a "
                         f"folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {args.out}: cannot write in {existing}.")
    if os.path.exists(args.out) and not os.access(args.out, os.W_OK):
        raise ValueError(f"--out {args.out} is read-only.")


def main(args):
    """Runs `keras-sugar plot` with the parsed arguments."""
    from keras_sugar import plots

    names = args.surrogates.split(",") if args.surrogates else None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    print(plots.plot_surrogates(args.out, names))

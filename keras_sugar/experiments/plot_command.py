"""`keras-sugar plot`: its arguments and their defaults."""

HELP = "Draw the surrogates and their derivatives beside ReLU."
# Runs the command with the parsed arguments: `main` below.
RUNNER = __name__


def add_arguments(parser):
    parser.add_argument("--out", default="surrogates.png",
                        help="PNG file to write.")
    parser.add_argument("--surrogates", default=None,
                        help="Comma-separated names (default: every "
                        "built-in surrogate).")


def main(args):
    """Runs `keras-sugar plot` with the parsed arguments."""
    from keras_sugar import plots

    names = args.surrogates.split(",") if args.surrogates else None
    print(plots.plot_surrogates(args.out, names))

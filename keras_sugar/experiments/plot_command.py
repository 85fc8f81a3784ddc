"""`keras-sugar plot`: its arguments and their defaults, every one checked
before Keras starts."""

import argparse
import os

from keras_sugar import surrogate_names
from keras_sugar.experiments import output_file

HELP = "Draw the surrogates and their derivatives beside ReLU."
# Runs the command with the parsed arguments: `main` below.
RUNNER = __name__


def parse_surrogates(text):
    """`"bsilu,elu"` -> `("bsilu", "elu")`: registered names, at least one,
    none empty.

    Example:

    >>> parse_surrogates("B-SiLU, swish")
    ('bsilu', 'silu')
    """
    names = [name.strip() for name in text.split(",")]
    if not any(names):
        raise argparse.ArgumentTypeError(f"'{text}' names no surrogate")
    if not all(names):
        raise argparse.ArgumentTypeError(f"'{text}' has an empty name")
    try:
        return tuple(surrogate_names.canonical(name) for name in names)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser):
    parser.add_argument("--out", default="surrogates.png",
                        help="Image file to write, its format from its "
                        "extension (its folder is created if needed).")
    parser.add_argument("--surrogates", default=None, type=parse_surrogates,
                        help="Comma-separated names (default: every "
                        "built-in surrogate).")


def _image_formats():
    """The file extensions matplotlib writes.

    Raises:
        ValueError: when matplotlib is not installed.
    """
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != (
                "matplotlib"):
            raise
        raise ValueError("plot needs matplotlib: pip install "
                         "'keras-sugar[plot]'") from None
    return sorted(FigureCanvasBase.get_supported_filetypes())


def check(args):
    """Refuses, before Keras starts, a missing matplotlib and an `--out`
    that cannot be written as an image (a ValueError becomes a one-line
    command-line error)."""
    formats = _image_formats()
    out = args.out
    extension = os.path.splitext(out)[1][1:].lower()
    if out and not os.path.isdir(out):
        if not extension:
            name = os.path.basename(out) or "surrogates"
            raise ValueError(f"--out {out}: the file name needs an image "
                             f"extension, e.g. {name}.png.")
        if extension not in formats:
            raise ValueError(f"--out {out}: '{extension}' is not an image "
                             f"format matplotlib writes; use one of: "
                             f"{', '.join(formats)}.")
    output_file.check("--out", out, "surrogates.png", make_folders=True)


def main(args):
    """Runs `keras-sugar plot` with the parsed arguments."""
    from keras_sugar import plots

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    print(plots.plot_surrogates(args.out, args.surrogates))

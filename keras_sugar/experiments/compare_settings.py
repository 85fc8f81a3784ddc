"""The settings of one comparison, checked once, in one place: made from
the command line (`Settings.from_args`) or from Python (`Settings.create`,
what `compare.run(**kwargs)` calls). Standard library only: the command
checks them before Keras starts.
"""

import dataclasses
import math
import os

from keras_sugar.experiments import results_folder
from keras_sugar.experiments import user_models

# The defaults of the command line and of `compare.run()`. A validation
# split and the test accuracy taken at the epoch of best validation
# accuracy: see `VALIDATION_HELP`.
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
    "validation": 0.1,
}

VALIDATION_HELP = (
    "Share of each class of the training data held out, the same examples "
    "for every run, to choose each run's epoch: the table reports the test "
    "accuracy (and loss, dead units, sparsity) at the epoch of best "
    "validation accuracy, never chosen on the test split. One seed whose "
    "training diverges late, or curves still moving at the last epoch, "
    "then no longer decide a mean of few seeds, and the epoch is chosen "
    "without looking at the test data. 0: no validation split, the last "
    "epoch's numbers")


# Seeds are those numpy's generator takes (`keras.utils.set_random_seed`);
# a count (3 = seeds 0, 1, 2) is at most MAX_SEED_COUNT.
MAX_SEED = 2**32 - 1
MAX_SEED_COUNT = 10_000


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_seed(value):
    """Whether `value` is a seed: an integer from 0 to `MAX_SEED`."""
    return _is_int(value) and 0 <= value <= MAX_SEED


def _distinct_seeds(value):
    return (isinstance(value, (tuple, list)) and len(value) >= 1
            and all(map(is_seed, value)) and len(set(value)) == len(value))


# Each setting's type and rule: one place per check, read by the command
# line (`compare_command.argument_type`) and by `Settings`.
RULES = {
    "seeds": (tuple, f"a count from 1 to {MAX_SEED_COUNT} (3 = seeds 0, 1, "
              f"2) or a list of distinct integer seeds from 0 to {MAX_SEED}",
              _distinct_seeds),
    "epochs": (int, "an integer >= 1", lambda v: v >= 1),
    "batch_size": (int, "an integer >= 1", lambda v: v >= 1),
    "lr": (float, "a finite number >= 0",
           lambda v: math.isfinite(v) and v >= 0),
    "momentum": (float, "a number in [0, 1]", lambda v: 0 <= v <= 1),
    "validation": (float, "a number in [0, 0.5]", lambda v: 0 <= v <= 0.5),
    "jobs": (int, "an integer >= 1", lambda v: v >= 1),
    "alpha": (float, "a number in (0, 0.5]", lambda v: 0 < v <= 0.5),
}


def follows(name, value):
    """Whether `value` follows `RULES[name]` (type and rule)."""
    kind, _, rule = RULES[name]
    if kind is tuple:
        return rule(value)
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
    if not follows(name, value):
        raise ValueError(f"{name} must be {RULES[name][1]}. Received: "
                         f"{name}={value!r}")


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


def parse_items(text):
    """`"layout=vgg11,width=0.5"` -> `{"layout": "vgg11", "width": 0.5}`.

    Example:

    >>> parse_items("layout=vgg11,width=0.5")
    {'layout': 'vgg11', 'width': 0.5}

    Raises:
        ValueError: naming an item that is not `key=value`.
    """
    items = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"item '{item}' is not of the form key=value")
        items[key.strip()] = parse_value(value.strip())
    return items


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    """A parsed activation spec: `"relu"`, `"gelu"` (any Keras activation
    name: `surrogate` is None) or `"sugar:<surrogate>[:param=value,...]"`.

    Example:

    >>> ActivationSpec.parse("sugar:nelu:alpha=0.1")
    ActivationSpec(text='sugar:nelu:alpha=0.1', surrogate='nelu', params={'alpha': 0.1})
    """

    text: str
    surrogate: str = None
    params: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, spec):
        """Raises a ValueError naming `spec` when it is not of that form
        (the names themselves are checked where Keras runs)."""
        if not spec.startswith("sugar:"):
            return cls(spec)
        parts = spec.split(":")
        if len(parts) > 3 or not parts[1]:
            raise ValueError(f"Activation spec '{spec}' is not of the form "
                             f"sugar:<surrogate>[:param=value,...]")
        params = parse_items(parts[2]) if len(parts) == 3 else {}
        for value in params.values():
            if isinstance(value, str):
                raise ValueError(f"Cannot read parameter value '{value}' in "
                                 f"'{spec}': use a number, true or false.")
        return cls(spec, parts[1], params)


# What a comparison does (`DEFAULTS`, which a preset may set) and how it
# is run (where it writes, how many worker processes, which shard).
# `alpha` is the family-wise error level of the verdicts (see
# `paired_stats`): it changes the table, not the runs.
RUN_FIELDS = {"out": None, "resume": False, "overwrite": False, "jobs": 1,
              "shard": None, "alpha": 0.05}

SHARD_HELP = "K/N with 0 <= K < N"


def is_shard(value):
    """Whether `value` is `(k, n)`, shard k of n: integers, 0 <= k < n."""
    return (isinstance(value, tuple) and len(value) == 2
            and all(map(_is_int, value)) and 0 <= value[0] < value[1])


def parse_shard(text):
    """`"3/8"` -> `(3, 8)`, shard 3 of 8.

    Example:

    >>> parse_shard("3/8")
    (3, 8)

    Raises:
        ValueError: unless the text is K/N with 0 <= K < N.
    """
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n)) if sep else None
    except ValueError:
        shard = None
    if not is_shard(shard):
        raise ValueError(f"'{text}' is not {SHARD_HELP} (this process's "
                         f"shard and the number of shards, e.g. 0/8)")
    return shard


@dataclasses.dataclass(frozen=True)
class Settings:
    """One comparison's settings, every one checked when made.

    Make it with `create` (from Python) or `from_args` (the command line);
    the fields are those of `DEFAULTS` and `RUN_FIELDS`. `seeds` may be a
    count (3 = seeds 0, 1, 2); `activations` a comma-separated string;
    `shard` is `(k, n)`, this process's share of the runs (see
    `results_folder`). With `out`, file locks there are tried first (see
    `results_folder.check_locks`), unless it is a shard's.

    Example:

    >>> s = Settings.create("digits", model="mlp", depth=2, seeds=3)
    >>> s.seeds, s.model_kwargs, s.specs[0].text
    ((0, 1, 2), {'depth': 2}, 'relu')

    Raises:
        ValueError: naming the bad setting and its value.
    """

    # From Python, `data` may be arrays and `model` a function or a Keras
    # model (see `python_api.compare_models`).
    data: str = DEFAULTS["data"]
    model: str = DEFAULTS["model"]
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    activations: tuple = DEFAULTS["activations"]
    seeds: tuple = DEFAULTS["seeds"]
    epochs: int = DEFAULTS["epochs"]
    batch_size: int = DEFAULTS["batch_size"]
    lr: float = DEFAULTS["lr"]
    momentum: float = DEFAULTS["momentum"]
    validation: float = DEFAULTS["validation"]
    out: str = None
    resume: bool = False
    overwrite: bool = False
    jobs: int = 1
    shard: tuple = None
    alpha: float = RUN_FIELDS["alpha"]
    specs: tuple = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        def set_(name, value):  # A frozen dataclass, while it checks.
            object.__setattr__(self, name, value)

        activations = self.activations
        if isinstance(activations, str):
            activations = [a.strip() for a in activations.split(",")]
        set_("activations", tuple(activations))
        seeds = self.seeds
        if _is_int(seeds) and 1 <= seeds <= MAX_SEED_COUNT:
            seeds = range(seeds)
        if isinstance(seeds, (range, list)):
            seeds = tuple(seeds)
        set_("seeds", seeds)
        set_("model_kwargs", dict(self.model_kwargs))
        for name in RULES:
            check_setting(name, getattr(self, name))
        self._check_activations()
        user_models.check(self.model, self.model_kwargs, self.specs)
        self._check_shard()
        if self.jobs > 1 and not isinstance(self.model, (str, os.PathLike)):
            raise ValueError(
                f"--jobs {self.jobs} needs a model its worker processes can "
                f"import: 'FILE.py:FUNCTION', 'package.module:FUNCTION' or "
                f"'FILE.keras'. Received: model={self.model!r}")
        if self.out is None:
            if self.resume or self.overwrite:
                raise ValueError("--resume and --overwrite need --out.")
            if self.jobs > 1:
                raise ValueError(
                    f"--jobs {self.jobs} needs --out: the worker processes "
                    f"share out the runs through that folder.")
        else:
            set_("out", os.fspath(self.out))
            # Shards share the folder as a resumed comparison does.
            results_folder.check(self.out, self.overwrite,
                                 self.resume or self.shard is not None)
            if self.shard is None:
                results_folder.check_locks(self.out)

    def _check_shard(self):
        if self.shard is None:
            return
        if isinstance(self.shard, list):
            object.__setattr__(self, "shard", tuple(self.shard))
        if not is_shard(self.shard):
            raise ValueError(f"shard must be (k, n) with 0 <= k < n. "
                             f"Received: shard={self.shard!r}")
        k, n = self.shard
        if self.out is None:
            raise ValueError(f"--shard {k}/{n} needs --out: the shards "
                             f"share the runs through that folder.")
        if self.overwrite:
            raise ValueError("--shard and --overwrite cannot go together: "
                             "a shard would remove the runs of the others. "
                             "Empty --out first, or use another one.")

    def _check_activations(self):
        specs = self.activations
        if not specs:
            raise ValueError("activations must name at least one activation "
                             "(the first is the baseline). Received: "
                             "activations=()")
        if not all(isinstance(spec, str) and spec for spec in specs):
            raise ValueError(f"activations must be non-empty names. "
                             f"Received: activations={specs!r}")
        repeated = first_repeated(specs)
        if repeated is not None:
            raise ValueError(f"activations must be distinct: '{repeated}' is "
                             f"repeated. Received: activations={specs!r}")
        object.__setattr__(self, "specs",
                           tuple(map(ActivationSpec.parse, specs)))

    @classmethod
    def create(cls, data=DEFAULTS["data"], **kwargs):
        """From keyword arguments: the fields, and any other keyword goes to
        the model builder (merged into `model_kwargs`)."""
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        given = {k: v for k, v in kwargs.items() if k in fields}
        builder = {k: v for k, v in kwargs.items() if k not in fields}
        given["model_kwargs"] = {**given.get("model_kwargs", {}), **builder}
        return cls(data=data, **given)

    @classmethod
    def from_args(cls, args, presets=None):
        """From parsed arguments: explicit flags, then the preset (one of
        `presets`), then `DEFAULTS`. `--model-kwargs` are merged over the
        preset's, unless `--model` names another model than the preset's:
        that replaces the preset's model and its keyword arguments."""
        preset = (presets or {}).get(getattr(args, "preset", None), {})
        given = {key: getattr(args, key, preset.get(key, default))
                 for key, default in DEFAULTS.items()}
        preset_kwargs = (preset.get("model_kwargs", {})
                         if given["model"] == preset.get("model") else {})
        given["model_kwargs"] = {**preset_kwargs,
                                 **getattr(args, "model_kwargs", {})}
        run = {key: getattr(args, key, default)
               for key, default in RUN_FIELDS.items()}
        return cls(**given, **run)

    def runs(self):
        """Every requested `(activation, seed)`, activation by activation."""
        return [(spec, seed) for spec in self.activations
                for seed in self.seeds]

    def config(self):
        """What `config.json` records: the settings that shape the runs,
        and where a model of the user's came from (`model_source`, see
        `user_models.record`)."""
        config = {key: getattr(self, key) for key in DEFAULTS}
        config["model"] = user_models.describe(self.model)
        config["model_source"] = user_models.record(self.model)
        if not isinstance(self.data, (str, os.PathLike)):
            from keras_sugar.experiments import datasets

            config["data"] = datasets.describe_arrays(self.data)
        return config

    def replace(self, **changes):
        """A copy with `changes`, checked again."""
        return dataclasses.replace(self, **changes)


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

"""Data for comparisons, with no download: generated `mnist1d`, the `digits`
that ship with scikit-learn, or the user's own `.npz` file."""

import importlib
import os

import numpy as np

BUILTIN = ("mnist1d", "digits")
REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


class Dataset:
    """Train/test arrays, float32 inputs with a channel axis, int labels."""

    def __init__(self, name, x_train, y_train, x_test, y_test):
        self.name = name
        self.x_train, self.x_test = _as_inputs(x_train), _as_inputs(x_test)
        self.y_train, self.y_test = _as_labels(y_train), _as_labels(y_test)
        self.num_classes = int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    def __repr__(self):
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, "
                f"test={self.x_test.shape}, classes={self.num_classes})")


def _as_inputs(x):
    x = np.asarray(x)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype("float32") / scale
    if x.ndim in (2, 3):  # (n, length) or (n, h, w): add the channel axis.
        x = x[..., None]
    return x


def _as_labels(y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    return y.reshape(-1).astype("int32")


def _require(module, extra, what):
    """Imports an optional dependency, or says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if (error.name or module).split(".")[0] != module.split(".")[0]:
            raise  # Installed, but something it needs is broken.
        raise ImportError(
            f"{what} needs the '{module.split('.')[0]}' package: pip "
            f"install \"keras-sugar[{extra}]\"") from error


def mnist1d(seed=42):
    """The MNIST-1D benchmark (Greydanus 2020), generated locally."""
    data_module = _require("mnist1d.data", "data", "The mnist1d data")
    get_dataset_args = data_module.get_dataset_args
    make_dataset = data_module.make_dataset

    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    return Dataset("mnist1d", data["x"], data["y"], data["x_test"],
                   data["y_test"])


def digits(test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 handwritten digits (ships with the package)."""
    _require("sklearn", "data", "The digits data")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, bunch.target, test_size=test_fraction, random_state=seed,
        stratify=bunch.target)
    return Dataset("digits", x_train, y_train, x_test, y_test)


def from_npz(path):
    """A user's `.npz` with `x_train`, `y_train`, `x_test`, `y_test`.

    Images may be uint8 (scaled to [0, 1]) and labels integers or one-hot,
    e.g. CIFAR-10/100 saved with `np.savez(path, x_train=..., ...)`.
    """
    with np.load(path) as arrays:
        missing = [key for key in REQUIRED_KEYS if key not in arrays.files]
        if missing:
            raise ValueError(
                f"{path} is missing {missing}. A data file needs the arrays "
                f"{list(REQUIRED_KEYS)}; it has {sorted(arrays.files)}.")
        data = {key: arrays[key] for key in REQUIRED_KEYS}
    for split in ("train", "test"):
        if len(data[f"x_{split}"]) != len(data[f"y_{split}"]):
            raise ValueError(
                f"{path}: x_{split} has {len(data[f'x_{split}'])} examples "
                f"but y_{split} has {len(data[f'y_{split}'])}.")
    name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(name, **data)


def load(name_or_path):
    """Loads a built-in dataset by name, or a `.npz` file by path.

    Example:

    >>> load("digits").input_shape
    (8, 8, 1)
    """
    if name_or_path in BUILTIN:
        return {"mnist1d": mnist1d, "digits": digits}[name_or_path]()
    if name_or_path.endswith(".npz"):
        if not os.path.exists(name_or_path):
            raise FileNotFoundError(f"No such data file: {name_or_path}")
        return from_npz(name_or_path)
    raise ValueError(
        f"Unknown data '{name_or_path}'. Valid choices: {list(BUILTIN)} or "
        f"a path to a .npz file with {list(REQUIRED_KEYS)}.")

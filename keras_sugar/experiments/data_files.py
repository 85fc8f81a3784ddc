"""Reading a user's data files: `.npz`, the CIFAR python format (folders
and `.tar.gz` archives) and folders of images, one subfolder per class.

Each reader returns the keyword arguments of `datasets.Dataset` (which
checks and scales them); errors name the file and what is wrong with it.
"""

import os
import pickle
import tarfile

import numpy as np

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Keras' `image_dataset_from_directory` conventions.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Share of each class held out for testing when a folder of images has no
# train/ and test/ subfolders.
TEST_FRACTION = 0.2
# The CIFAR python format: file names and label keys.
CIFAR10 = {"train": [f"data_batch_{i}" for i in range(1, 6)],
           "test": ["test_batch"], "labels": b"labels", "classes": 10}
CIFAR100 = {"train": ["train"], "test": ["test"], "labels": b"fine_labels",
            "classes": 100}


def load(path):
    """Reads `path`, choosing the reader from what it is.

    Returns:
        A dict of `datasets.Dataset` keyword arguments.
    """
    base = os.path.basename(os.path.normpath(path))
    if path.endswith(".npz"):
        return from_npz(path)
    if path.endswith((".tar.gz", ".tgz")):
        return from_cifar_archive(path)
    if os.path.isdir(path):
        names = _files_in(path)
        if _cifar_layout(names):
            return from_cifar_folder(path)
        _check_not_partial_cifar(path, names)
        return from_folder(path)
    raise ValueError(
        f"Cannot read data file {path}: expected a .npz file, a CIFAR python "
        f".tar.gz archive, or a folder (CIFAR python, or images with one "
        f"subfolder per class). Received a file named '{base}'.")


def _name(path):
    base = os.path.basename(os.path.normpath(path))
    for suffix in (".npz", ".tar.gz", ".tgz"):
        base = base[:-len(suffix)] if base.endswith(suffix) else base
    return base


def from_npz(path):
    """A `.npz` with `x_train`, `y_train`, `x_test`, `y_test`.

    Images may be uint8 (scaled to [0, 1]) and labels integers or one-hot,
    e.g. CIFAR-10/100 saved with `np.savez(path, x_train=..., ...)`.
    """
    with np.load(path) as arrays:
        missing = [key for key in NPZ_KEYS if key not in arrays.files]
        if missing:
            raise ValueError(
                f"{path} is missing {missing}. A data file needs the arrays "
                f"{list(NPZ_KEYS)}; it has {sorted(arrays.files)}.")
        data = {key: _npz_array(path, arrays, key) for key in NPZ_KEYS}
    return dict(name=_name(path), source=path, **data)


def _npz_array(path, arrays, key):
    try:
        return arrays[key]
    except ValueError as error:  # Object arrays, which need pickle.
        raise ValueError(
            f"{path}: {key} cannot be read: {error}. A data file holds "
            f"arrays of numbers (inputs, and labels as integers or one-hot "
            f"rows): save {key} with a numeric dtype, e.g. "
            f"np.asarray({key}, dtype=int).") from None


def _files_in(path):
    return {name for name in os.listdir(path)
            if os.path.isfile(os.path.join(path, name))}


def _cifar_layout(names):
    for layout in (CIFAR10, CIFAR100):
        if set(layout["train"] + layout["test"]) <= names:
            return layout
    return None


def _check_not_partial_cifar(path, names):
    """Refuses CIFAR batches with some missing, naming those. (`names` are
    files: `train/` and `test/` folders are splits of images.)"""
    for layout in (CIFAR10, CIFAR100):
        needed = layout["train"] + layout["test"]
        found = [name for name in needed if name in names]
        if found:
            missing = [name for name in needed if name not in names]
            raise ValueError(
                f"{path} holds CIFAR python batches {found} but is missing "
                f"{missing}: a CIFAR python folder or archive needs all of "
                f"{needed}.")


def _read_cifar(path, layout, open_member):
    """Arrays from CIFAR batches: pickled dicts of `b"data"` (N x 3072
    uint8, channel-major) and labels."""
    arrays = {}
    for split in ("train", "test"):
        xs, ys = [], []
        for member in layout[split]:
            with open_member(member) as f:
                # The CIFAR python format is pickled; read only files you
                # trust (the dataset's own download).
                batch = pickle.load(f, encoding="bytes")
            if b"data" not in batch or layout["labels"] not in batch:
                raise ValueError(
                    f"{path}: {member} is not a CIFAR batch (it needs "
                    f"{[b'data', layout['labels']]}; it has "
                    f"{sorted(batch)}).")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise ValueError(
                    f"{path}: {member} data has shape {data.shape}; CIFAR "
                    f"batches are (N, 3072).")
            xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(np.asarray(batch[layout["labels"]]))
        arrays[f"x_{split}"] = np.concatenate(xs)
        arrays[f"y_{split}"] = np.concatenate(ys)
    return arrays


def from_cifar_folder(path):
    """An extracted CIFAR python folder (`cifar-10-batches-py` or
    `cifar-100-python`; CIFAR-100 with its fine labels)."""
    layout = _cifar_layout(_files_in(path))
    arrays = _read_cifar(
        path, layout, lambda member: open(os.path.join(path, member), "rb"))
    return dict(name=_name(path), source=path,
                num_classes=layout["classes"], **arrays)


def from_cifar_archive(path):
    """A CIFAR python `.tar.gz`, as downloaded (read without extracting)."""
    with tarfile.open(path, "r:*") as archive:
        members = {os.path.basename(m.name): m for m in archive.getmembers()
                   if m.isfile()}
        layout = _cifar_layout(set(members))
        if layout is None:
            _check_not_partial_cifar(path, set(members))
            raise ValueError(
                f"{path} is not a CIFAR python archive: it needs "
                f"{CIFAR10['train'] + CIFAR10['test']} (CIFAR-10) or "
                f"{CIFAR100['train'] + CIFAR100['test']} (CIFAR-100).")
        arrays = _read_cifar(
            path, layout, lambda member: archive.extractfile(members[member]))
    name = _name(path).replace("-python", "")
    return dict(name=name, source=path, num_classes=layout["classes"],
                **arrays)


def _class_folders(path):
    return sorted(entry for entry in os.listdir(path)
                  if os.path.isdir(os.path.join(path, entry)))


def _image_files(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS))


def _read_images(files, size):
    import keras
    from PIL import UnidentifiedImageError  # Keras reads images with PIL.

    images = []
    for file, label in files:
        try:
            image = keras.utils.load_img(file, color_mode="rgb")
            pixels = np.asarray(image, dtype=np.uint8)  # Decodes it all.
        except OSError as error:  # PIL's errors for what is not an image.
            reason = ("not an image file PIL recognizes"
                      if isinstance(error, UnidentifiedImageError) else error)
            raise ValueError(f"{file} cannot be read as an image ({reason}): "
                             f"replace or remove it.") from None
        size = size or image.size
        if image.size != size:
            raise ValueError(
                f"{file} is {image.size[0]}x{image.size[1]} pixels but the "
                f"other images are {size[0]}x{size[1]}: resize them to one "
                f"size first.")
        images.append(pixels)
    return np.stack(images), np.array([label for _, label in files]), size


def _labelled_files(path, classes):
    files = []
    for label, name in enumerate(classes):
        found = _image_files(os.path.join(path, name))
        if not found:
            raise ValueError(f"{os.path.join(path, name)} has no images "
                             f"({', '.join(IMAGE_EXTENSIONS)}).")
        files.append([(file, label) for file in found])
    return files


def from_folder(path):
    """Images in one subfolder per class, Keras' `image_dataset_from_directory`
    conventions: classes are the subfolder names in sorted order, files
    `.bmp .gif .jpeg .jpg .png`, read as RGB.

    With `train/` and `test/` subfolders (the same classes in each), those
    are the splits; otherwise every class gives its last `TEST_FRACTION`
    of files (sorted by name, at least one) to the test split. Images must
    share one size.
    """
    splits = {}
    if {"train", "test"} <= set(_class_folders(path)):
        train_classes = _class_folders(os.path.join(path, "train"))
        test_classes = _class_folders(os.path.join(path, "test"))
        if train_classes != test_classes:
            raise ValueError(
                f"{path}: train/ has classes {train_classes} but test/ has "
                f"{test_classes}; they must be the same.")
        classes = train_classes
        for split in ("train", "test"):
            per_class = _labelled_files(os.path.join(path, split), classes)
            splits[split] = [f for files in per_class for f in files]
    else:
        classes = _class_folders(path)
        per_class = _labelled_files(path, classes) if classes else []
        if len(classes) < 2 or any(len(files) < 2 for files in per_class):
            raise ValueError(
                f"{path} needs one subfolder per class (at least two "
                f"classes, two images each), or train/ and test/ folders of "
                f"them. Found subfolders {classes}.")
        splits = {"train": [], "test": []}
        for files in per_class:
            held_out = max(1, int(round(TEST_FRACTION * len(files))))
            splits["train"] += files[:-held_out]
            splits["test"] += files[-held_out:]
    x_train, y_train, size = _read_images(splits["train"], None)
    x_test, y_test, _ = _read_images(splits["test"], size)
    return dict(name=_name(path), source=path, x_train=x_train,
                y_train=y_train, x_test=x_test, y_test=y_test,
                num_classes=len(classes))

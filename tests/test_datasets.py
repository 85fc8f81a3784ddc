"""Built-in data needs no download; user .npz files load or fail clearly."""

import numpy as np
import pytest

from keras_sugar.experiments import datasets


def test_digits():
    data = datasets.load("digits")
    assert data.x_train.shape == (1437, 8, 8, 1)
    assert data.x_test.shape == (360, 8, 8, 1)
    assert data.num_classes == 10 and data.x_train.max() == 1.0
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32


def test_mnist1d_is_generated_locally():
    data = datasets.load("mnist1d")
    assert data.x_train.shape == (4000, 40, 1)
    assert data.x_test.shape == (1000, 40, 1)
    assert set(np.unique(data.y_train)) == set(range(10))


def test_user_npz_with_uint8_images_and_one_hot_labels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "cifar_like.npz"
    np.savez(path, x_train=rng.integers(0, 256, (6, 4, 4, 3), np.uint8),
             y_train=np.eye(3)[[0, 1, 2, 0, 1, 2]],
             x_test=rng.integers(0, 256, (2, 4, 4, 3), np.uint8),
             y_test=np.array([[1], [2]]))
    data = datasets.load(str(path))
    assert data.name == "cifar_like" and data.input_shape == (4, 4, 3)
    assert data.x_train.max() <= 1.0 and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.y_train, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(data.y_test, [1, 2])
    assert data.num_classes == 3


def test_grayscale_images_get_a_channel_axis(tmp_path):
    path = tmp_path / "gray.npz"
    np.savez(path, x_train=np.zeros((3, 5, 5)), y_train=[0, 1, 1],
             x_test=np.zeros((1, 5, 5)), y_test=[0])
    assert datasets.load(str(path)).input_shape == (5, 5, 1)


def test_malformed_file_names_what_is_missing(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((3, 2)), y_train=np.zeros(3))
    with pytest.raises(ValueError, match=r"missing \['x_test', 'y_test'\]"):
        datasets.load(str(path))


def test_mismatched_lengths(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((3, 2)), y_train=np.zeros(2),
             x_test=np.zeros((1, 2)), y_test=np.zeros(1))
    with pytest.raises(ValueError, match="x_train has 3 .* y_train has 2"):
        datasets.load(str(path))


def test_unknown_names_and_missing_files():
    with pytest.raises(ValueError, match=r"Unknown data 'cifar5'.*mnist1d"):
        datasets.load("cifar5")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        datasets.load("nope.npz")


# --- keras.datasets, patched: the tests never download. ---

@pytest.mark.parametrize("name, shape, classes", [
    ("cifar10", (32, 32, 3), 10), ("cifar100", (32, 32, 3), 100),
    ("mnist", (28, 28), 10), ("fashion_mnist", (28, 28), 10)])
def test_keras_datasets_by_name(monkeypatch, name, shape, classes):
    import keras

    rng = np.random.default_rng(0)
    calls = []

    def load_data(**kwargs):
        calls.append(kwargs)
        x = rng.integers(0, 256, (5, *shape), np.uint8)
        y = np.array([0, 1, classes - 1, 2, 3]).reshape(-1, 1)
        return (x, y), (x[:2], y[:2])

    monkeypatch.setattr(getattr(keras.datasets, name), "load_data",
                        load_data)
    data = datasets.load(name)
    assert calls == [{"label_mode": "fine"} if name == "cifar100" else {}]
    assert data.num_classes == classes
    assert data.input_shape == shape + ((1,) if len(shape) == 2 else ())
    assert data.x_train.dtype == np.float32 and data.x_train.max() <= 1.0
    np.testing.assert_array_equal(data.y_train, [0, 1, classes - 1, 2, 3])


# --- The CIFAR python format: folders and archives, made here. ---

def _cifar_batch(rng, n, label_key, classes):
    images = rng.integers(0, 256, (n, 32, 32, 3), np.uint8)
    # Stored channel-major: all red values, then green, then blue.
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    labels = [int(v) for v in rng.integers(0, classes, n)]
    return images, labels, {b"data": data, label_key: labels}


def _write_cifar(folder, version, rng):
    import pickle

    folder.mkdir()
    names = ({"train": [f"data_batch_{i}" for i in range(1, 6)],
              "test": ["test_batch"]} if version == 10
             else {"train": ["train"], "test": ["test"]})
    key = b"labels" if version == 10 else b"fine_labels"
    expected = {}
    for split, files in names.items():
        images, labels = [], []
        for name in files:
            x, y, batch = _cifar_batch(rng, 3, key, version)
            with open(folder / name, "wb") as f:
                pickle.dump(batch, f)
            images.append(x)
            labels += y
        expected[split] = (np.concatenate(images), labels)
    return expected


@pytest.mark.parametrize("version", [10, 100])
@pytest.mark.parametrize("packed", [False, True])
def test_cifar_python_folders_and_archives(tmp_path, version, packed):
    import tarfile

    rng = np.random.default_rng(version)
    name = "cifar-10-batches-py" if version == 10 else "cifar-100-python"
    expected = _write_cifar(tmp_path / name, version, rng)
    path = tmp_path / name
    if packed:
        path = tmp_path / f"cifar-{version}-python.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            archive.add(tmp_path / name, arcname=name)
    data = datasets.load(str(path))
    assert data.num_classes == version
    assert data.input_shape == (32, 32, 3)
    np.testing.assert_array_equal(data.x_train,
                                  expected["train"][0] / np.float32(255))
    np.testing.assert_array_equal(data.x_test,
                                  expected["test"][0] / np.float32(255))
    np.testing.assert_array_equal(data.y_train, expected["train"][1])
    np.testing.assert_array_equal(data.y_test, expected["test"][1])


@pytest.mark.parametrize("packed", [False, True])
def test_cifar_batches_with_one_missing_are_named(tmp_path, packed):
    import tarfile

    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder, 10, np.random.default_rng(0))
    (folder / "data_batch_5").unlink()
    (folder / "batches.meta").write_bytes(b"")  # As downloaded.
    path = folder
    if packed:
        path = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            archive.add(folder, arcname=folder.name)
    with pytest.raises(ValueError, match=(
            rf"{path.name} holds CIFAR python batches \['data_batch_1', .*"
            rf"'test_batch'\] but is missing \['data_batch_5'\]")):
        datasets.load(str(path))


def test_an_archive_that_is_not_cifar_is_named(tmp_path):
    import tarfile

    (tmp_path / "notes.txt").write_text("hello")
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tmp_path / "notes.txt", arcname="notes.txt")
    with pytest.raises(ValueError, match="other.tar.gz is not a CIFAR"):
        datasets.load(str(path))


# --- Folders of images, one subfolder per class. ---

def _write_images(folder, per_class, size=(6, 5), start=0):
    from PIL import Image

    pixels = {}
    for label, name in enumerate(("cat", "dog")):  # Sorted: cat=0, dog=1.
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            value = start + 10 * label + i
            array = np.full((size[1], size[0], 3), value, np.uint8)
            path = folder / name / f"{i:02d}.png"
            Image.fromarray(array).save(path)
            pixels[str(path)] = (value, label)
    return pixels


def test_image_folder_with_train_and_test(tmp_path):
    _write_images(tmp_path / "pets" / "train", 3)
    _write_images(tmp_path / "pets" / "test", 2, start=100)
    data = datasets.load(str(tmp_path / "pets"))
    assert data.name == "pets" and data.num_classes == 2
    assert data.input_shape == (5, 6, 3)
    np.testing.assert_array_equal(data.y_train, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(data.y_test, [0, 0, 1, 1])
    # Scaled like every other source: uint8 / 255.
    np.testing.assert_allclose(data.x_train[:, 0, 0, 0],
                               np.array([0, 1, 2, 10, 11, 12]) / 255)
    np.testing.assert_allclose(data.x_test[:, 0, 0, 0],
                               np.array([100, 101, 110, 111]) / 255)


def test_image_folder_without_splits_holds_out_each_class_tail(tmp_path):
    _write_images(tmp_path / "pets", 5)
    data = datasets.load(str(tmp_path / "pets"))
    np.testing.assert_array_equal(data.y_train, [0] * 4 + [1] * 4)
    np.testing.assert_array_equal(data.y_test, [0, 1])
    np.testing.assert_allclose(data.x_test[:, 0, 0, 0],
                               np.array([4, 14]) / 255)


def test_image_folder_errors_name_the_file(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "pets", 3)
    odd = tmp_path / "pets" / "dog" / "odd.png"
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(odd)
    with pytest.raises(ValueError, match=r"odd.png is 9x9 pixels but the "
                       r"other images are 6x5"):
        datasets.load(str(tmp_path / "pets"))
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "only").mkdir()
    with pytest.raises(ValueError, match=r"one/only has no images"):
        datasets.load(str(tmp_path / "one"))
    for i in range(2):
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(
            tmp_path / "one" / "only" / f"{i}.png")
    with pytest.raises(ValueError, match=r"needs one subfolder per class "
                       r"\(at least two classes"):
        datasets.load(str(tmp_path / "one"))


def test_an_image_that_cannot_be_read_is_named(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "pets", 3)
    (tmp_path / "pets" / "dog" / "01.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=(
            r"pets/dog/01.png cannot be read as an image \(not an image file "
            r"PIL recognizes\): replace or remove it.")):
        datasets.load(str(tmp_path / "pets"))
    # Cut short: the header reads, the pixels do not.
    Image.fromarray(np.zeros((50, 50, 3), np.uint8) + 7).save(
        tmp_path / "pets" / "dog" / "01.png")
    whole = (tmp_path / "pets" / "dog" / "01.png").read_bytes()
    (tmp_path / "pets" / "dog" / "01.png").write_bytes(whole[:80])
    with pytest.raises(ValueError, match=r"pets/dog/01.png cannot be read "
                       r"as an image \("):
        datasets.load(str(tmp_path / "pets"))


# --- Checked before any training: errors name the file, array, value. ---

def _npz(tmp_path, **changes):
    arrays = dict(x_train=np.zeros((4, 3), np.float32),
                  y_train=np.array([0, 1, 2, 1]),
                  x_test=np.zeros((2, 3), np.float32), y_test=np.array([0, 1]))
    arrays.update(changes)
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("changes, message", [
    (dict(x_train=np.array([[0, 1, 2], [0, np.nan, 0], [0] * 3, [0] * 3],
                           np.float32)),
     r"data.npz: x_train has a non-finite value, x_train\[1, 1\] = nan"),
    (dict(x_test=np.array([[0, 0, np.inf], [0] * 3], np.float32)),
     r"x_test\[0, 2\] = inf"),
    (dict(y_train=np.array([0, -1, 2, 1])),
     r"data.npz: y_train\[1\] = -1 is not a class label in \[0, 3\)"),
    (dict(y_test=np.array([0, 1.5])),
     r"data.npz: y_test\[1\] = 1.5 is not an integer class label"),
    (dict(y_train=np.array([[1, 0], [0, 1], [1, 1], [0, 1]])),
     r"y_train has 2 columns, read as one-hot rows, but row 2 is \[1, 1\]"),
    (dict(x_test=np.zeros((0, 3)), y_test=np.zeros(0)),
     r"data.npz: x_test is empty"),
    (dict(x_test=np.zeros((2, 4))),
     r"x_train examples have shape \(3, 1\) but x_test examples have "
     r"\(4, 1\)"),
    (dict(y_train=np.array(["a", "b", "c", "d"])),
     r"y_train must be integer class labels"),
    (dict(y_train=np.array([0, 1, 2, 1], dtype=object)),
     r"data.npz: y_train cannot be read: Object arrays cannot be loaded "
     r".*save y_train with a numeric dtype"),
])
def test_bad_data_is_refused_naming_file_array_and_value(tmp_path, changes,
                                                         message):
    with pytest.raises(ValueError, match=message):
        datasets.load(_npz(tmp_path, **changes))


def test_labels_beyond_the_known_classes_are_refused():
    with pytest.raises(ValueError, match=r"y_test\[0\] = 10 is not a class "
                       r"label in \[0, 10\)"):
        datasets.Dataset("cifar10", np.zeros((2, 3)), [0, 9],
                         np.zeros((1, 3)), [10], num_classes=10)


def test_mnist5k_is_real_mnist_in_a_fixed_stratified_split():
    data = datasets.load("mnist5k")
    assert data.x_train.shape == (4000, 28, 28, 1)
    assert data.x_test.shape == (1000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.num_classes == 10
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(data.y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test), [100] * 10)
    again = datasets.load("mnist5k")  # The same split every time.
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.y_train, data.y_train)


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_hold_out_keeps_every_example_shape(name):
    data = datasets.load(name)
    split = datasets.hold_out(data, 0.1)
    shape = data.x_train.shape[1:]
    assert split.x_train.shape[1:] == split.x_val.shape[1:] == shape
    assert split.x_train.dtype == split.x_val.dtype == data.x_train.dtype


def test_hold_out_carves_a_stratified_validation_split_from_train():
    data = datasets.load("digits")
    split = datasets.hold_out(data, 0.1)
    train_counts = np.bincount(data.y_train)
    val_counts = np.bincount(split.y_val)
    np.testing.assert_array_equal(val_counts,
                                  np.round(0.1 * train_counts).astype(int))
    assert len(split.x_train) + len(split.x_val) == len(data.x_train)
    np.testing.assert_array_equal(split.x_test, data.x_test)  # Untouched.
    # No validation example is trained on.
    train = {row.tobytes() for row in split.x_train}
    assert not any(row.tobytes() in train for row in split.x_val)
    again = datasets.hold_out(data, 0.1)
    np.testing.assert_array_equal(again.x_val, split.x_val)
    assert "val=(142, 8, 8, 1)" in repr(split)

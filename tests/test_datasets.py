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
    with pytest.raises(ValueError, match=r"Unknown data 'cifar'.*mnist1d"):
        datasets.load("cifar")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        datasets.load("nope.npz")

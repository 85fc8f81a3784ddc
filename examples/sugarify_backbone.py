"""Rewrite a keras_cv (or keras_hub) backbone to SUGAR, train it, save it,
reload it, and show what changed.

Run: python examples/sugarify_backbone.py [--library cv|hub]   (any backend)

Needs keras_cv (pip install "keras-sugar[cv]") or keras_hub
(pip install "keras-sugar[hub]"). Backbones are built from config
(weights=None, no download); the data is generated.
"""

import argparse
import importlib
import os
import tempfile

EXTRAS = {"cv": "keras_cv", "hub": "keras_hub"}


def require(library):
    """Imports keras_cv or keras_hub, or says how to install it."""
    module = EXTRAS[library]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise SystemExit(f"This example needs {module}: pip install "
                         f"\"keras-sugar[{library}]\"") from error


def backbone(library):
    if library == "cv":
        import keras_cv

        return keras_cv.models.ResNetBackbone(
            stackwise_filters=[16, 32], stackwise_blocks=[2, 2],
            stackwise_strides=[1, 2], include_rescaling=False,
            input_shape=(32, 32, 3))
    import keras_hub

    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=(32, 32, 3))


def classifier(backbone, num_classes):
    """A classification head on the rewritten backbone: plain Keras layers,
    which save and load alike for either library (keras_hub's tasks compile
    themselves when loaded, so a trained task's optimizer does not load
    back)."""
    import keras

    inputs = keras.Input(backbone.input_shape[1:])
    features = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(features)
    return keras.Model(inputs, outputs)


def main(library):
    require(library)
    # Imported once the arguments are read, so --help starts no backend.
    import keras
    import numpy as np

    from keras_sugar import sugarify
    from keras_sugar.rewrite import count_sugar_sites

    keras.utils.set_random_seed(0)
    original = backbone(library)
    sugar_backbone = sugarify(original, "bsilu")
    print(sugar_backbone.sugar_report)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 32, 32, 3)).astype("float32")
    y = (x[:, :16].mean(axis=(1, 2, 3)) > 0).astype("int32")
    model = classifier(sugar_backbone, num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=32, verbose=2)

    path = os.path.join(tempfile.mkdtemp(), "sugar_classifier.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    same = np.allclose(restored.predict(x[:8], verbose=0),
                       model.predict(x[:8], verbose=0), atol=1e-6)
    print(f"saved to {path}; reloaded with {count_sugar_sites(restored)} "
          f"SugarReLU activations (of {count_sugar_sites(model)}); "
          f"same predictions: {same}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", choices=sorted(EXTRAS), default="cv",
                        help="keras_cv or keras_hub backbone (default: cv)")
    main(parser.parse_args().library)

"""Tests of nnutils.cnn (notebook 02): from-scratch convolution and pooling against Keras, the models' sizes."""

import keras
import numpy as np
import pytest

from nnutils import cnn


# ---------------------------------------------------------------------------------------- conv_output_size

@pytest.mark.parametrize("n, f, p, s, expected", [
    (6, 3, 0, 1, 4), (6, 3, 1, 1, 6), (7, 3, 0, 2, 3), (32, 5, 0, 1, 28), (28, 5, 2, 1, 28),
    (227, 11, 0, 4, 55), (8, 3, 0, 2, 3), (5, 5, 0, 1, 1),
])
def test_conv_output_size_formula(n, f, p, s, expected):
    assert cnn.conv_output_size(n, f, p, s) == expected


def test_conv_output_size_matches_keras():
    for n, f, s in [(10, 3, 1), (11, 3, 2), (12, 4, 3), (9, 9, 1)]:
        layer = keras.layers.Conv2D(1, f, strides=s)
        assert layer.compute_output_shape((1, n, n, 1))[1] == cnn.conv_output_size(n, f, 0, s)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(n=3, f=5), ValueError, "f"),
    (dict(n=6, f=3, stride=0), ValueError, "stride"),
    (dict(n=6, f=3, padding=-1), ValueError, "padding"),
    (dict(n=0, f=1), ValueError, "n"),
    (dict(n=6.0, f=3), TypeError, "n"),
    (dict(n=6, f=3, stride=1.5), TypeError, "stride"),
    (dict(n=6, f=True), TypeError, "f"),
])
def test_conv_output_size_bad_input(kwargs, error, word):
    with pytest.raises(error, match=word):
        cnn.conv_output_size(**kwargs)


def test_conv_output_size_padding_makes_a_big_filter_fit():
    assert cnn.conv_output_size(3, 5, padding=1) == 1


# ---------------------------------------------------------------------------------------- conv2d

def test_conv2d_vertical_edge_example():
    image = np.zeros((6, 6, 1))
    image[:, :3] = 10.0
    kernel = np.array([[1, 0, -1]] * 3, dtype=float)[:, :, None, None]
    out = cnn.conv2d(image, kernel)
    assert out.shape == (4, 4, 1)
    np.testing.assert_array_equal(out[:, :, 0], [[0, 30, 30, 0]] * 4)


def test_conv2d_is_cross_correlation_not_convolution():
    image = np.arange(9, dtype=float).reshape(3, 3, 1)
    kernel = np.zeros((3, 3, 1, 1))
    kernel[0, 0] = 1.0  # picks the top-left pixel; a flipped kernel would pick the bottom-right one
    assert cnn.conv2d(image, kernel)[0, 0, 0] == 0.0


def test_conv2d_two_filters_on_three_channels():
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(6, 6, 3)), rng.normal(size=(3, 3, 3, 2))
    out = cnn.conv2d(x, k)
    assert out.shape == (4, 4, 2)
    np.testing.assert_allclose(out[1, 2, 1], np.sum(x[1:4, 2:5, :] * k[:, :, :, 1]))


@pytest.mark.parametrize("h, w, c_in, c_out, f, stride, padding", [
    (6, 6, 1, 1, 3, 1, 0), (7, 9, 3, 4, 3, 2, 1), (10, 10, 2, 5, 5, 1, 2), (8, 8, 3, 2, 1, 3, 0),
    (9, 7, 4, 3, 4, 2, 0), (5, 5, 1, 2, 5, 1, 0), (6, 6, 2, 2, 3, 3, 3),
])
def test_conv2d_equals_keras_ops_conv(h, w, c_in, c_out, f, stride, padding):
    rng = np.random.default_rng(h * 100 + f)
    x = rng.normal(size=(h, w, c_in)).astype("float32")
    kernel = rng.normal(size=(f, f, c_in, c_out)).astype("float32")
    padded = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))
    expected = keras.ops.convert_to_numpy(keras.ops.conv(padded[None], kernel, strides=stride, padding="valid"))[0]
    np.testing.assert_allclose(cnn.conv2d(x, kernel, stride, padding), expected, rtol=1e-4, atol=1e-4)


def test_conv2d_same_padding_equals_keras_same():
    rng = np.random.default_rng(1)
    x, k = rng.normal(size=(8, 8, 2)).astype("float32"), rng.normal(size=(3, 3, 2, 4)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.conv(x[None], k, padding="same"))[0]
    np.testing.assert_allclose(cnn.conv2d(x, k, padding=1), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape, k_shape, kwargs, error, word", [
    ((6, 6, 3), (3, 3, 2, 1), {}, ValueError, "channels"),
    ((6, 6, 1), (3, 3, 1, 1), dict(stride=0), ValueError, "stride"),
    ((6, 6, 1), (3, 3, 1, 1), dict(stride=-2), ValueError, "stride"),
    ((4, 4, 1), (5, 5, 1, 1), {}, ValueError, "larger than the padded input"),
    ((6, 6, 1), (3, 3, 1, 1), dict(padding=-1), ValueError, "padding"),
    ((6, 6, 1), (3, 3, 1, 1), dict(padding=1.0), TypeError, "padding"),
    ((6, 6, 1), (3, 3, 1, 1), dict(stride="2"), TypeError, "stride"),
    ((6, 6), (3, 3, 1, 1), {}, ValueError, "x"),
    ((6, 6, 1), (3, 3, 1), {}, ValueError, "kernel"),
])
def test_conv2d_bad_input(x_shape, k_shape, kwargs, error, word):
    with pytest.raises(error, match=word):
        cnn.conv2d(np.ones(x_shape), np.ones(k_shape), **kwargs)


def test_conv2d_padding_lets_a_big_filter_fit():
    assert cnn.conv2d(np.ones((4, 4, 1)), np.ones((5, 5, 1, 1)), padding=1).shape == (2, 2, 1)


# ---------------------------------------------------------------------------------------- max_pool2d

@pytest.mark.parametrize("h, w, c, size, stride", [(4, 4, 1, 2, 2), (7, 6, 3, 2, 2), (9, 9, 2, 3, 2), (6, 8, 4, 3, 3),
                                                   (5, 5, 1, 2, 1)])
def test_max_pool2d_equals_keras_ops_max_pool(h, w, c, size, stride):
    x = np.random.default_rng(h + w).normal(size=(h, w, c)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.max_pool(x[None], pool_size=size, strides=stride))[0]
    np.testing.assert_allclose(cnn.max_pool2d(x, size, stride), expected)


def test_max_pool2d_example():
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]], dtype=float)[:, :, None]
    np.testing.assert_array_equal(cnn.max_pool2d(x)[:, :, 0], [[9, 2], [6, 3]])


@pytest.mark.parametrize("x_shape, kwargs, error, word", [
    ((4, 4, 1), dict(size=5), ValueError, "larger than the padded input"),
    ((4, 4, 1), dict(stride=0), ValueError, "stride"),
    ((4, 4, 1), dict(size=0), ValueError, "size"),
    ((4, 4), {}, ValueError, "x"),
    ((4, 4, 1), dict(size=2.0), TypeError, "size"),
])
def test_max_pool2d_bad_input(x_shape, kwargs, error, word):
    with pytest.raises(error, match=word):
        cnn.max_pool2d(np.ones(x_shape), **kwargs)


def test_from_scratch_rejects_non_numbers():
    with pytest.raises(TypeError, match="x"):
        cnn.max_pool2d(np.array([[["a"]]]))


# ---------------------------------------------------------------------------------------- parameter formulas

def test_conv_and_dense_params_match_keras():
    conv = keras.layers.Conv2D(16, 5)
    conv.build((None, 14, 14, 6))
    assert cnn.conv_params(5, 6, 16) == conv.count_params() == 2416
    dense = keras.layers.Dense(84)
    dense.build((None, 120))
    assert cnn.dense_params(120, 84) == dense.count_params() == 10164
    assert cnn.conv_params(3, 3, 2, bias=False) == 54
    assert cnn.dense_params(10, 5, bias=False) == 50


@pytest.mark.parametrize("call, error, word", [
    (lambda: cnn.conv_params(0, 1, 1), ValueError, "f"),
    (lambda: cnn.conv_params(3, 1, 1, bias=1), TypeError, "bias"),
    (lambda: cnn.dense_params(10, -1), ValueError, "n_out"),
    (lambda: cnn.dense_params("10", 1), TypeError, "n_in"),
])
def test_param_formulas_bad_input(call, error, word):
    with pytest.raises(error, match=word):
        call()


# ---------------------------------------------------------------------------------------- models

def test_lenet5_topology_and_parameters():
    model = cnn.lenet5()
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes == {"pad": (32, 32, 1), "C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16),
                      "S4": (5, 5, 16), "C5": (1, 1, 120), "flatten": (120,), "F6": (84,), "output": (10,)}
    expected = (cnn.conv_params(5, 1, 6) + cnn.conv_params(5, 6, 16) + cnn.conv_params(5, 16, 120)
                + cnn.dense_params(120, 84) + cnn.dense_params(84, 10))
    assert model.count_params() == expected == 61706
    probabilities = keras.ops.convert_to_numpy(model(np.zeros((2, 28, 28, 1), "float32")))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_lenet5_on_32x32_without_padding_and_average_pooling():
    model = cnn.lenet5(input_shape=(32, 32, 1), padding=0, pooling="average", activation="tanh", num_classes=5)
    assert "pad" not in [layer.name for layer in model.layers]
    assert isinstance(model.get_layer("S2"), keras.layers.AveragePooling2D)
    assert model.layers[-1].output.shape[1:] == (5,)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(input_shape=(28, 28)), ValueError, "input_shape"),
    (dict(input_shape=(20, 20, 1)), ValueError, "32x32"),
    (dict(pooling="min"), ValueError, "pooling"),
    (dict(num_classes=0), ValueError, "num_classes"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(activation="nope"), ValueError, "nope"),
])
def test_lenet5_bad_input(kwargs, error, word):
    with pytest.raises(error, match=word):
        cnn.lenet5(**kwargs)


def test_vgg_block_shapes_and_parameters():
    block = cnn.vgg_block(8, convs=3, name="b")
    out = block(np.zeros((1, 16, 16, 4), "float32"))
    assert tuple(out.shape) == (1, 8, 8, 8)
    assert block.count_params() == cnn.conv_params(3, 4, 8) + 2 * cnn.conv_params(3, 8, 8)
    assert [layer.name for layer in block.layers] == ["conv1", "conv2", "conv3", "pool"]


def test_small_vgg_parameter_count():
    model = cnn.vgg(blocks=((4, 1), (8, 2)), input_shape=(16, 16, 3), num_classes=10, dense_units=32)
    expected = (cnn.conv_params(3, 3, 4) + cnn.conv_params(3, 4, 8) + cnn.conv_params(3, 8, 8)
                + cnn.dense_params(4 * 4 * 8, 32) + cnn.dense_params(32, 32) + cnn.dense_params(32, 10))
    assert model.count_params() == expected
    rows = cnn.parameter_table(model)
    assert rows[0] == ("block1/conv1", (16, 16, 4), cnn.conv_params(3, 3, 4))
    assert sum(count for _, _, count in rows) == expected


@pytest.mark.parametrize("call, error, word", [
    (lambda: cnn.vgg_block(0), ValueError, "filters"),
    (lambda: cnn.vgg_block(8, convs=0), ValueError, "convs"),
    (lambda: cnn.vgg_block(8, name=3), TypeError, "name"),
    (lambda: cnn.vgg(blocks=()), ValueError, "blocks"),
    (lambda: cnn.vgg(blocks=((8, 1),) * 5, input_shape=(16, 16, 3)), ValueError, "input_shape"),
    (lambda: cnn.alexnet(input_shape=(32, 32, 3)), ValueError, "input_shape"),
    (lambda: cnn.alexnet(num_classes=0), ValueError, "num_classes"),
    (lambda: cnn.parameter_table("model"), TypeError, "model"),
])
def test_model_builders_bad_input(call, error, word):
    with pytest.raises(error, match=word):
        call()


def test_alexnet_shapes_on_a_small_input():
    model = cnn.alexnet(input_shape=(67, 67, 3), num_classes=10)
    assert model.get_layer("conv1").output.shape[1:] == (15, 15, 96)
    assert model.layers[-1].output.shape[1:] == (10,)


# ---------------------------------------------------------------------------------------- data helpers

def test_prepare_images():
    x = cnn.prepare_images(np.full((2, 28, 28), 255, np.uint8))
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0
    with pytest.raises(ValueError, match="x"):
        cnn.prepare_images(np.zeros((28, 28)))
    with pytest.raises(TypeError, match="x"):
        cnn.prepare_images(np.array([[["a"]]]))


def test_shift_images():
    x = np.zeros((1, 4, 4), int)
    x[0, 1, 1] = 7
    shifted = cnn.shift_images(x, dx=2, dy=-1)
    assert shifted[0, 0, 3] == 7 and shifted.sum() == 7
    assert cnn.shift_images(x, dx=-2).sum() == 0  # column 1 - 2 = -1 lies outside: the pixel is gone
    np.testing.assert_array_equal(cnn.shift_images(x), x)
    with pytest.raises(ValueError, match="dx"):
        cnn.shift_images(x, dx=4)
    with pytest.raises(TypeError, match="dy"):
        cnn.shift_images(x, dy=1.0)
    with pytest.raises(ValueError, match="x"):
        cnn.shift_images(np.zeros((4, 4)))


# ---------------------------------------------------------------------------------------- callback and plot

def test_time_to_accuracy_records_the_first_epoch_that_reaches_the_target():
    callback = cnn.TimeToAccuracy(target=0.9)
    callback.on_train_begin()
    for epoch, accuracy in enumerate([0.5, 0.95, 0.97]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert callback.epoch_reached == 2 and callback.seconds_to_target == callback.elapsed[1] >= 0
    assert callback.values == [0.5, 0.95, 0.97]


def test_time_to_accuracy_in_a_real_fit():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = cnn.TimeToAccuracy(target=0.01)
    model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[callback])
    assert callback.epoch_reached == 1 and len(callback.elapsed) == 2


def test_time_to_accuracy_bad_input():
    with pytest.raises(ValueError, match="target"):
        cnn.TimeToAccuracy(target=1.5)
    with pytest.raises(TypeError, match="monitor"):
        cnn.TimeToAccuracy(monitor=3)
    callback = cnn.TimeToAccuracy()
    callback.on_train_begin()
    with pytest.raises(ValueError, match="val_accuracy"):
        callback.on_epoch_end(0, {"accuracy": 0.5})


def test_show_feature_maps():
    import matplotlib

    matplotlib.use("Agg")
    from nnutils import plot

    fig = plot.show_feature_maps(np.random.default_rng(0).normal(size=(5, 5, 6)), ncols=4, title="maps")
    assert len(fig.axes) == 8 and fig.axes[0].get_title() == "0"
    with pytest.raises(ValueError, match="maps"):
        plot.show_feature_maps(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="ncols"):
        plot.show_feature_maps(np.zeros((5, 5, 2)), ncols=0)
    with pytest.raises(ValueError, match="labels"):
        plot.show_feature_maps(np.zeros((5, 5, 2)), labels=["a"])
    matplotlib.pyplot.close("all")


def test_inception_block_3a_shapes_and_parameters():
    block = cnn.inception_block((28, 28, 192), 64, (96, 128), (16, 32), 32, name="3a")
    assert block.output.shape[1:] == (28, 28, 256)
    expected = (cnn.conv_params(1, 192, 64) + cnn.conv_params(1, 192, 96) + cnn.conv_params(3, 96, 128)
                + cnn.conv_params(1, 192, 16) + cnn.conv_params(5, 16, 32) + cnn.conv_params(1, 192, 32))
    assert block.count_params() == expected == 163_696  # GoogLeNet's inception (3a)
    x = np.random.default_rng(0).normal(size=(1, 28, 28, 192)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    first = keras.ops.convert_to_numpy(block.get_layer("1x1")(x))
    np.testing.assert_allclose(out[..., :64], first, atol=1e-5)  # the 1x1 branch comes first


def test_a_1x1_convolution_is_a_dense_layer_at_every_pixel():
    conv = keras.layers.Conv2D(5, 1)
    x = np.random.default_rng(1).normal(size=(2, 4, 6, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(conv(x))
    kernel, bias = conv.get_weights()
    np.testing.assert_allclose(y, x @ kernel[0, 0] + bias, atol=1e-5)


@pytest.mark.parametrize("call, error, word", [
    (lambda: cnn.inception_block((28, 28), 1, (1, 1), (1, 1), 1), ValueError, "input_shape"),
    (lambda: cnn.inception_block((8, 8, 3), 0, (1, 1), (1, 1), 1), ValueError, "c1"),
    (lambda: cnn.inception_block((8, 8, 3), 1, 4, (1, 1), 1), ValueError, "c3"),
    (lambda: cnn.inception_block((8, 8, 3), 1, (1, 1), (1, 0), 1), ValueError, "c5"),
    (lambda: cnn.inception_block((8, 8, 3), 1, (1, 1), (1, 1), 1, name=5), TypeError, "name"),
])
def test_inception_block_bad_input(call, error, word):
    with pytest.raises(error, match=word):
        call()

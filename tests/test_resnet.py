"""Tests of nnutils.resnet (notebook 03): blocks, networks, augmentation and gradient norms."""

import numpy as np
import pytest
import keras

from nnutils import resnet

_np = keras.ops.convert_to_numpy  # Keras outputs as NumPy on every backend (np.asarray fails on torch tensors that need grad)


def _images(n=4, size=8, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size, channels)).astype("float32")


# ---------------------------------------------------------------- ResidualBlock
def test_identity_block_keeps_shape_and_uses_identity_shortcut():
    block = resnet.ResidualBlock(3)
    out = block(_images(channels=3))
    assert out.shape == (4, 8, 8, 3)
    assert block.shortcut == "identity"
    assert block.projection is None


@pytest.mark.parametrize("filters, strides, shape", [(6, 1, (4, 8, 8, 6)), (3, 2, (4, 4, 4, 3)), (6, 2, (4, 4, 4, 6))])
def test_projection_shortcut_when_shape_changes(filters, strides, shape):
    block = resnet.ResidualBlock(filters, strides=strides)
    out = block(_images(channels=3))
    assert out.shape == shape
    assert block.shortcut == "projection"
    assert block.projection.kernel.shape == (1, 1, 3, filters)


def test_plain_block_has_no_shortcut():
    block = resnet.ResidualBlock(6, strides=2, residual=False)
    assert block(_images()).shape == (4, 4, 4, 6)
    assert block.shortcut == "none"
    assert block.projection is None


def test_shortcut_unknown_before_build():
    with pytest.raises(ValueError, match="build"):
        resnet.ResidualBlock(4).shortcut


def test_output_is_nonnegative():
    out = keras.ops.convert_to_numpy(resnet.ResidualBlock(6, strides=2)(_images()))
    assert out.min() >= 0.0


def _functional_twin(block, input_shape):
    """The same computation as `block` (original or pre-activation), built from Keras's own layers."""
    L = keras.layers
    inputs = keras.Input(input_shape)
    conv1 = L.Conv2D(block.filters, 3, strides=block.strides, padding="same", use_bias=False, name="c1")
    conv2 = L.Conv2D(block.filters, 3, padding="same", use_bias=False, name="c2")
    if block.preactivation:  # x + conv2(relu(bn2(conv1(relu(bn1(x))))))
        activated = L.ReLU()(L.BatchNormalization(name="b1")(inputs))
        y = conv2(L.ReLU()(L.BatchNormalization(name="b2")(conv1(activated))))
        skip = inputs
        if block.projection is not None:
            skip = L.Conv2D(block.filters, 1, strides=block.strides, use_bias=False, name="p")(activated)
        outputs = L.Add()([y, skip])
    else:                    # relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
        y = L.BatchNormalization(name="b2")(conv2(L.ReLU()(L.BatchNormalization(name="b1")(conv1(inputs)))))
        skip = inputs
        if block.projection is not None:
            skip = L.BatchNormalization(name="pb")(
                L.Conv2D(block.filters, 1, strides=block.strides, use_bias=False, name="p")(inputs))
        outputs = L.ReLU()(L.Add()([y, skip]))
    twin = keras.Model(inputs, outputs)
    pairs = {"c1": block.conv1, "b1": block.bn1, "c2": block.conv2, "b2": block.bn2,
             "p": block.projection, "pb": block.projection_bn}
    for name, layer in pairs.items():
        if layer is not None:
            twin.get_layer(name).set_weights(layer.get_weights())
    return twin


@pytest.mark.parametrize("filters, strides", [(3, 1), (6, 2)])
def test_block_equals_functional_keras_twin(filters, strides):
    x = _images(channels=3)
    block = resnet.ResidualBlock(filters, strides=strides)
    block(x)
    rng = np.random.default_rng(1)
    # non-trivial batch-norm statistics, so that inference mode is really tested
    for bn in (block.bn1, block.bn2, block.projection_bn):
        if bn is not None:
            bn.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in bn.get_weights()])
    twin = _functional_twin(block, x.shape[1:])
    np.testing.assert_allclose(_np(block(x, training=False)), _np(twin(x, training=False)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(block(x, training=True)), _np(twin(x, training=True)), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- pre-activation blocks (He et al. 2016)
@pytest.mark.parametrize("filters, strides", [(3, 1), (6, 2)])
def test_preactivation_block_equals_functional_keras_twin(filters, strides):
    x = _images(channels=3)
    block = resnet.ResidualBlock(filters, strides=strides, preactivation=True)
    block(x)
    assert block.projection_bn is None and block.bn1.gamma.shape == (3,)
    rng = np.random.default_rng(2)
    for bn in (block.bn1, block.bn2):
        bn.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in bn.get_weights()])
    twin = _functional_twin(block, x.shape[1:])
    np.testing.assert_allclose(_np(block(x, training=False)), _np(twin(x, training=False)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(block(x, training=True)), _np(twin(x, training=True)), rtol=1e-4, atol=1e-4)


def test_preactivation_identity_block_is_exactly_the_identity_when_its_branch_is_zero():
    x = _images(channels=4, seed=5)  # negative values too
    pre = resnet.ResidualBlock(4, preactivation=True)
    pre(x)
    pre.conv2.kernel.assign(np.zeros(pre.conv2.kernel.shape, "float32"))
    np.testing.assert_array_equal(_np(pre(x)), x)
    original = resnet.ResidualBlock(4)
    original(x)
    original.bn2.gamma.assign(np.zeros(4, "float32"))  # F(x) = 0 as well, but the ReLU after the sum remains
    np.testing.assert_allclose(_np(original(x)), np.maximum(x, 0), atol=1e-6)
    assert not np.allclose(_np(original(x)), x)


def test_preactivation_block_output_can_be_negative_and_plain_variant_has_no_shortcut():
    x = _images(channels=3)
    assert _np(resnet.ResidualBlock(3, preactivation=True)(x)).min() < 0
    plain = resnet.ResidualBlock(6, strides=2, residual=False, preactivation=True)
    assert plain(x).shape == (4, 4, 4, 6) and plain.shortcut == "none"


def test_preactivation_net_has_final_bn_relu_and_round_trips(tmp_path):
    model = resnet.build_resnet(8, widths=(4, 8, 8), input_shape=(12, 12, 1), preactivation=True)
    names = [layer.name for layer in model.layers]
    assert "stem_bn" not in names and names.index("final_bn") < names.index("pool")
    assert all(b.preactivation for b in model.layers if isinstance(b, resnet.ResidualBlock))
    x = np.random.default_rng(0).random((4, 12, 12, 1)).astype("float32")
    path = tmp_path / "pre.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("stage1_block1").preactivation
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_preactivation_resnet20_parameter_count():
    original = resnet.build_resnet(20, input_shape=(32, 32, 3))
    pre = resnet.build_resnet(20, input_shape=(32, 32, 3), preactivation=True)
    # the same convolutions; batch norms move (stem's 16 channels -> final 64; projections lose theirs, and the
    # first bn of each stage-opening block normalises its input's channels instead of its output's)
    bn = lambda c: 4 * c
    removed = bn(16) + bn(32) + bn(64) + (bn(32) - bn(16)) + (bn(64) - bn(32))
    assert original.count_params() - pre.count_params() == removed - bn(64)


def test_preactivation_bad_argument():
    with pytest.raises(TypeError, match="preactivation"):
        resnet.ResidualBlock(4, preactivation="yes")
    with pytest.raises(TypeError, match="preactivation"):
        resnet.build_cifar_net(8, preactivation=0)


def test_block_config_round_trip():
    block = resnet.ResidualBlock(8, strides=2, residual=False, batch_norm=False, preactivation=True, name="b")
    clone = resnet.ResidualBlock.from_config(block.get_config())
    assert (clone.filters, clone.strides, clone.residual, clone.batch_norm, clone.preactivation, clone.name) == (
        8, 2, False, False, True, "b")


def test_block_without_batch_norm_has_biases():
    block = resnet.ResidualBlock(4, batch_norm=False)
    block(_images(channels=2))
    assert block.bn1 is None and block.conv1.bias is not None
    assert block.shortcut == "projection"


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(filters=0), ValueError, "filters"),
    (dict(filters=2.5), TypeError, "filters"),
    (dict(filters=4, strides=0), ValueError, "strides"),
    (dict(filters=4, residual="yes"), TypeError, "residual"),
    (dict(filters=4, batch_norm=1), TypeError, "batch_norm"),
])
def test_block_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        resnet.ResidualBlock(**kwargs)


def test_block_rejects_non_image_input():
    with pytest.raises(ValueError, match="inputs"):
        resnet.ResidualBlock(4).build((2, 8, 3))


# ---------------------------------------------------------------- networks
def test_resnet20_parameter_count_and_depth():
    model = resnet.build_resnet(20, input_shape=(32, 32, 3))
    assert 0.26e6 < model.count_params() < 0.28e6  # the paper's "0.27M"
    assert len(resnet.conv_kernels(model)) == 19  # + the dense layer = 20 weighted layers
    blocks = [layer for layer in model.layers if isinstance(layer, resnet.ResidualBlock)]
    assert len(blocks) == 9
    assert [b.shortcut for b in blocks].count("projection") == 2
    assert model.output.shape == (None, 10)


def test_plain_net_differs_only_by_shortcuts():
    plain, res = resnet.build_plain(14), resnet.build_resnet(14)
    assert plain.name == "plain14" and res.name == "resnet14"
    assert len(resnet.conv_kernels(plain)) == len(resnet.conv_kernels(res)) == 13
    projection_params = (16 * 32 + 2 * 2 * 32) + (32 * 64 + 2 * 2 * 64)  # 1x1 kernels + their batch norms
    assert res.count_params() - plain.count_params() == projection_params


def test_network_outputs_probabilities():
    model = resnet.build_resnet(8, widths=(4, 8, 8), input_shape=(12, 12, 1), num_classes=5)
    probs = _np(model(np.random.rand(3, 12, 12, 1).astype("float32")))
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_model_round_trips_through_keras_file(tmp_path):
    model = resnet.build_resnet(8, widths=(4, 8, 8), input_shape=(12, 12, 1),
                                augment=[resnet.RandomShiftFlip(1, seed=3)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.rand(8, 12, 12, 1).astype("float32")
    model.fit(x, np.arange(8) % 10, epochs=1, verbose=0)  # moves the batch-norm statistics
    path = tmp_path / "resnet8.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("stage2_block1"), resnet.ResidualBlock)
    assert loaded.get_layer("stage2_block1").shortcut == "projection"
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("depth", [8, 14, 20, 56])
def test_blocks_per_stage(depth):
    assert 6 * resnet.blocks_per_stage(depth) + 2 == depth


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(depth=21), ValueError, "depth"),
    (dict(depth=2), ValueError, "depth"),
    (dict(depth="20"), TypeError, "depth"),
    (dict(depth=20, input_shape=(28, 28)), ValueError, "input_shape"),
    (dict(depth=20, widths=(16, 32)), ValueError, "widths"),
    (dict(depth=20, num_classes=0), ValueError, "num_classes"),
    (dict(depth=20, residual=None), TypeError, "residual"),
    (dict(depth=20, augment=["flip"]), TypeError, "augment"),
])
def test_network_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        resnet.build_cifar_net(**kwargs)


# ---------------------------------------------------------------- augmentation
def test_random_shift_flip_is_identity_at_inference():
    x = _images()
    np.testing.assert_array_equal(resnet.RandomShiftFlip(2)(x), x)


def test_random_shift_flip_gives_shifted_or_mirrored_copies():
    x = _images(n=16, size=6, channels=2, seed=2)
    out = np.asarray(resnet.RandomShiftFlip(2, seed=4)(x, training=True))
    found_flip = False
    for image, augmented in zip(x, out):
        matches = []
        for flipped in (False, True):
            source = np.pad(image[:, ::-1] if flipped else image, [(2, 2), (2, 2), (0, 0)])
            matches += [flipped for dy in range(5) for dx in range(5)
                        if np.allclose(source[dy:dy + 6, dx:dx + 6], augmented)]
        assert matches, "every output must be a whole-pixel shift of the image or of its mirror"
        found_flip |= all(matches)
    assert found_flip


def test_random_shift_flip_bad_arguments():
    with pytest.raises(ValueError, match="max_shift"):
        resnet.RandomShiftFlip(-1)
    with pytest.raises(TypeError, match="flip"):
        resnet.RandomShiftFlip(2, flip="yes")


# ---------------------------------------------------------------- gradient norms
def test_gradient_norms_one_per_conv_layer_and_positive():
    model = resnet.build_plain(8, widths=(4, 8, 8), input_shape=(12, 12, 1))
    x = np.random.default_rng(0).random((16, 12, 12, 1)).astype("float32")
    names, norms = resnet.gradient_norms(model, x, np.arange(16) % 10)
    assert len(names) == len(norms) == 7
    assert names[0].startswith("stem_conv")
    assert np.all(norms > 0) and np.all(np.isfinite(norms))


def test_gradient_norms_match_finite_difference():
    keras.utils.set_random_seed(0)
    model = resnet.build_resnet(8, widths=(2, 2, 2), input_shape=(6, 6, 1), batch_norm=False)
    x = np.random.default_rng(0).random((4, 6, 6, 1)).astype("float32")
    y = np.array([0, 1, 2, 3])
    _, norms = resnet.gradient_norms(model, x, y)
    kernel = resnet.conv_kernels(model)[-1][1]
    base = kernel.numpy().astype("float64")
    loss = keras.losses.SparseCategoricalCrossentropy()
    grad = np.zeros_like(base)
    eps = 1e-2
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[index] += sign * eps
            kernel.assign(shifted.astype("float32"))
            values.append(float(loss(y, model(x, training=True))))
        grad[index] = (values[0] - values[1]) / (2 * eps)
    kernel.assign(base.astype("float32"))
    np.testing.assert_allclose(norms[-1], np.linalg.norm(grad), rtol=5e-2)


def test_gradient_norms_bad_inputs():
    model = resnet.build_plain(8, widths=(2, 2, 2), input_shape=(6, 6, 1))
    x = np.zeros((4, 6, 6, 1), "float32")
    with pytest.raises(ValueError, match="x must"):
        resnet.gradient_norms(model, np.zeros((4, 5, 5, 1)), np.zeros(4, int))
    with pytest.raises(ValueError, match="y must"):
        resnet.gradient_norms(model, x, np.zeros(3, int))
    with pytest.raises(ValueError, match="y must"):
        resnet.gradient_norms(model, x, np.zeros(4))
    with pytest.raises(TypeError, match="model"):
        resnet.gradient_norms("model", x, np.zeros(4, int))
    dense = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no 3x3"):
        resnet.conv_kernels(dense)


# ---------------------------------------------------------------- plots added for notebook 03
def test_plot_gradient_norms_and_error_curves():
    import matplotlib
    matplotlib.use("Agg")
    from nnutils import plot

    fig = plot.plot_gradient_norms({"plain": [3.0, 2.0, 1.0], "residual": [1.0, 1.1, 0.9]})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2 and ax.get_xlabel() and ax.get_ylabel()
    fig = plot.plot_error_curves({"plain-20": [0.5, 0.3], "resnet-20": [0.4, 0.2]})
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.lines[0].get_linestyle() == "--"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [40.0, 20.0])


def test_plot_functions_bad_inputs():
    from nnutils import plot

    with pytest.raises(TypeError, match="norms"):
        plot.plot_gradient_norms([1.0, 2.0])
    with pytest.raises(ValueError, match="norms"):
        plot.plot_gradient_norms({"plain": [1.0, 0.0]})
    with pytest.raises(TypeError, match="curves"):
        plot.plot_error_curves({})
    with pytest.raises(ValueError, match="curves"):
        plot.plot_error_curves({"plain": []})

"""Residual networks: the residual block, plain and residual CIFAR-style nets, gradient norms (notebook 03).

Everything here uses ``keras.layers`` and ``keras.ops`` so that it runs on the TensorFlow and JAX
backends alike; only ``gradient_norms`` needs the backend's own automatic differentiation.
"""

import keras
import numpy as np
from keras import layers

from nnutils import autodiff
from nnutils._args import positive_int

# Batch-norm running statistics follow each batch with weight 0.1 (PyTorch's default and the usual CIFAR
# recipe) rather than Keras's 0.01, so that they are usable after a few hundred steps, not thousands.
BN_MOMENTUM = 0.9


def _check_bool(argument, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument} must be True or False, got {type(value).__name__}")
    return bool(value)


@keras.saving.register_keras_serializable(package="nnutils")
class ResidualBlock(layers.Layer):
    """Two 3x3 convolutions with batch norm, plus a shortcut: y = relu(F(x) + shortcut(x)) (notebook 03).

    The shortcut is the identity when the input already has ``filters`` channels and ``strides`` is 1,
    otherwise a 1x1 convolution with the same stride followed by batch norm (a "projection").
    With ``residual=False`` there is no shortcut at all: the same two convolutions form a *plain* block,
    so a plain network and a residual one differ in nothing but this flag.
    With ``preactivation=True`` it is the block of He et al. (2016), y = F(x) + shortcut(x) with
    F(x) = conv2(relu(bn2(conv1(relu(bn1(x)))))) and no ReLU after the addition; a projection then
    reads relu(bn1(x)) and has no batch norm of its own.
    """

    def __init__(self, filters, strides=1, residual=True, batch_norm=True, preactivation=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.strides = positive_int("strides", strides)
        self.residual = _check_bool("residual", residual)
        self.batch_norm = _check_bool("batch_norm", batch_norm)
        self.preactivation = _check_bool("preactivation", preactivation)
        conv = dict(padding="same", use_bias=not self.batch_norm, kernel_initializer="he_normal")
        self.conv1 = layers.Conv2D(self.filters, 3, strides=self.strides, name="conv1", **conv)
        self.conv2 = layers.Conv2D(self.filters, 3, name="conv2", **conv)
        self.bn1 = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn1") if self.batch_norm else None
        self.bn2 = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn2") if self.batch_norm else None
        self.projection = None
        self.projection_bn = None

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"inputs must have shape (batch, height, width, channels), got {tuple(input_shape)}")
        channels = input_shape[-1]
        self.conv1.build(input_shape)
        out_shape = self.conv1.compute_output_shape(input_shape)
        self.conv2.build(out_shape)
        if self.batch_norm:  # a pre-activation block normalises its input, the original block conv1's output
            self.bn1.build(input_shape if self.preactivation else out_shape)
            self.bn2.build(out_shape)
        if self.residual and (channels != self.filters or self.strides != 1):
            self.projection = layers.Conv2D(self.filters, 1, strides=self.strides, use_bias=not self.batch_norm,
                                            kernel_initializer="he_normal", name="projection")
            self.projection.build(input_shape)
            if self.batch_norm and not self.preactivation:
                self.projection_bn = layers.BatchNormalization(momentum=BN_MOMENTUM, name="projection_bn")
                self.projection_bn.build(out_shape)
        self.built = True

    @property
    def shortcut(self):
        """'identity', 'projection' or 'none' (a plain block); known once the block is built."""
        if not self.residual:
            return "none"
        if not self.built:
            raise ValueError("the shortcut type is decided from the input shape: call or build the block first")
        return "projection" if self.projection is not None else "identity"

    def _norm(self, bn, z, training):
        return bn(z, training=training) if self.batch_norm else z

    def call(self, inputs, training=False):
        if self.preactivation:
            return self._call_preactivation(inputs, training)
        y = keras.ops.relu(self._norm(self.bn1, self.conv1(inputs), training))
        y = self._norm(self.bn2, self.conv2(y), training)
        if self.residual:
            skip = inputs
            if self.projection is not None:
                skip = self._norm(self.projection_bn, self.projection(inputs), training)
            y = y + skip
        return keras.ops.relu(y)

    def _call_preactivation(self, inputs, training):
        activated = keras.ops.relu(self._norm(self.bn1, inputs, training))
        y = self.conv1(activated)
        y = self.conv2(keras.ops.relu(self._norm(self.bn2, y, training)))
        if not self.residual:
            return y
        skip = inputs if self.projection is None else self.projection(activated)
        return y + skip

    def compute_output_shape(self, input_shape):
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, residual=self.residual,
                      batch_norm=self.batch_norm, preactivation=self.preactivation)
        return config


@keras.saving.register_keras_serializable(package="nnutils")
class RandomShiftFlip(layers.Layer):
    """Training-time augmentation: shift each image by whole pixels (zero fill) and mirror it left-right (notebook 03).

    Written with ``keras.ops`` only (shifts are one-hot matrix products), so unlike Keras's
    RandomTranslation it compiles with XLA (``jit_compile=True``). At inference it is the identity.
    """

    def __init__(self, max_shift=2, flip=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
            raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
        self.max_shift = int(max_shift)
        self.flip = _check_bool("flip", flip)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _shift_matrices(self, batch, size, flip):
        s = self.max_shift
        offsets = keras.random.randint((batch,), 0, 2 * s + 1, seed=self.seed_generator)
        rows = keras.ops.arange(size)
        source = rows[None, :] + offsets[:, None]  # output row i reads padded row i + offset
        if flip:
            mirror = keras.random.randint((batch,), 0, 2, seed=self.seed_generator)
            source = keras.ops.where(mirror[:, None] == 1, 2 * s + size - 1 - source, source)
        return keras.ops.one_hot(source, size + 2 * s, dtype=self.compute_dtype)  # (batch, size, size + 2s)

    def call(self, inputs, training=False):
        if not training or (self.max_shift == 0 and not self.flip):
            return inputs
        s = self.max_shift
        batch = keras.ops.shape(inputs)[0]
        height, width = inputs.shape[1], inputs.shape[2]
        padded = keras.ops.pad(inputs, [[0, 0], [s, s], [s, s], [0, 0]])
        rows = self._shift_matrices(batch, height, False)
        cols = self._shift_matrices(batch, width, self.flip)
        out = keras.ops.einsum("bip,bpqc->biqc", rows, padded)
        return keras.ops.einsum("bjq,biqc->bijc", cols, out)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(max_shift=self.max_shift, flip=self.flip, seed=self.seed)
        return config


def blocks_per_stage(depth):
    """n for a CIFAR-style net of depth 6n + 2 (ResNet-20: n = 3); ValueError for other depths (notebook 03)."""
    depth = positive_int("depth", depth)
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}")
    return (depth - 2) // 6


def build_cifar_net(depth=20, residual=True, input_shape=(28, 28, 1), num_classes=10, widths=(16, 32, 64),
                    batch_norm=True, augment=None, preactivation=False, name=None):
    """A CIFAR-style network of He et al. (2015): 3x3 conv, 3 stages of n blocks, pooling, softmax (notebook 03).

    ``depth`` = 6n + 2 counts the weighted layers (1 first conv + 6n block convs + 1 dense layer).
    Stage i has ``widths[i]`` filters; stages 2 and 3 halve the spatial size with stride 2.
    ``residual=False`` gives the plain network of the same depth and widths. ``augment`` is an
    optional list of Keras layers (e.g. random shifts) applied at the input during training only.
    ``preactivation=True`` uses He et al.'s (2016) pre-activation blocks: the first conv is then not
    followed by batch norm and ReLU, and a final batch norm and ReLU come before the pooling.
    """
    n = blocks_per_stage(depth)
    residual = _check_bool("residual", residual)
    batch_norm = _check_bool("batch_norm", batch_norm)
    preactivation = _check_bool("preactivation", preactivation)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    for value in input_shape:
        positive_int("input_shape", value)
    num_classes = positive_int("num_classes", num_classes)
    if not isinstance(widths, (tuple, list)) or len(widths) != 3:
        raise ValueError(f"widths must be three filter counts, one per stage, got {widths!r}")
    for value in widths:
        positive_int("widths", value)
    if augment is not None and not all(isinstance(layer, layers.Layer) for layer in augment):
        raise TypeError("augment must be a list of keras layers or None")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in augment or []:
        x = layer(x)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=not batch_norm,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    if not preactivation:
        x = _bn_relu(x, batch_norm, "stem")
    for stage, filters in enumerate(widths):
        for block in range(n):
            strides = 2 if stage > 0 and block == 0 else 1
            x = ResidualBlock(filters, strides=strides, residual=residual, batch_norm=batch_norm,
                              preactivation=preactivation, name=f"stage{stage + 1}_block{block + 1}")(x)
    if preactivation:
        x = _bn_relu(x, batch_norm, "final")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    # float32 output even under a mixed-precision policy, for a numerically safe softmax and loss
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(x)
    kind = "resnet" if residual else "plain"
    return keras.Model(inputs, outputs, name=name or f"{kind}{depth}")


def _bn_relu(x, batch_norm, prefix):
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn")(x)
    return layers.Activation("relu", name=f"{prefix}_relu")(x)


def build_resnet(depth=20, **kwargs):
    """A residual CIFAR-style net of depth 6n + 2; ResNet-20 by default (notebook 03)."""
    return build_cifar_net(depth, residual=True, **kwargs)


def build_plain(depth=20, **kwargs):
    """The plain (no shortcut) counterpart of build_resnet, same depth and widths (notebook 03)."""
    return build_cifar_net(depth, residual=False, **kwargs)


def conv_kernels(model):
    """The 3x3 convolution kernels of a model in depth order, as (name, variable) pairs (notebook 03).

    1x1 projection kernels are left out, so that plain and residual nets list the same layers.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    found = [(v.path, v) for v in model.trainable_variables
             if len(v.shape) == 4 and v.shape[0] == 3 and v.shape[1] == 3]
    if not found:
        raise ValueError(f"model {model.name!r} has no 3x3 convolution kernels")
    return found


def gradient_norms(model, x, y):
    """L2 norm of the loss gradient for each 3x3 conv kernel, input side first, on one batch (notebook 03).

    The loss is the mean sparse categorical cross-entropy of ``model(x, training=True)`` against the
    integer labels ``y``. Returns (names, norms) with norms a NumPy array. Works on every backend
    (through `autodiff.model_value_and_grad`).
    """
    kernels = conv_kernels(model)
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"x must have shape (batch,) + {expected}, got {x.shape}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be {len(x)} integer labels, got shape {y.shape} and dtype {y.dtype}")
    _, grads = autodiff.model_value_and_grad(model, keras.losses.SparseCategoricalCrossentropy(), x, y)
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    grads = [grads[index[id(v)]] for _, v in kernels]
    names = [name for name, _ in kernels]
    return names, np.array([float(np.linalg.norm(g)) for g in grads])

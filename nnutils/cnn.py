"""Convolutional networks: convolution and pooling from scratch in NumPy, LeNet-5, AlexNet, VGG (notebook 02).

Shapes follow Keras's "channels last" convention: one image is (H, W, C), a batch is (N, H, W, C),
a convolution kernel is (f, f, C_in, C_out). The from-scratch functions work on one image at a time
and are written for reading, not for speed; the models use `keras.layers` so that they run on any
Keras 3 backend.
"""

import time

import keras
import numpy as np

from nnutils._args import non_negative_int, positive_int


# --------------------------------------------------------------------------------------------------
# From scratch (NumPy)
# --------------------------------------------------------------------------------------------------

def conv_output_size(n, f, padding=0, stride=1):
    """Output length floor((n + 2p - f) / s) + 1 of a convolution or pooling along one axis (notebook 02)."""
    n = positive_int("n", n)
    f = positive_int("f", f)
    padding = non_negative_int("padding", padding)
    stride = positive_int("stride", stride)
    if f > n + 2 * padding:
        raise ValueError(f"f ({f}) is larger than the padded input n + 2*padding ({n + 2 * padding})")
    return (n + 2 * padding - f) // stride + 1


def conv2d(x, kernel, stride=1, padding=0):
    """Cross-correlation of one image x (H, W, C_in) with kernel (f, f, C_in, C_out), as Keras computes it (notebook 02)."""
    x = _image("x", x)
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or not np.issubdtype(kernel.dtype, np.number):
        raise ValueError(f"kernel must be a numeric array of shape (f, f, C_in, C_out), got shape {kernel.shape}")
    if kernel.shape[2] != x.shape[2]:
        raise ValueError(f"kernel has {kernel.shape[2]} input channels but x has {x.shape[2]} channels; "
                         "kernel.shape[2] must equal x.shape[2]")
    stride = positive_int("stride", stride)
    padding = non_negative_int("padding", padding)
    fh, fw = kernel.shape[:2]
    h_out = conv_output_size(x.shape[0], fh, padding, stride)  # these raise if the kernel does not fit
    w_out = conv_output_size(x.shape[1], fw, padding, stride)
    xp = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))  # zero rows/columns on each side
    out = np.zeros((h_out, w_out, kernel.shape[3]), dtype=np.result_type(x.dtype, kernel.dtype, np.float32))
    for i in range(h_out):
        for j in range(w_out):
            patch = xp[i * stride:i * stride + fh, j * stride:j * stride + fw, :]  # (f, f, C_in)
            out[i, j, :] = np.tensordot(patch, kernel, axes=3)  # sum over rows, columns, channels -> (C_out,)
    return out


def max_pool2d(x, size=2, stride=2):
    """Max pooling of one image x (H, W, C): the largest value of each size x size window, per channel (notebook 02)."""
    x = _image("x", x)
    size = positive_int("size", size)
    stride = positive_int("stride", stride)
    h_out = conv_output_size(x.shape[0], size, 0, stride)
    w_out = conv_output_size(x.shape[1], size, 0, stride)
    out = np.zeros((h_out, w_out, x.shape[2]), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            window = x[i * stride:i * stride + size, j * stride:j * stride + size, :]
            out[i, j, :] = window.max(axis=(0, 1))
    return out


def conv_params(f, c_in, c_out, bias=True):
    """Parameters of a conv layer: (f * f * c_in + 1) * c_out, the +1 for the bias (notebook 02)."""
    f, c_in, c_out = positive_int("f", f), positive_int("c_in", c_in), positive_int("c_out", c_out)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {type(bias).__name__}")
    return (f * f * c_in + int(bias)) * c_out


def dense_params(n_in, n_out, bias=True):
    """Parameters of a dense layer: (n_in + 1) * n_out, the +1 for the bias (notebook 02)."""
    n_in, n_out = positive_int("n_in", n_in), positive_int("n_out", n_out)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {type(bias).__name__}")
    return (n_in + int(bias)) * n_out


# --------------------------------------------------------------------------------------------------
# Models (Keras)
# --------------------------------------------------------------------------------------------------

def lenet5(input_shape=(28, 28, 1), num_classes=10, activation="relu", pooling="max", padding=2):
    """LeNet-5 (LeCun et al. 1998): C1 6@28x28, S2, C3 16@10x10, S4, C5 120, F6 84, output (notebook 02).

    `padding` zero rows/columns are added around each input (2 turns MNIST's 28x28 into the paper's
    32x32). The paper used scaled tanh, trainable average pooling and a partly connected C3; the
    defaults here are the modern choices (ReLU, max pooling, C3 connected to all of S2).
    """
    from keras import layers

    input_shape = _shape("input_shape", input_shape, 3)
    num_classes = positive_int("num_classes", num_classes)
    padding = non_negative_int("padding", padding)
    if pooling not in ("max", "average"):
        raise ValueError(f"pooling must be 'max' or 'average', got {pooling!r}")
    keras.activations.get(activation)  # raises ValueError naming an unknown activation
    side = min(input_shape[:2]) + 2 * padding
    if side < 32:
        raise ValueError(f"input_shape {input_shape} with padding {padding} gives {side}x{side} images; "
                         "LeNet-5 needs at least 32x32")
    pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
    model = keras.Sequential(name="lenet5")
    model.add(keras.Input(shape=input_shape))
    if padding:
        model.add(layers.ZeroPadding2D(padding, name="pad"))
    model.add(layers.Conv2D(6, 5, activation=activation, name="C1"))
    model.add(pool(2, name="S2"))
    model.add(layers.Conv2D(16, 5, activation=activation, name="C3"))
    model.add(pool(2, name="S4"))
    model.add(layers.Conv2D(120, 5, activation=activation, name="C5"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(84, activation=activation, name="F6"))
    model.add(layers.Dense(num_classes, activation="softmax", name="output"))
    return model


def vgg_block(filters, convs=2, name=None):
    """A VGG block: `convs` 3x3 'same' ReLU convolutions with `filters` channels, then 2x2 max pooling (notebook 02)."""
    from keras import layers

    filters = positive_int("filters", filters)
    convs = positive_int("convs", convs)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {type(name).__name__}")
    block = keras.Sequential(name=name)
    for i in range(convs):
        block.add(layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}"))
    block.add(layers.MaxPooling2D(2, name="pool"))
    return block


VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convolutions) per block


def vgg(blocks=VGG16_BLOCKS, input_shape=(224, 224, 3), num_classes=1000, dense_units=4096):
    """A VGG network (Simonyan and Zisserman 2015) from vgg_block's; the defaults give VGG-16 (notebook 02)."""
    from keras import layers

    if not isinstance(blocks, (list, tuple)) or not blocks or any(
            not isinstance(b, (list, tuple)) or len(b) != 2 for b in blocks):
        raise ValueError(f"blocks must be a non-empty list of (filters, convs) pairs, got {blocks!r}")
    input_shape = _shape("input_shape", input_shape, 3)
    num_classes = positive_int("num_classes", num_classes)
    dense_units = positive_int("dense_units", dense_units)
    if min(input_shape[:2]) < 2 ** len(blocks):
        raise ValueError(f"input_shape {input_shape} is too small for {len(blocks)} blocks that each halve it")
    model = keras.Sequential(name=f"vgg{sum(c for _, c in blocks) + 3}")
    model.add(keras.Input(shape=input_shape))
    for k, (filters, convs) in enumerate(blocks):
        model.add(vgg_block(filters, convs, name=f"block{k + 1}"))
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(dense_units, activation="relu", name="fc1"))
    model.add(layers.Dense(dense_units, activation="relu", name="fc2"))
    model.add(layers.Dense(num_classes, activation="softmax", name="predictions"))
    return model


def inception_block(input_shape, c1, c3, c5, pool_proj, name=None):
    """GoogLeNet's Inception block: 1x1, 1x1->3x3, 1x1->5x5 and 3x3-pool->1x1 branches, concatenated (notebook 02).

    ``c3`` and ``c5`` are (reduce, out) pairs: the 1x1 convolution that shrinks the channels first,
    then the 3x3 or 5x5 one. Every convolution uses ReLU and 'same' padding, so the output has the
    input's height and width and c1 + c3[1] + c5[1] + pool_proj channels.
    """
    from keras import layers

    input_shape = _shape("input_shape", input_shape, 3)
    c1, pool_proj = positive_int("c1", c1), positive_int("pool_proj", pool_proj)
    for argument, pair in (("c3", c3), ("c5", c5)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{argument} must be a (reduce, out) pair of positive ints, got {pair!r}")
        positive_int(f"{argument}[0]", pair[0]), positive_int(f"{argument}[1]", pair[1])
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {type(name).__name__}")
    conv = lambda filters, size, branch: layers.Conv2D(filters, size, padding="same", activation="relu",  # noqa: E731
                                                       name=branch)
    x = keras.Input(shape=input_shape)
    branch1 = conv(c1, 1, "1x1")(x)
    branch3 = conv(c3[1], 3, "3x3")(conv(c3[0], 1, "3x3_reduce")(x))
    branch5 = conv(c5[1], 5, "5x5")(conv(c5[0], 1, "5x5_reduce")(x))
    branch_pool = conv(pool_proj, 1, "pool_proj")(layers.MaxPooling2D(3, strides=1, padding="same", name="pool")(x))
    out = layers.Concatenate(name="concat")([branch1, branch3, branch5, branch_pool])
    return keras.Model(x, out, name=name or "inception")


def alexnet(input_shape=(227, 227, 3), num_classes=1000):
    """AlexNet (Krizhevsky et al. 2012) as one tower, without its two-GPU split or local response norm (notebook 02)."""
    from keras import layers

    input_shape = _shape("input_shape", input_shape, 3)
    num_classes = positive_int("num_classes", num_classes)
    if min(input_shape[:2]) < 67:
        raise ValueError(f"input_shape {input_shape} is too small for AlexNet (at least 67x67)")
    return keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1"),
        layers.MaxPooling2D(3, strides=2, name="pool1"),
        layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(3, strides=2, name="pool2"),
        layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3"),
        layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4"),
        layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5"),
        layers.MaxPooling2D(3, strides=2, name="pool5"),
        layers.Flatten(name="flatten"),
        layers.Dense(4096, activation="relu", name="fc6"),
        layers.Dense(4096, activation="relu", name="fc7"),
        layers.Dense(num_classes, activation="softmax", name="fc8"),
    ], name="alexnet")


def parameter_table(model):
    """Rows (layer name, output shape, parameters) of a built Keras model, nested blocks expanded (notebook 02)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError("model must be built (give it an Input) before its parameters can be counted")
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):
            rows += [(f"{layer.name}/{name}", shape, count) for name, shape, count in parameter_table(layer)]
        else:
            rows.append((layer.name, tuple(layer.output.shape[1:]), layer.count_params()))
    return rows


class TimeToAccuracy(keras.callbacks.Callback):
    """Keras callback: wall-clock seconds from the start of fit until `monitor` first reaches `target` (notebook 02).

    It reads the epoch's logs, so `monitor="val_accuracy"` measures the accuracy on `validation_data`
    at the end of each epoch; the time includes those evaluations.
    """

    def __init__(self, target=0.99, monitor="val_accuracy"):
        super().__init__()
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
            raise ValueError(f"target must be a number in (0, 1], got {target!r}")
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be the name of a logged metric, got {monitor!r}")
        self.target, self.monitor = float(target), monitor
        self.seconds_to_target, self.epoch_reached = None, None
        self.elapsed, self.values = [], []

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self.seconds_to_target, self.epoch_reached = None, None
        self.elapsed, self.values = [], []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"monitor {self.monitor!r} is not logged; fit logs {sorted(logs)} "
                             "(pass validation_data to fit for val_ metrics)")
        value = float(logs[self.monitor])
        self.elapsed.append(time.perf_counter() - self._start)
        self.values.append(value)
        if self.seconds_to_target is None and value >= self.target:
            self.seconds_to_target, self.epoch_reached = self.elapsed[-1], epoch + 1


# --------------------------------------------------------------------------------------------------
# Data helpers
# --------------------------------------------------------------------------------------------------

def prepare_images(x):
    """uint8 images (N, H, W) -> float32 (N, H, W, 1) scaled to [0, 1], the network's input (notebook 02)."""
    x = np.asarray(x)
    if x.ndim != 3 or x.size == 0:
        raise ValueError(f"x must be a non-empty batch of grey images of shape (N, H, W), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    return (x.astype(np.float32) / 255.0)[..., None]


def shift_images(x, dx=0, dy=0):
    """Shift images (N, H, W[, C]) by dx columns right and dy rows down, filling with zeros (notebook 02)."""
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"x must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    for name, value in (("dx", dx), ("dy", dy)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        limit = x.shape[2] if name == "dx" else x.shape[1]
        if abs(value) >= limit:
            raise ValueError(f"{name} must be smaller in size than the image ({limit}), got {value}")
    out = np.zeros_like(x)
    h, w = x.shape[1], x.shape[2]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[:, max(-dy, 0):h - max(dy, 0),
                                                                       max(-dx, 0):w - max(dx, 0)]
    return out


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------

def _image(argument, x):
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{argument} must be one image of shape (H, W, C), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"{argument} must hold real numbers, got dtype {x.dtype}")
    return x


def _shape(argument, shape, ndim):
    if not isinstance(shape, (list, tuple)) or len(shape) != ndim or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"{argument} must be a tuple of {ndim} positive ints, got {shape!r}")
    return tuple(int(s) for s in shape)

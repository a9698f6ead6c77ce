"""A multilayer perceptron from scratch in NumPy: forward, backward, gradient checks, SGD (notebook 01).

Shapes: a batch `x` is (n, d_in); `params` is a list of (W, b) pairs, W of shape (d_in, d_out).
Hidden layers use ReLU, the last layer gives logits, the loss is the mean softmax cross-entropy.
"""

import numpy as np


def init_mlp(layer_sizes, seed=0, dtype="float64"):
    """He-initialised parameters [(W1, b1), (W2, b2), ...] for the given layer sizes (notebook 01)."""
    if not isinstance(layer_sizes, (list, tuple)) or len(layer_sizes) < 2:
        raise ValueError(f"layer_sizes must be a list of at least 2 sizes, got {layer_sizes!r}")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in layer_sizes):
        raise ValueError(f"layer_sizes must hold positive ints, got {layer_sizes!r}")
    rng = np.random.default_rng(seed)
    return [(rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)).astype(dtype), np.zeros(n_out, dtype))
            for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])]


def relu(z):
    """max(z, 0), elementwise (notebook 01)."""
    return np.maximum(z, 0)


def softmax(logits):
    """Row-wise softmax, shifted by the row maximum so that exp never overflows (notebook 01)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of logits (n, K) against int labels (n,) (notebook 01)."""
    logits, labels = np.asarray(logits), _check_labels(labels, len(logits), logits.shape[-1])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def mlp_forward(params, x):
    """Logits of the MLP for a batch x, and the list of layer outputs backprop needs (notebook 01)."""
    x = _check_batch(params, x)
    activations = [x]
    h = x
    for i, (W, b) in enumerate(params):
        z = h @ W + b
        h = relu(z) if i < len(params) - 1 else z
        activations.append(h)
    return h, activations


def mlp_backward(params, activations, labels):
    """Gradients [(dW, db), ...] of the mean cross-entropy, by the chain rule, layer by layer (notebook 01)."""
    logits = activations[-1]
    labels = _check_labels(labels, len(logits), logits.shape[1])
    delta = softmax(logits)  # dL/dz of the last layer: (softmax - one_hot) / n
    delta[np.arange(len(labels)), labels] -= 1.0
    delta /= len(labels)
    grads = []
    for i in reversed(range(len(params))):
        grads.append((activations[i].T @ delta, delta.sum(axis=0)))
        if i > 0:  # back through W, then through the ReLU: its derivative is 1 where it was active
            delta = (delta @ params[i][0].T) * (activations[i] > 0)
    return grads[::-1]


def loss_and_grads(params, x, labels):
    """The loss and its gradients for one batch: a forward then a backward pass (notebook 01)."""
    logits, activations = mlp_forward(params, x)
    return cross_entropy(logits, labels), mlp_backward(params, activations, labels)


def numerical_gradient(f, array, eps=1e-6):
    """Central finite differences (f(a+eps) - f(a-eps)) / 2eps of a scalar function f() w.r.t. array (notebook 01)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError("array must be a float64 NumPy array (float32 is too coarse for finite differences)")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def sgd_step(params, grads, learning_rate):
    """One step of gradient descent: p <- p - learning_rate * dp, returning new parameters (notebook 01)."""
    if not isinstance(learning_rate, (float, int)) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive float, got {learning_rate!r}")
    if len(grads) != len(params):
        raise ValueError(f"grads must have one (dW, db) per layer ({len(params)}), got {len(grads)}")
    return [(W - learning_rate * dW, b - learning_rate * db) for (W, b), (dW, db) in zip(params, grads)]


def adam_step(params, grads, state, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """One Adam update as keras.optimizers.Adam computes it; returns (new params, new state) (notebook 01).

    ``state`` is None before the first step, then what the previous call returned: the step count and,
    per array, the running means of the gradient (m) and of its square (v).
    """
    if not isinstance(learning_rate, (float, int)) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive float, got {learning_rate!r}")
    if len(grads) != len(params):
        raise ValueError(f"grads must have one (dW, db) per layer ({len(params)}), got {len(grads)}")
    flat_p, flat_g = [a for pair in params for a in pair], [g for pair in grads for g in pair]
    t, m, v = state if state is not None else (0, [np.zeros_like(a) for a in flat_p], [np.zeros_like(a) for a in flat_p])
    t += 1
    m = [beta_1 * mi + (1 - beta_1) * g for mi, g in zip(m, flat_g)]          # momentum: a mean of gradients
    v = [beta_2 * vi + (1 - beta_2) * g * g for vi, g in zip(v, flat_g)]      # a mean of squared gradients
    step = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)       # both means start at 0: unbias them
    new = [a - step * mi / (np.sqrt(vi) + epsilon) for a, mi, vi in zip(flat_p, m, v)]
    return [(new[i], new[i + 1]) for i in range(0, len(new), 2)], (t, m, v)


def dropout(h, rate, rng):
    """Inverted dropout in training: zero each entry with probability rate, scale the rest by 1/(1-rate) (notebook 01).

    Returns the output and the boolean keep mask; at test time dropout is the identity, so it is not called.
    """
    if not isinstance(rate, (float, int)) or not 0 <= rate < 1:
        raise ValueError(f"rate must be a float in [0, 1), got {rate!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    keep = rng.random(np.shape(h)) >= rate
    return np.where(keep, np.asarray(h) / (1 - rate), 0.0), keep


def accuracy(params, x, labels):
    """Fraction of rows of x whose largest logit is the true label (notebook 01)."""
    logits, _ = mlp_forward(params, x)
    labels = _check_labels(labels, len(logits), logits.shape[1])
    return float((logits.argmax(axis=1) == labels).mean())


def train_mlp(params, x, labels, epochs, batch_size, learning_rate, seed=0, validation=None):
    """Minibatch SGD on (x, labels); returns the trained parameters and a history dict (notebook 01)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    x = _check_batch(params, x)
    labels = _check_labels(labels, len(x), params[-1][0].shape[1])
    rng = np.random.default_rng(seed)
    history = {"loss": [], "accuracy": []} | ({"val_loss": [], "val_accuracy": []} if validation else {})
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            loss, grads = loss_and_grads(params, x[batch], labels[batch])
            params = sgd_step(params, grads, learning_rate)
            losses.append(loss)
        history["loss"].append(float(np.mean(losses)))
        history["accuracy"].append(accuracy(params, x, labels))
        if validation:
            x_val, y_val = validation
            history["val_loss"].append(float(cross_entropy(mlp_forward(params, x_val)[0], y_val)))
            history["val_accuracy"].append(accuracy(params, x_val, y_val))
    return params, history


def _check_batch(params, x):
    if not isinstance(params, (list, tuple)) or not params or any(len(p) != 2 for p in params):
        raise TypeError("params must be a non-empty list of (W, b) pairs, as init_mlp returns")
    x = np.asarray(x)
    d_in = params[0][0].shape[0]
    if x.ndim != 2 or x.shape[1] != d_in:
        raise ValueError(f"x must have shape (n, {d_in}) to match the first layer, got {x.shape}")
    return x


def _check_labels(labels, n, num_classes):
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integer class ids of shape ({n},), got {labels.dtype} {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {labels.min()} to {labels.max()}")
    return labels

"""One model trained on TensorFlow, JAX and PyTorch from the same weights and batches gives the same losses.

A Python process holds one Keras backend, so each backend trains in a subprocess of its own (the script below),
and the test compares what they print. Backends that are not installed are skipped (requirements-backends.txt).
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nnutils.config import BACKENDS

pytestmark = pytest.mark.backend_independent  # runs every backend itself, in subprocesses

SCRIPT = r"""
import json
import numpy as np
import keras
from nnutils import data, mlp

(x, y), _ = data.load_mnist(n_train=2000, n_test=10)
x = x.reshape(len(x), -1).astype("float32") / 255.0
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
model.set_weights([w.astype("float32") for pair in mlp.init_mlp([784, 64, 10], seed=0) for w in pair])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
losses = [float(model.train_on_batch(x[i:i + 100], y[i:i + 100])) for i in range(0, len(x), 100)]
print("LOSSES " + json.dumps({"backend": keras.backend.backend(), "losses": losses,
                              "final_weights_sum": float(np.sum(np.abs(model.get_weights()[0])))}))
"""


def _train(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("LOSSES ")]
    assert done.returncode == 0 and lines, f"training on {backend} failed:\n{done.stderr[-2000:]}"
    return json.loads(lines[-1][len("LOSSES "):])


def test_one_epoch_of_the_mlp_gives_the_same_losses_on_every_backend():
    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    if len(installed) < 2:
        pytest.skip("needs two backends: pip install -r requirements-backends.txt")
    runs = {b: _train(b) for b in installed}
    assert all(run["backend"] == b for b, run in runs.items())
    reference = np.array(runs[installed[0]]["losses"])
    assert len(reference) == 20 and reference[-1] < reference[0] - 1.0  # it learns: from ln 10 = 2.3 to well below
    for backend in installed[1:]:
        # same initial weights, same batches, float32: the 20 losses agree to float32 round-off, grown over 20 steps
        np.testing.assert_allclose(runs[backend]["losses"], reference, rtol=1e-4, err_msg=backend)
        assert runs[backend]["final_weights_sum"] == pytest.approx(runs[installed[0]]["final_weights_sum"], rel=1e-4)

"""Fixtures and markers shared by the test modules."""

import http.server
import threading

import pytest


@pytest.fixture
def server(tmp_path):
    """A local HTTP server (loopback only) that serves files from a folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture
def keras_auto_jit():
    """What Keras's jit_compile="auto" picks here: XLA on JAX, on TensorFlow only with a GPU, never on PyTorch."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return keras.backend.backend() == "jax"


def pytest_collection_modifyitems(config, items):
    """Tests marked float64 run on TensorFlow only: elsewhere Keras computes float64 inputs in float32."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason="float64 check: Keras computes float64 in float32 on JAX and PyTorch "
                                   "(keras.backend.result_type); its float32 twin runs on every backend")
    for item in items:
        if item.get_closest_marker("float64"):
            item.add_marker(skip)

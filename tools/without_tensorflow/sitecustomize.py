"""Start Python as if TensorFlow were not installed: `PYTHONPATH=tools/without_tensorflow python ...`.

A GPU machine with only JAX (or PyTorch) must be able to run every notebook whose lesson is not about a TensorFlow
tool. CI checks that on this machine, where TensorFlow is installed, by running those notebooks with this folder on
PYTHONPATH: Python imports this file at start-up (and so does every Jupyter kernel started from that environment).
A None entry in sys.modules is what Python itself uses for "not importable": `import tensorflow` then raises
ModuleNotFoundError, and `importlib.util.find_spec("tensorflow")`, which libraries use to probe for optional
packages, returns None, exactly as where the package is missing.
"""

import sys

BLOCKED = ("tensorflow", "tensorflow_text", "tf_keras")

for _name in BLOCKED:
    sys.modules.setdefault(_name, None)

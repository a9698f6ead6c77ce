"""tools/clean_outputs.py: start-up noise leaves the stored outputs, everything else stays."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
import clean_outputs  # noqa: E402
import pytest

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def stream(name, *lines):
    return {"output_type": "stream", "name": name, "text": list(lines)}


def test_clean_drops_noise_lines_and_keeps_real_output(tmp_path):
    noise = "E0000 00:00:1.5 3873 util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512.\n"
    tqdm = "/x/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.\n"
    tqdm_source = "  from .autonotebook import tqdm as notebook_tqdm\n"
    real = "UserWarning: the learning rate is a tensor\n"
    notebook = {"cells": [
        {"cell_type": "code", "source": [], "outputs": [stream("stderr", noise, tqdm, tqdm_source)]},
        {"cell_type": "code", "source": [], "outputs": [stream("stderr", noise, real), stream("stdout", noise)]},
        {"cell_type": "markdown", "source": ["text"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    clean_outputs.clean(path)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert cells[0]["outputs"] == []  # nothing but noise: the whole stderr output goes
    assert cells[1]["outputs"] == [stream("stderr", real), stream("stdout", noise)]  # stdout is never touched
    assert cells[2] == {"cell_type": "markdown", "source": ["text"]}

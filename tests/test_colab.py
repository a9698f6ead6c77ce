"""The Colab set-up cell of every notebook, run with google.colab simulated: what it installs, and how it fails."""

import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ALLOWED = {"nnutils", "keras-hub", "tokenizers"}  # never tensorflow or keras: Colab's own are kept


def colab_block(path):
    """The set-up cell's lines up to the end of its `if "google.colab" in sys.modules:` block."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = "".join(next(c for c in cells if c["cell_type"] == "code")["source"]).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('if "google.colab" in sys.modules'))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    return "\n".join(["import os, sys"] + lines[start:end]) + "\n"


def run_cell(path, monkeypatch, returncode=0, on_colab=True):
    """Execute the cell with a fake google.colab module and a fake subprocess; returns the commands it ran."""
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return types.SimpleNamespace(returncode=returncode)

    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "subprocess", types.SimpleNamespace(run=fake_run))
    exec(colab_block(path), {"__name__": "__main__"})
    return commands


def requirement_name(requirement):
    return requirement.split("@")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_pins_nnutils_to_the_release_and_leaves_tensorflow_alone(path, monkeypatch):
    monkeypatch.delenv("NNUTILS_SOURCE", raising=False)
    [command] = run_cell(path, monkeypatch)
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    requirements = [a for a in command[4:] if not a.startswith("-")]
    assert requirements[0] == f"nnutils @ git+https://github.com/dl-course/keras-dl-course@v{VERSION}"
    assert {requirement_name(r) for r in requirements} <= ALLOWED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_stops_with_a_clear_message_when_the_install_fails(path, monkeypatch):
    with pytest.raises(RuntimeError, match=r"Installing nnutils from git\+https://.*@v.* failed"):
        run_cell(path, monkeypatch, returncode=1)


def test_cell_installs_nothing_off_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert run_cell(NOTEBOOKS[-1], monkeypatch, on_colab=False) == []


def test_cell_from_a_local_source_would_install_nnutils_only(monkeypatch, tmp_path):
    """pip's dry run of the very command the cell builds, from this checkout: TensorFlow and Keras are kept."""
    monkeypatch.setenv("NNUTILS_SOURCE", ROOT.as_uri())
    [command] = run_cell(NOTEBOOKS[-1], monkeypatch)  # 09 asks for the most packages
    monkeypatch.undo()
    assert command[5] == f"nnutils @ {ROOT.as_uri()}"
    report = tmp_path / "report.json"
    done = subprocess.run(command + ["--dry-run", "--report", str(report)], capture_output=True, text=True)
    if done.returncode != 0 and "setuptools" in done.stderr and "No matching distribution" in done.stderr:
        pytest.skip("pip could not reach a package index to build nnutils' metadata")
    assert done.returncode == 0, done.stderr
    installs = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert installs == {"nnutils"}, installs

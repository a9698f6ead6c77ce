"""`make lab` starts JupyterLab for root and non-root users alike (the root case is Docker's and Colab-like machines')."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

ROOT = Path(__file__).parent.parent


def _fake_venv(tmp_path):
    """A venv whose `jupyter` only prints its arguments, already marked as installed."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    jupyter = bin_dir / "jupyter"
    jupyter.write_text("#!/bin/sh\necho \"fake jupyter: $*\"\n")
    jupyter.chmod(0o755)
    (tmp_path / "venv" / ".installed").touch()  # newer than requirements.txt: `setup` has nothing to do
    return tmp_path / "venv"


def _make_lab(tmp_path, uid):
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    fake_id = fake_bin / "id"
    fake_id.write_text(f"#!/bin/sh\necho {uid}\n")  # `id -u` as that user
    fake_id.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    return subprocess.run(["make", "--no-print-directory", "lab", f"VENV={_fake_venv(tmp_path)}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_as_root_passes_allow_root_and_says_so(tmp_path):
    result = _make_lab(tmp_path, 0)
    assert result.returncode == 0, result.stderr
    assert "fake jupyter: lab --allow-root notebooks/" in result.stdout
    assert "running as root" in result.stdout and "serves notebooks/" in result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_as_a_user_does_not_pass_allow_root(tmp_path):
    result = _make_lab(tmp_path, 1000)
    assert result.returncode == 0, result.stderr
    assert "fake jupyter: lab notebooks/" in result.stdout
    assert "running as root" not in result.stdout and "serves notebooks/" in result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_make_test_on_another_backend_installs_it_and_sets_keras_backend(tmp_path, backend):
    venv = _fake_venv(tmp_path)
    result = subprocess.run(["make", "--no-print-directory", "-n", "test", f"BACKEND={backend}", f"VENV={venv}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install --quiet -r requirements-backends.txt" in result.stdout
    assert f"KERAS_BACKEND={backend} NNUTILS_PROFILE=smoke" in result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_stays_on_tensorflow_without_installing_the_other_backends(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(["make", "--no-print-directory", "-n", "test", f"VENV={_fake_venv(tmp_path)}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "requirements-backends.txt" not in result.stdout
    assert "KERAS_BACKEND=tensorflow NNUTILS_PROFILE=smoke" in result.stdout


def _pytest_commands(target, tmp_path, *options):
    """The pytest command lines of `make -n target`, each with the files it names, in order."""
    result = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={_fake_venv(tmp_path)}", *options],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.replace("\\\n", " ").splitlines() if "-m pytest" in line]
    return [(line, [word for word in line.split() if word.startswith(("tests", "notebooks/"))]) for line in commands]


def _pytest_paths(target, tmp_path):
    return [paths for _, paths in _pytest_commands(target, tmp_path)]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_names_every_test_module_and_notebook_once_longest_first(tmp_path):
    [paths] = _pytest_paths("test", tmp_path)
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(paths) == sorted(modules + notebooks) and len(set(paths)) == len(paths)
    assert paths[:3] == ["tests/test_classroom.py", "notebooks/09_bert_gpt.ipynb", "notebooks/08_transformer.ipynb"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_test_backends_runs_units_on_torch_and_units_with_notebooks_in_one_jax_run(tmp_path):
    torch_paths, jax_paths = _pytest_paths("test-backends", tmp_path)[:2]
    [test_paths] = _pytest_paths("test", tmp_path)
    assert torch_paths == ["tests"]
    assert jax_paths == test_paths  # the same files in the same order; the classroom tests are deselected by marker


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_only_smoke_tests_on_jax_get_the_cheaper_xla_optimisation(tmp_path):
    cheap = "--xla_backend_optimization_level=0"
    [(tensorflow_line, _)] = _pytest_commands("test", tmp_path)
    [(jax_line, _)] = _pytest_commands("test", tmp_path, "BACKEND=jax")
    torch_units, jax_run = (line for line, _ in _pytest_commands("test-backends", tmp_path)[:2])
    assert cheap in jax_line and cheap in jax_run and "KERAS_BACKEND=jax" in jax_run
    assert cheap not in tensorflow_line and cheap not in torch_units

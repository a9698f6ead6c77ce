"""The GitHub workflows are valid (GitHub's published schema) and run what the course promises."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

WORKFLOWS = sorted((Path(__file__).parent.parent / ".github" / "workflows").glob("*.yml"))


def test_there_are_a_cpu_and_a_gpu_workflow():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "gpu.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_github_schema(path):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cpu_job_runs_make_test():
    jobs = yaml.safe_load((WORKFLOWS[0].parent / "ci.yml").read_text())["jobs"]
    steps = [step.get("run", "") for job in jobs.values() for step in job["steps"]]
    assert "make test" in steps


def test_cpu_job_runs_the_other_backends():
    jobs = yaml.safe_load((WORKFLOWS[0].parent / "ci.yml").read_text())["jobs"]
    assert "make test-backends" in [step.get("run", "") for job in jobs.values() for step in job["steps"]]


def test_gpu_job_runs_every_notebook_on_a_gpu_runner_in_full_profile():
    workflow = yaml.safe_load((WORKFLOWS[0].parent / "gpu.yml").read_text())
    job = workflow["jobs"]["notebooks"]
    assert "gpu" in job["runs-on"]
    assert job["env"]["NNUTILS_PROFILE"] == "full"
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "tensorflow[and-cuda]" in commands
    assert "pytest notebooks" in commands


def test_gpu_workflow_runs_the_notebooks_on_jax_too_with_tensorflow_hidden_where_unneeded():
    job = yaml.safe_load((WORKFLOWS[0].parent / "gpu.yml").read_text())["jobs"]["notebooks-jax"]
    assert "gpu" in job["runs-on"] and job["env"]["KERAS_BACKEND"] == "jax" and job["env"]["NNUTILS_PROFILE"] == "full"
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "jax[cuda12]" in commands and "tools/without_tensorflow" in commands
    assert "print-without-tf-notebooks" in commands and "print-with-tf-notebooks" in commands


def test_make_lists_split_the_notebooks_by_their_need_of_tensorflow():
    root = WORKFLOWS[0].parent.parent.parent
    run = lambda target: subprocess.run(["make", "--no-print-directory", "-s", target], cwd=root, capture_output=True,
                                        text=True, check=True).stdout.split()
    without, with_tf = run("print-without-tf-notebooks"), run("print-with-tf-notebooks")
    assert sorted(without + with_tf) == sorted(str(p.relative_to(root)) for p in root.glob("notebooks/[0-9][0-9]_*.ipynb"))
    assert "notebooks/01_mlp.ipynb" in without and not set(without) & set(with_tf)


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: make test\n")  # no runs-on
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(broken)], capture_output=True, text=True)
    assert result.returncode != 0

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nnutils import report

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


@pytest.fixture
def root(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setattr(report, "project_root", lambda: tmp_path)
    return tmp_path


def test_record_writes_profile_json(root, monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "smoke")
    report.record("01_mlp", "test_accuracy", np.float32(0.9812), seconds=12.345, epochs=3)
    report.record("01_mlp", "train_seconds", 40)
    saved = json.loads((root / "results" / "smoke" / "01_mlp.json").read_text())
    assert saved["test_accuracy"]["value"] == pytest.approx(0.9812, abs=1e-6)
    assert saved["test_accuracy"]["seconds"] == 12.3
    assert saved["test_accuracy"]["epochs"] == 3
    assert saved["test_accuracy"]["profile"] == "smoke" and "CPU" in saved["test_accuracy"]["machine"]
    assert set(saved) == {"test_accuracy", "train_seconds"}
    assert report.load("01_mlp", "smoke")["train_seconds"]["value"] == 40.0


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(notebook="../x", name="a", value=1.0), ValueError, "notebook"),
    (dict(notebook="01", name="", value=1.0), ValueError, "name"),
    (dict(notebook="01", name="a", value="0.9"), TypeError, "value must be a number"),
    (dict(notebook="01", name="a", value=float("nan")), ValueError, "value must be finite"),
    (dict(notebook="01", name="a", value=1.0, seconds=-2), ValueError, "seconds"),
])
def test_record_rejects_bad_input(root, kwargs, error, words):
    with pytest.raises(error, match=words):
        report.record(**kwargs)


def test_update_readme_rewrites_only_the_table(root, monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "full")
    report.record("01_mlp", "test_accuracy", 0.985, seconds=60)
    readme = root / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    report.update_readme(readme)
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro") and text.endswith("outro\n")
    assert "| 01_mlp | test_accuracy | 0.9850 | 60.0 |" in text


def test_update_readme_writes_the_backend_speed_table_from_its_file(root, monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "full")
    report.record("01_mlp", "test_accuracy", 0.985)
    versions = {"tensorflow": {"tensorflow": "2.21.0"}, "jax": {"jax": "0.10.2"}}
    speed = {"date": "2026-12-05", "machine": "x86_64 2-core CPU", "rounds": 3, "gpt_iterations": 400,
             "gpt": {b: {"ms_per_iteration": ms, "first_half_seconds": 12.0, "versions": versions[b]}
                     for b, ms in (("tensorflow", 51.27), ("jax", 38.0))},
             "transformer": {b: {"ms_per_step": ms, "warmup_seconds": 4.04} for b, ms in (("tensorflow", 150.04), ("jax", 99.96))}}
    (root / "results" / report.SPEED_FILE).write_text(json.dumps(speed))
    readme = root / "README.md"
    readme.write_text(f"{report.README_START}\n{report.README_END}\nmid\n{report.SPEED_START}\nold\n{report.SPEED_END}\n")
    report.update_readme(readme)
    text = readme.read_text()
    assert "old" not in text and "\nmid\n" in text
    assert "| tensorflow | 2.21.0 | 51.3 | 12.0 | 150.0 | 4.0 |" in text and "| jax | 0.10.2 | 38.0 | 12.0 | 100.0 | 4.0 |" in text
    assert "first 200 iterations, s" in text
    assert "Measured 2026-12-05 on an x86_64 2-core CPU" in text and "3 rounds" in text


def test_update_readme_needs_markers(root):
    readme = root / "README.md"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(readme)


def test_results_dir_redirect_keeps_the_course_results_untouched(root, monkeypatch, tmp_path_factory):
    """Grading sets NNUTILS_RESULTS_DIR: record writes there, load falls back on the course's results."""
    monkeypatch.setenv("NNUTILS_PROFILE", "full")
    report.record("06_birnn", "bilstm_test_accuracy", 0.777)
    committed = (root / "results" / "full" / "06_birnn.json").read_text()
    elsewhere = tmp_path_factory.mktemp("grading")
    monkeypatch.setenv("NNUTILS_RESULTS_DIR", str(elsewhere))
    report.record("06_birnn", "bilstm_test_accuracy", 0.5)
    assert (root / "results" / "full" / "06_birnn.json").read_text() == committed
    assert json.loads((elsewhere / "full" / "06_birnn.json").read_text())["bilstm_test_accuracy"]["value"] == 0.5
    assert report.load("06_birnn", "full")["bilstm_test_accuracy"]["value"] == 0.5
    assert report.load("01_mlp", "full") == {}
    report.record("02_cnn_lenet", "test_accuracy", 0.99)
    monkeypatch.setenv("NNUTILS_RESULTS_DIR", str(elsewhere / "empty"))
    assert report.load("06_birnn", "full")["bilstm_test_accuracy"]["value"] == 0.777  # the fallback


def test_update_readme_writes_the_smoke_time_table_from_its_file(root, monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "full")
    report.record("01_mlp", "test_accuracy", 0.985)
    times = {"date": "2026-12-05", "machine": "x86_64 2-core CPU", "versions": {"tensorflow": "2.21.0", "jax": "0.10.2"},
             "notebooks": {"01_mlp": {"tensorflow": {"seconds": 20.44, "passed": True},
                                      "jax": {"seconds": 31.6, "passed": False}}}}
    (root / "results" / report.SMOKE_FILE).write_text(json.dumps(times))
    readme = root / "README.md"
    readme.write_text(f"{report.README_START}\n{report.README_END}\n{report.SMOKE_START}\nold\n{report.SMOKE_END}\nend\n")
    report.update_readme(readme)
    text = readme.read_text()
    assert "old" not in text and text.endswith("\nend\n")
    assert "| notebook | tensorflow 2.21.0, s | jax 0.10.2, s |" in text
    assert "| 01_mlp | 20 | 32 (failed) |" in text and "Measured 2026-12-05 on an x86_64 2-core CPU" in text
    assert "Measured again later" not in text


def test_smoke_time_table_names_the_rows_measured_again_later(root):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import smoke_times

    run = lambda date, seconds: {"date": date, "machine": "x86_64 2-core CPU", "versions": {"jax": "0.10.2"},
                                 "notebooks": {name: {"jax": {"seconds": s, "passed": True}}
                                               for name, s in seconds.items()}}
    record = smoke_times.updated(run("2026-12-05", {"08_transformer": 152.0, "09_bert_gpt": 266.0}),
                                 run("2026-12-06", {"09_bert_gpt": 155.4}))
    assert record["notebooks"]["08_transformer"] == {"jax": {"seconds": 152.0, "passed": True}}
    assert record["notebooks"]["09_bert_gpt"] == {"jax": {"seconds": 155.4, "passed": True}, "date": "2026-12-06"}
    (root / "results").mkdir(exist_ok=True)
    (root / "results" / report.SMOKE_FILE).write_text(json.dumps(record))
    table = report.smoke_times_table()
    assert "| 08_transformer | 152 |" in table and "| 09_bert_gpt | 155 |" in table
    assert "Measured 2026-12-05" in table and "after their smoke profile changed: 09_bert_gpt on 2026-12-06." in table
    other = dict(run("2026-12-06", {"09_bert_gpt": 1.0}), versions={"jax": "0.11.0"})
    with pytest.raises(SystemExit, match="measure every notebook again"):
        smoke_times.updated(record, other)

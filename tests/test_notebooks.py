"""Every notebook follows the course template (spec section 7); nbval executes them separately."""

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def test_the_notebooks_are_numbered_in_course_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names and names[0] == "01_mlp" and names == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_has_colab_badge_for_this_notebook(path):
    first = source(cells(path)[0])
    assert first.startswith("# ")
    assert f"colab.research.google.com/github/dl-course/keras-dl-course/blob/main/notebooks/{path.name}" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_on_colab_without_tensorflow_and_seeds(path):
    setup = next(source(c) for c in cells(path) if c["cell_type"] == "code")
    assert '"google.colab" in sys.modules' in setup and '"pip", "install"' in setup  # tests/test_colab.py runs it
    assert "config.set_seed(" in setup and "config.profile()" in setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_nbgrader_solution_and_check_cells(path):
    all_cells = cells(path)
    grade_ids, solutions = set(), 0
    for i, cell in enumerate(all_cells):
        meta = cell["metadata"].get("nbgrader")
        text = source(cell)
        if "BEGIN SOLUTION" in text:  # nbgrader refuses solution markers in any other cell, markdown too
            assert cell["cell_type"] == "code" and meta and meta["solution"] and not meta["grade"] and not meta["locked"], f"cell {i}: bad metadata"
            assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION")
            following = all_cells[i + 1]["metadata"].get("nbgrader", {})
            assert following.get("grade") and following.get("locked") and following.get("points", 0) > 0, \
                f"cell {i}: a solution must be followed by an autograded check cell"
            assert "checks." in source(all_cells[i + 1])
            solutions += 1
        if meta:
            assert meta["schema_version"] == 3
            assert meta["grade_id"] not in grade_ids, f"duplicate grade_id {meta['grade_id']}"
            grade_ids.add(meta["grade_id"])
    assert solutions >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_a_full_run_without_errors(path):
    all_cells = cells(path)
    outputs = [o for c in all_cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert all(c["execution_count"] for c in all_cells if c["cell_type"] == "code" and source(c).strip())
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "profile=full" in text, "commit the notebook with the outputs of a full-profile run"
    assert path.stat().st_size < 3_000_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_full_results_are_committed_and_in_the_readme(path):
    results = json.loads((ROOT / "results" / "full" / f"{path.stem}.json").read_text())
    assert results and all(entry["profile"] == "full" for entry in results.values())
    readme = (ROOT / "README.md").read_text()
    assert f"notebooks/{path.name}" in readme
    for name, entry in results.items():
        assert re.search(rf"\| {path.stem} \| {name} \| ", readme), f"README results table lacks {path.stem}/{name}"


def test_resnet_header_states_the_committed_run():
    """03's header quotes its whole run and its seconds per epoch: they must be those of results/full/03_resnet.json."""
    header = source(cells(ROOT / "notebooks" / "03_resnet.ipynb")[0])
    results = json.loads((ROOT / "results" / "full" / "03_resnet.json").read_text())
    whole = re.search(r"([\d,]+) s in the stored run", header)
    per_epoch = re.search(r"([\d,]+) s per epoch", header)
    assert whole and per_epoch, "the header states the whole run's seconds and the seconds per epoch"
    assert int(whole.group(1).replace(",", "")) == round(results["notebook_seconds"]["value"])
    training = results["test_accuracy"]
    assert int(per_epoch.group(1).replace(",", "")) == round(training["seconds"] / training["epochs"])
    assert results["notebook_seconds"]["value"] < 4500, "the whole notebook must run in under 75 minutes"
    assert f"{training['epochs']:.0f} epochs" in header


def test_bert_gpt_header_states_the_committed_run():
    """09's header quotes its results: each number must be the one in results/full/09_bert_gpt.json (and 06's)."""
    header = source(cells(ROOT / "notebooks" / "09_bert_gpt.ipynb")[0])
    results = json.loads((ROOT / "results" / "full" / "09_bert_gpt.json").read_text())
    bilstm = json.loads((ROOT / "results" / "full" / "06_birnn.json").read_text())["bilstm_test_accuracy"]["value"]
    gpt, mlm = results["gpt_val_loss"], results["bert_heldout_mlm_accuracy"]
    expected = [f"**{gpt['nanogpt_lr_val_loss']:.3f} with nanoGPT's own recipe**",
                f"**{gpt['value']:.3f} with twice its learning rate**",
                f"reaches {results['gpt_long_val_loss']['value']:.3f}",
                f"**{100 * mlm['value']:.1f} %** accuracy",
                f"{100 * mlm['unigram_baseline']:.1f} % for always",
                f"{100 * mlm['notebook_run']['mlm_accuracy']:.1f} % after",
                f"**{100 * results['bert_pretrained_test_accuracy']['value']:.1f} % test accuracy**",
                f"**{100 * results['bert_scratch_test_accuracy']['value']:.1f} %** for the same model from scratch",
                f"gain of {100 * results['bert_pretraining_gain']['value']:.1f} points",
                f"BiLSTM ({100 * bilstm:.1f} %)",
                f"{results['notebook_seconds']['value']:,.0f} s in this run",
                f"({results['notebook_seconds']['date']},"]
    missing = [text for text in expected if text not in header]
    assert not missing, f"09's header does not state the committed run's {missing}"
    assert len(results["bert_pretrained_test_accuracy"]["seeds"]) >= 3
    assert results["notebook_seconds"]["value"] < 3600, "the whole notebook must run in under an hour"


def test_transformer_header_states_the_committed_run():
    """08's header quotes its whole run's seconds and date: they must be those of results/full/08_transformer.json."""
    header = source(cells(ROOT / "notebooks" / "08_transformer.ipynb")[0])
    whole = json.loads((ROOT / "results" / "full" / "08_transformer.json").read_text())["notebook_seconds"]
    assert f"{whole['value']:,.0f} s in the stored run of\n{whole['date']}" in header.replace(" \n", "\n")
    assert whole["value"] < 2400, "the whole notebook must run in under 40 minutes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_states_the_whole_run_time_of_the_committed_run(path):
    """Where a notebook records its whole run time, its header quotes that run's seconds, not an older run's."""
    results = json.loads((ROOT / "results" / "full" / f"{path.stem}.json").read_text())
    if "notebook_seconds" not in results:
        pytest.skip(f"{path.stem} records no whole-run time")
    header, seconds = " ".join(source(cells(path)[0]).split()), results["notebook_seconds"]["value"]
    assert f"{seconds:,.0f} s in th" in header or f"took {seconds / 60:.0f} minutes" in header, \
        f"{path.stem}'s header does not quote the committed run's {seconds:,.0f} s"


def notebooks_without_tensorflow():
    """The notebooks the Makefile runs with TensorFlow hidden (all but NEEDS_TENSORFLOW)."""
    import subprocess

    out = subprocess.run(["make", "--no-print-directory", "-s", "print-without-tf-notebooks"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in out]


def test_notebooks_without_tensorflow_import_it_only_in_cells_about_a_tensorflow_tool():
    paths = notebooks_without_tensorflow()
    assert {ROOT / "notebooks" / f"{name}.ipynb" for name in ("06_birnn", "07_seq2seq_beam_search", "09_bert_gpt")} <= set(paths)
    for path in paths:
        for i, cell in enumerate(cells(path)):
            text = source(cell)
            if cell["cell_type"] == "code" and re.search(r"^\s*(import|from) (tensorflow|tf_keras)\b", text, re.M):
                assert text.startswith('if config.requires("tensorflow"):'), (
                    f"{path.name} cell {i} imports TensorFlow outside a config.requires('tensorflow') block")


def test_the_readme_lists_the_notebooks_that_need_tensorflow_as_the_makefile_does():
    makefile = (ROOT / "Makefile").read_text()
    needs = re.search(r"^NEEDS_TENSORFLOW =(.*)$", makefile, re.M).group(1).split()
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| notebook | needs TensorFlow installed for |"):]
    table = table[:table.index("\n\n")]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    needing = {nn.strip() for first, need in rows if not need.strip().startswith("nothing")
               for nn in first.split(",")}
    assert needing == {name[:2] for name in needs}

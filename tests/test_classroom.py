"""The classroom workflow (tools/classroom.py, nbgrader): student versions and autograding that is fair.

CI autogrades GRADED_IN_CI; `make grade-check` (NNUTILS_GRADE_ALL=1) autogrades every notebook, and
NNUTILS_GRADE=02_cnn_lenet,05_lstm_gru (for example) autogrades just those.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import classroom  # noqa: E402

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

NAMES = classroom.names()
GRADED_IN_CI = ["01_mlp", "07_seq2seq_beam_search"]  # the rest with NNUTILS_GRADE_ALL=1 (make grade-check): CI stays short
GRADED = (os.environ["NNUTILS_GRADE"].split(",") if os.environ.get("NNUTILS_GRADE")
          else NAMES if os.environ.get("NNUTILS_GRADE_ALL") == "1" else GRADED_IN_CI)
assert set(GRADED) <= set(NAMES), f"NNUTILS_GRADE names unknown notebooks: {sorted(set(GRADED) - set(NAMES))}"

# One plausible wrong answer per exercise (the solution cell's new source), each of which its check must fail.
MUTATIONS = {
    "01_mlp": {
        "ex1_collapse": """A = A1 @ A2 @ A3
c = c3  # the earlier biases forgotten
""",
        "ex2_count": """sizes = [784, 300, 100, 10]
n_parameters = sum(n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))  # weights only
""",
        "ex3_gradient": """def logits_gradient(logits, labels):
    return mlp.softmax(logits) - np.eye(logits.shape[1])[labels]  # the 1/n of the mean forgotten
""",
        "ex4_dropout": """no_dropout_model, no_dropout_history, no_dropout_accuracy = model, history, test_accuracy  # copied
overfits_more = True
""",
    },
    "02_cnn_lenet": {
        "ex1_output_size": """side = (64 + 2 * 2 - 5) // 2 + 1
ex1_output_shape = (side, side, 16)
ex1_parameters = 5 * 5 * 3 * 16  # the biases forgotten
""",
        "ex2_avg_pool": """def avg_pool2d(x, size=2, stride=2):
    h_out, w_out = (x.shape[0] - size) // stride + 1, (x.shape[1] - size) // stride + 1
    out = np.zeros((h_out, w_out, x.shape[2]), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            out[i, j, :] = x[i * stride:i * stride + size, j * stride:j * stride + size, :].max(axis=(0, 1))  # max, not mean
    return out
""",
        "ex3_horizontal": """horizontal_filter = -vertical_filter.T  # the sign flipped: dark-to-bright instead
""",
        "ex4_fashion": """fashion_model, fashion_accuracy = lenet, test_accuracy  # the MNIST model and its number, copied
""",
        "ex5_kernel_gradient": """def kernel_gradient(x, error):
    f = x.shape[0] - error.shape[0] + 1
    grad = np.zeros((f, f))
    for u in range(f):
        for v in range(f):
            grad[u, v] = np.sum(x[u:u + error.shape[0], v:v + error.shape[1]] * error[::-1, ::-1])  # flipped error
    return grad


descended_kernel = vertical_filter.copy()  # the known answer typed in
""",
    },
    "03_resnet": {
        "ex1_params": """def conv_bn(c_in, c_out, k=3):
    return k * k * c_in * c_out + 4 * c_out


n_params_by_hand = conv_bn(3, 16)
for c_in, c_out in ((16, 16), (16, 32), (32, 64)):
    n_params_by_hand += conv_bn(c_in, c_out) + conv_bn(c_out, c_out) + 2 * 2 * conv_bn(c_out, c_out)
n_params_by_hand += 64 * 10 + 10  # the two 1x1 projection shortcuts forgotten
""",
        "ex2_numpy_block": """def block_forward(block, x):
    def bn(layer, z):
        gamma, beta, mean, var = layer.get_weights()
        return gamma * (z - mean) / np.sqrt(var + layer.epsilon) + beta

    def conv(layer, z, strides=1):
        return keras.ops.convert_to_numpy(keras.ops.conv(z, layer.kernel, strides=strides, padding="same"))

    y = np.maximum(bn(block.bn1, conv(block.conv1, x, block.strides)), 0.0)
    y = bn(block.bn2, conv(block.conv2, y))
    skip = x if block.projection is None else conv(block.projection, x, block.strides)  # its batch norm forgotten
    return np.maximum(y + skip, 0.0)
""",
        "ex3_tta": """def tta_predict(model, images):
    views = model.predict(np.concatenate([images, images[:, ::-1]]), verbose=0)  # axis 1: upside down, not mirrored
    return (views[:len(images)] + views[len(images):]) / 2
""",
        "ex4_zero_init": """def zero_init_residuals(model):
    for layer in model.layers:
        if isinstance(layer, resnet.ResidualBlock) and layer.batch_norm:
            layer.bn1.gamma.assign(np.zeros(layer.bn1.gamma.shape, "float32"))  # the first batch norm, not the last
""",
    },
    "04_rnn_bptt": {
        "ex1_onehot": """onehot_shape = (len(line), len(vocab))  # <eos> forgotten
n_unknown = sum(ch not in vocab for ch in line)
""",
        "ex2_step": """h1 = np.tanh(step_params["U"][:, x1] + step_params["W"].T @ h_prev + step_params["b"])  # W transposed
o1 = step_params["V"] @ h1 + step_params["c"]
y1 = np.exp(o1) / np.exp(o1).sum()
""",
        "ex3_clip": """def my_clip(grads, max_norm):
    global_norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    return [g * max_norm / global_norm for g in grads], global_norm  # scales even when the norm is small
""",
        "ex4_perplexity": """perplexity = np.exp(val_loss)
bits_per_char = val_loss * np.log(2)  # multiplied instead of divided
uniform_perplexity = float(len(vocab))
""",
        "ex5_bptt_scalar": """def bptt_scalar(w, u, xs, y):
    hs = [0.0]
    for x in xs:
        hs.append(np.tanh(w * hs[-1] + u * x))
    contributions = [0.0] * (len(xs) - 1) + [(hs[-1] - y) * (1 - hs[-1] ** 2) * hs[-2]]  # the last step only
    return float(sum(contributions)), contributions


scalar_grad, scalar_contributions = bptt_scalar(0.5, 1.0, scalar_xs, 0.2)
""",
    },
    "05_lstm_gru": {
        "ex1_lstm_step": """sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))
z_f, z_i, z_g, z_o = np.split(x_t @ kernel + h_prev @ recurrent_kernel + bias, 4)  # gate order i, f swapped
c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_g)
h_t = sigmoid(z_o) * np.tanh(c_t)
""",
        "ex2_param_count": """def lstm_params(D, H):
    return 4 * (H * (D + H) + H)


def gru_params(D, H):
    return 3 * (H * (D + H) + H)  # reset_after's second bias forgotten
""",
        "ex3_baseline": """best_constant = 1.0          # the adding problem's answers, copied from section 3
baseline_exact = 1 / 6
""",
        "ex4_gru_step": """sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))
x_z, x_r, x_h = np.split(x_t @ gru_kernel + gru_bias[0], 3)
r_z, r_r, r_h = np.split(h_prev @ gru_recurrent_kernel + gru_bias[1], 3)
update, reset = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
h_next = (1 - update) * h_prev + update * np.tanh(x_h + reset * r_h)  # keep and write swapped
""",
    },
    "06_birnn": {
        "ex1_reverse": """def reverse_padded(x, lengths):
    return np.asarray(x)[:, ::-1]  # the plain flip: padding first
""",
        "ex2_params": """def bilstm_parameters(d, u):
    return 4 * (d * u + u * u + u)  # one direction only
""",
        "ex3_ceiling": """simulated_ceiling = rnn.appears_later_causal_accuracy(10, 6)  # the formula, not a simulation
""",
        "ex4_merge": """merged_shapes = {"concat": (2, 7, 5), "sum": (2, 7, 5), "mul": (2, 7, 5), "ave": (2, 7, 5),
                 None: [(2, 7, 5), (2, 7, 5)]}  # concat does not add channels, thought the learner
""",
    },
    "07_seq2seq_beam_search": {
        "ex1_masked_accuracy": """my_masked_accuracy = float(np.mean(logits.argmax(axis=-1) == y))  # padding counted
""",
        "ex2_length_penalty": """def normalised_score(tokens, total, alpha):
    return total * len(tokens) ** alpha  # multiplied instead of divided


best_raw = int(np.argmin([normalised_score(t, s, 0.0) for t, s in hypotheses]))
best_normalised = int(np.argmin([normalised_score(t, s, 1.0) for t, s in hypotheses]))
""",
        "ex3_exhaustive": """def exhaustive_best(max_len):
    return list(decoding.greedy_decode(toy_step, np.array([3]), 3, 1, max_len)[0])  # greedy is not exhaustive
""",
        "ex4_exact_match": """def exact_match_rate(hypotheses, references):
    return float(np.mean([hypothesis == refs[0] for hypothesis, refs in zip(hypotheses, references)]))  # first only


plain_exact = exact_match_rate([to_text(outputs["plain", 1, 0.0][s][0]) for s in eval_sources],
                               [test_references[s] for s in eval_sources])
attention_exact = plain_exact  # copied
""",
        "ex5_attention_step": """def attention_step(query, keys, key_mask, W_q, W_k, v):
    scores = np.tanh(query @ W_q + keys @ W_k) @ v[:, 0]  # the mask forgotten: padding gets weight too
    weights = np.exp(scores - scores.max())
    weights = weights / weights.sum()
    return weights @ keys, weights


first_context, first_weights = attention_step(query, keys, key_mask, W_q, W_k, v_att)
most_attended = short_source.split()[int(np.argmax(first_weights))]
""",
    },
    "08_transformer": {
        "ex1_by_hand": """q1 = np.array([np.log(9.0) * np.sqrt(2.0), 0.0])
scores = np.array([[1.0, 0.0], [0.0, 1.0]]) @ q1  # forgot to divide by sqrt(d)
ex1_weights = np.exp(scores) / np.exp(scores).sum()
ex1_output = float(ex1_weights @ np.array([2.0, 6.0]))
""",
        "ex2_parameters": """def encoder_block_formula(ffn_ratio):
    a = 4 + 2 * ffn_ratio
    b = 2 * 2  # the LayerNorms only: the biases of the six dense projections forgotten
    return a, b
""",
        "ex3_causal": """def offset_causal_mask(n_queries, n_keys):
    return np.tril(np.ones((n_queries, n_keys), dtype=bool))  # no offset: right only when n_queries == n_keys
""",
        "ex4_encoder_block": """def encoder_block_forward(x, padding_mask, w):
    ops = keras.ops
    w = {name: ops.convert_to_tensor(value) for name, value in w.items()}

    def layer_norm(z, prefix):
        mean = ops.mean(z, axis=-1, keepdims=True)
        variance = ops.var(z, axis=-1, keepdims=True)
        return w[f"{prefix}_gamma"] * (z - mean) / ops.sqrt(variance + 1e-5) + w[f"{prefix}_beta"]

    def project(z, part):
        return ops.einsum("btd,dhk->bhtk", z, w[f"{part}_kernel"]) + w[f"{part}_bias"][None, :, None, :]

    q, k, v = project(x, "query"), project(x, "key"), project(x, "value")
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / float(np.sqrt(q.shape[-1]))  # the padding mask forgotten
    context = ops.matmul(ops.softmax(scores, axis=-1), v)
    attended = ops.einsum("bhtk,hkd->btd", context, w["output_kernel"]) + w["output_bias"]
    a = layer_norm(x + attended, "attention_norm")
    hidden = ops.relu(ops.matmul(a, w["ffn_hidden_kernel"]) + w["ffn_hidden_bias"])
    return layer_norm(a + ops.matmul(hidden, w["ffn_output_kernel"]) + w["ffn_output_bias"], "ffn_norm")
""",
    },
    "09_bert_gpt": {
        "ex1_formula": """def gpt_parameter_formula(vocab_size, context, num_layers):
    a = num_layers * (3 + 1 + 2 * 4)
    b = vocab_size + context + 2 * num_layers  # the final LayerNorm's scale forgotten
    return a, b
""",
        "ex2_temperature": """def temperature_probs(logits, temperature):
    z = np.asarray(logits, dtype=np.float64) * temperature  # multiplied instead of divided
    p = np.exp(z - z.max())
    return p / p.sum()
""",
        "ex3_mask": """def gpt_attention_mask(ids):
    ids = np.asarray(ids)
    causal = np.tril(np.ones((ids.shape[1], ids.shape[1]), dtype=bool))
    return np.broadcast_to(causal, (len(ids),) + causal.shape)  # padding forgotten
""",
        "ex4_top_p": """def top_p_filter(probs, p):
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    n_keep = int((np.cumsum(probs[order]) < p).sum())  # stops before the token that reaches p
    kept = np.zeros_like(probs)
    kept[order[:n_keep]] = probs[order[:n_keep]]
    return kept / kept.sum()
""",
    },
}


def test_every_exercise_of_every_notebook_has_a_planted_wrong_answer():
    for name in NAMES:
        cells = load(ROOT / "notebooks" / f"{name}.ipynb")["cells"]
        solutions = sorted(c["metadata"]["nbgrader"]["grade_id"] for c in cells
                           if c["metadata"].get("nbgrader", {}).get("solution"))
        assert solutions and sorted(MUTATIONS.get(name, {})) == solutions, name


def load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def text(cell):
    return "".join(cell["source"])


def solution_lines(source, begin="### BEGIN SOLUTION", end="### END SOLUTION"):
    """The non-trivial lines between nbgrader's markers."""
    blocks = re.findall(re.escape(begin) + r"\n(.*?)" + re.escape(end), source, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if len(line.strip()) > 8]


def test_committed_student_versions_are_up_to_date():
    assert classroom.stale(NAMES) == [], "run `make student` and commit student/"


@pytest.mark.parametrize("name", NAMES)
def test_student_version_keeps_the_lessons_and_hides_the_answers(name):
    teacher, student = load(ROOT / "notebooks" / f"{name}.ipynb"), load(ROOT / "student" / f"{name}.ipynb")
    first = classroom.first_exercise(teacher["cells"])
    assert len(student["cells"]) == len(teacher["cells"])
    for i, (ours, theirs) in enumerate(zip(teacher["cells"], student["cells"])):
        meta = ours["metadata"].get("nbgrader", {})
        for line in solution_lines(text(ours)) + solution_lines(text(ours), "### BEGIN HIDDEN TESTS",
                                                                 "### END HIDDEN TESTS"):
            assert line not in text(theirs), f"cell {i}: an answer or hidden test survives: {line!r}"
        if meta.get("solution"):
            assert "raise NotImplementedError()" in text(theirs)
        if theirs["cell_type"] == "code":
            assert theirs["outputs"] == (ours["outputs"] if i < first else []), f"cell {i}: outputs"
    whole = json.dumps(student)
    assert "BEGIN SOLUTION" not in whole and "BEGIN HIDDEN TESTS" not in whole and "teacher version" not in whole
    assert f"blob/main/student/{name}.ipynb" in text(student["cells"][0])
    images = [o for c in student["cells"][:first] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the teaching plots before the exercises stay in the student version"


def test_first_exercise_and_student_version_reject_mismatched_notebooks():
    teacher = load(ROOT / "notebooks" / "09_bert_gpt.ipynb")
    release = dict(teacher, cells=teacher["cells"][:-1])
    with pytest.raises(ValueError, match="cells, one for one"):
        classroom.student_version(teacher, release)
    with pytest.raises(SystemExit, match="unknown notebook"):
        classroom.names(["99_nothing"])


def mutated(teacher, name):
    notebook = json.loads(json.dumps(teacher))
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution") and grade_id in MUTATIONS[name]:
            cell["source"] = MUTATIONS[name][grade_id].splitlines(keepends=True)
    return notebook


def results_snapshot():
    """The committed results (results/smoke is scratch that notebook tests on another pytest worker may write)."""
    return {p: p.read_bytes() for p in sorted((ROOT / "results").rglob("*.json")) if "smoke" not in p.parts}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Three submissions per graded notebook (untouched, the solution, one wrong answer per exercise), autograded."""
    course = tmp_path_factory.mktemp("course")
    before = results_snapshot()
    for name in GRADED:
        classroom.generate([name], course, course / "student")
        teacher = load(ROOT / "notebooks" / f"{name}.ipynb")
        for cell in teacher["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        submissions = {"untouched": load(course / "student" / f"{name}.ipynb"), "solution": teacher}
        if name in MUTATIONS:
            submissions["mutant"] = mutated(teacher, name)
        for student, notebook in submissions.items():
            classroom.write_notebook(notebook, course / "submitted" / student / name / f"{name}.ipynb")
    return course, classroom.grade(GRADED, course), before


@pytest.mark.parametrize("name", GRADED)
def test_untouched_submission_scores_zero_on_every_graded_cell(graded, name):
    _, results, _ = graded
    cells = results[name]["untouched"]
    assert cells and all(maximum > 0 and score == 0 for score, maximum in cells.values()), cells


@pytest.mark.parametrize("name", GRADED)
def test_solution_scores_full_marks(graded, name):
    _, results, _ = graded
    cells = results[name]["solution"]
    assert cells and all(score == maximum > 0 for score, maximum in cells.values()), cells


@pytest.mark.parametrize("name", [n for n in GRADED if n in MUTATIONS])
def test_every_planted_wrong_answer_fails_its_check(graded, name):
    _, results, _ = graded
    teacher = load(ROOT / "notebooks" / f"{name}.ipynb")["cells"]
    solutions = [c["metadata"]["nbgrader"]["grade_id"] for c in teacher if c["metadata"].get("nbgrader", {}).get("solution")]
    assert sorted(solutions) == sorted(MUTATIONS[name]), "one mutation per exercise"
    checks = {teacher[i + 1]["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["grade_id"]
              for i, c in enumerate(teacher) if c["metadata"].get("nbgrader", {}).get("solution")}
    scores = results[name]["mutant"]
    assert {check: scores[check][0] for check in checks} == {check: 0 for check in checks}


@pytest.mark.parametrize("name", GRADED)
def test_a_blank_exercise_breaks_no_ungraded_cell(graded, name):
    course, _, _ = graded
    autograded = load(course / "autograded" / "untouched" / name / f"{name}.ipynb")
    failing = [i for i, c in enumerate(autograded["cells"]) if c["cell_type"] == "code"
               and any(o["output_type"] == "error" for o in c["outputs"]) and "nbgrader" not in c["metadata"]]
    assert failing == []


def test_grading_runs_smoke_and_never_writes_into_results(graded):
    course, _, before = graded
    assert results_snapshot() == before
    assert sorted(p.stem for p in (course / "results" / "smoke").glob("*.json")) == sorted(GRADED)


@pytest.mark.parametrize("name", NAMES)
def test_readme_links_the_student_version_in_colab(name):
    readme = (ROOT / "README.md").read_text()
    assert f"colab.research.google.com/github/dl-course/keras-dl-course/blob/main/student/{name}.ipynb" in readme

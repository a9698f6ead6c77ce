"""Recording headline results to results/<profile>/<notebook>.json and the README table (notebook 01)."""

import datetime
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from nnutils import config

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
SPEED_START, SPEED_END = "<!-- backend-speed:start -->", "<!-- backend-speed:end -->"
SPEED_FILE = "backend_speed.json"  # written by tools/backend_speed.py
SMOKE_START, SMOKE_END = "<!-- smoke-times:start -->", "<!-- smoke-times:end -->"
SMOKE_FILE = "backend_smoke_times.json"  # written by tools/smoke_times.py


def project_root():
    """The course checkout when nnutils is installed from it (editable), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir() else Path.cwd()


def results_dir():
    """Where `record` writes: $NNUTILS_RESULTS_DIR when set (grading, so the course's results/ stay as
    committed), else the checkout's results/."""
    redirect = os.environ.get("NNUTILS_RESULTS_DIR", "").strip()
    return Path(redirect).expanduser().resolve() if redirect else project_root() / "results"


def results_path(notebook, profile=None, base=None):
    """Where `record` writes the results of `notebook`: <base, default results_dir()>/<profile>/<notebook>.json."""
    _check_name("notebook", notebook)
    return (base or results_dir()) / (profile or config.profile()) / f"{notebook}.json"


def record(notebook, name, value, seconds=None, **extra):
    """Store one headline metric of a notebook, with profile, machine, date and seconds (notebook 01)."""
    _check_name("notebook", notebook)
    _check_name("name", name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"value must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"value must be finite, got {value}")
    if seconds is not None and (not isinstance(seconds, (int, float, np.integer, np.floating)) or seconds < 0):
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    path = results_path(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    entry = {"value": float(value), "profile": config.profile(), "machine": config.machine(),
             "date": datetime.date.today().isoformat()}
    if seconds is not None:
        entry["seconds"] = round(float(seconds), 1)
    entry.update({k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in extra.items()})
    results[name] = entry
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return None


def load(notebook, profile=None):
    """The recorded results of one notebook as a dict ({} when nothing was recorded)."""
    path = results_path(notebook, profile)
    if not path.exists():  # a redirected results_dir() falls back on the course's committed results
        path = results_path(notebook, profile, base=project_root() / "results")
    return json.loads(path.read_text()) if path.exists() else {}


def results_table(profile="full"):
    """A Markdown table of every recorded result of a profile, one row per metric (README)."""
    rows = ["| notebook | metric | value | seconds | machine | date |", "|---|---|---:|---:|---|---|"]
    for path in sorted((project_root() / "results" / profile).glob("*.json")):
        for name, entry in sorted(json.loads(path.read_text()).items()):
            value = entry["value"]
            shown = f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
            seconds = entry.get("seconds", "")
            rows.append(f"| {path.stem} | {name} | {shown} | {seconds} | {entry.get('machine', '')} | {entry.get('date', '')} |")
    return "\n".join(rows)


def backend_speed_table(path=None):
    """A Markdown table of results/backend_speed.json: ms per GPT iteration and per Transformer step (README)."""
    record = json.loads(Path(path or project_root() / "results" / SPEED_FILE).read_text())
    half = record["gpt_iterations"] // 2
    rows = [f"| backend | version | 09 GPT: ms per iteration | 09 GPT: first {half} iterations, s | "
            "08 Transformer: ms per step | 08 Transformer: first 3 steps, s |", "|---|---|---:|---:|---:|---:|"]
    for backend, gpt in record["gpt"].items():
        step = record["transformer"][backend]
        rows.append(f"| {backend} | {gpt['versions'].get(backend, '')} | {gpt['ms_per_iteration']:.1f} | "
                    f"{gpt['first_half_seconds']:.1f} | {step['ms_per_step']:.1f} | {step['warmup_seconds']:.1f} |")
    rows.append(f"\nMeasured {record['date']} on an {record['machine']} in one run of `tools/backend_speed.py`: "
                f"{record['rounds']} rounds, the backends in turns, medians shown. The first iterations include "
                "compiling the training step: the GPT with `jit_compile=True` (XLA on TensorFlow and JAX, "
                "`torch.compile` on PyTorch), the Transformer with Keras's default, `\"auto\"` (XLA on JAX; on "
                "TensorFlow only where a GPU is present, so not on this CPU; none on PyTorch).")
    return "\n".join(rows)


def smoke_times_table(path=None):
    """A Markdown table of results/backend_smoke_times.json: each notebook's smoke run on each backend (README)."""
    record = json.loads(Path(path or project_root() / "results" / SMOKE_FILE).read_text())
    backends = list(record["versions"])
    rows = ["| notebook | " + " | ".join(f"{b} {record['versions'][b]}, s" for b in backends) + " |",
            "|---|" + "---:|" * len(backends)]
    for notebook, runs in record["notebooks"].items():
        cells = [f"{runs[b]['seconds']:.0f}" + ("" if runs[b]["passed"] else " (failed)") for b in backends]
        rows.append(f"| {notebook} | " + " | ".join(cells) + " |")
    later = [f"{notebook} on {runs['date']}" for notebook, runs in record["notebooks"].items() if "date" in runs]
    rows.append(f"\nMeasured {record['date']} on an {record['machine']} in one run of `tools/smoke_times.py`: each "
                "notebook once per backend, the backends in turns, JAX and PyTorch with TensorFlow hidden. A time is "
                "the whole run, kernel start and imports included."
                + (f" Measured again later, in a run of their own after their smoke profile changed: "
                   f"{', '.join(later)}." if later else ""))
    return "\n".join(rows)


def _replace_between(text, start, end, table, readme):
    if start not in text or end not in text:
        raise ValueError(f"readme {readme} has no {start} ... {end} markers")
    before, rest = text.split(start, 1)
    return f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"


def update_readme(readme=None, profile="full"):
    """Rewrite the README's results, backend-speed and smoke-time tables between their markers (`make results`)."""
    readme = Path(readme) if readme else project_root() / "README.md"
    text = _replace_between(readme.read_text(), README_START, README_END, results_table(profile), readme)
    if (project_root() / "results" / SPEED_FILE).exists() and SPEED_START in text:
        text = _replace_between(text, SPEED_START, SPEED_END, backend_speed_table(), readme)
    if (project_root() / "results" / SMOKE_FILE).exists() and SMOKE_START in text:
        text = _replace_between(text, SMOKE_START, SMOKE_END, smoke_times_table(), readme)
    readme.write_text(text)


def _check_name(argument, value):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ValueError(f"{argument} must be a non-empty name of letters, digits, '_', '-' or '.', got {value!r}")


if __name__ == "__main__":
    update_readme()
    print(results_table())

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


def update_readme(readme=None, profile="full"):
    """Rewrite the results table between the README's results markers (`make results`)."""
    readme = Path(readme) if readme else project_root() / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"readme {readme} has no {README_START} ... {README_END} markers")
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    readme.write_text(f"{before}{README_START}\n{results_table(profile)}\n{README_END}{after}")


def _check_name(argument, value):
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ValueError(f"{argument} must be a non-empty name of letters, digits, '_', '-' or '.', got {value!r}")


if __name__ == "__main__":
    update_readme()
    print(results_table())

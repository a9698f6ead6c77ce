"""Run every notebook in the smoke profile on each Keras backend, in one run and in turns (the README's "Backends").

    python tools/smoke_times.py [--notebooks 01 02 ...] [--out results/backend_smoke_times.json] [--update]

Each notebook runs in a fresh kernel (`jupyter nbconvert --execute`), once per backend, with TensorFlow hidden from
JAX and PyTorch (`tools/without_tensorflow`), as CI runs them. The backends take turns notebook after notebook, the
first one rotating (TF, JAX, PyTorch; then JAX, PyTorch, TF; ...), so that a drift in this machine's speed hits
them alike. A time is the whole run of the notebook: starting the kernel, importing Keras and its backend, every
cell. Results go to a scratch folder, never into results/smoke. Set KERAS_HOME to the data, as for `make test`.
With --update, only the named notebooks' rows of --out are replaced, each marked with the day of its new run
(for a notebook whose smoke profile changed); the README says which rows were measured apart from the others.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnutils.config import BACKENDS

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path, backend, scratch):
    """(seconds, passed) of one smoke run of the notebook at path on backend."""
    env = {**os.environ, "KERAS_BACKEND": backend, "NNUTILS_PROFILE": "smoke", "TF_CPP_MIN_LOG_LEVEL": "2",
           "NNUTILS_RESULTS_DIR": str(scratch / "results")}
    if backend != "tensorflow":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tools" / "without_tensorflow"),
                                                          env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1",
               str(path), "--output-dir", str(scratch), "--output", f"{path.stem}_{backend}.ipynb"]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
    return seconds, done.returncode == 0


def updated(old, new):
    """old's record with new's notebooks in place of its own, each dated; refused if versions or machine differ."""
    if old["versions"] != new["versions"] or old["machine"] != new["machine"]:
        raise SystemExit(f"--update: {new['machine']} with {new['versions']} is not the machine and versions of the "
                         f"file ({old['machine']} with {old['versions']}): measure every notebook again instead")
    notebooks = dict(old["notebooks"])
    for name, runs in new["notebooks"].items():
        notebooks[name] = {**runs, "date": new["date"]}
    return {**old, "notebooks": dict(sorted(notebooks.items()))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", help="two-digit numbers (default: every notebook)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--out", default="results/backend_smoke_times.json")
    parser.add_argument("--update", action="store_true", help="replace only these notebooks' rows of --out")
    args = parser.parse_args(argv)
    paths = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                   if not args.notebooks or p.name[:2] in args.notebooks)
    if not paths:
        raise SystemExit(f"no notebook matches {args.notebooks}")
    times = {p.stem: {} for p in paths}
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()}-core CPU",
              "versions": {b: importlib.metadata.version(b) for b in args.backends}, "notebooks": times}
    out = Path(args.out)
    if args.update:
        updated(json.loads(out.read_text()), record)  # refused now, before the runs, if the file cannot take them
    with tempfile.TemporaryDirectory() as scratch:
        for i, path in enumerate(paths):
            order = args.backends[i % len(args.backends):] + args.backends[:i % len(args.backends)]
            for backend in order:
                seconds, passed = run_notebook(path, backend, Path(scratch))
                times[path.stem][backend] = {"seconds": round(seconds, 1), "passed": passed}
                print(f"{path.stem:24s} {backend:10s} {seconds:6.0f} s {'passed' if passed else 'FAILED'}", flush=True)
    if args.update:
        record = updated(json.loads(out.read_text()), record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"written to {out}")
    return 0 if all(r["passed"] for t in times.values() for r in t.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

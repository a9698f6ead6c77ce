"""Time the course's two largest models on each Keras backend, in one run and in turns (the README's "Backends").

    python tools/backend_speed.py [--rounds 3] [--gpt-iterations 400] [--steps 60] [--out results/backend_speed.json]

A Python process holds one Keras backend, so every measurement runs in a fresh process with KERAS_BACKEND set, and
the backends take turns round after round (TF, JAX, PyTorch, TF, ...) so that a drift in this machine's speed hits
them alike. Each backend's number is the median of its rounds. Two measurements:

* **GPT (notebook 09):** `gpt.train_gpt` at the size and batch of nanoGPT's budget in notebook 09 (context 64, width
  128, 4 layers, 4 heads, 12 windows per batch, `jit_compile=True`) on tiny Shakespeare. The run is split in two
  halves by `eval_every`; ms per iteration is taken from the second half, so compilation is left out.
* **Transformer step (notebook 08):** notebook 08's model, optimizer and loss (width 128, 2 + 2 blocks, 4 heads,
  feed-forward 512, label smoothing 0.1), `train_on_batch` on batches of 128 pairs at 08's longest length bucket
  (12 source and 13 target positions). The ids are drawn at random from vocabularies of 08's sizes: the cost of
  a step depends on the shapes, not on the words. Three warm-up steps (the compilation) are left out.

The speeds are reported, not tuned for: every backend runs the same code with the same arguments.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nnutils.config import BACKENDS
SRC_VOCAB, TGT_VOCAB, BATCH, SRC_LEN, TGT_LEN = 13_851, 6_592, 128, 12, 13  # notebook 08's full run


def gpt_ms_per_iteration(iterations):
    """ms per training iteration of 09's GPT at nanoGPT's budget shape, compilation excluded."""
    import numpy as np

    from nnutils import data, gpt

    train_text, val_text = data.shakespeare_split()
    chars = sorted(set(train_text + val_text))
    char_id = {c: i for i, c in enumerate(chars)}
    train_ids = np.array([char_id[c] for c in train_text], dtype=np.int32)
    val_ids = np.array([char_id[c] for c in val_text[:2000]], dtype=np.int32)
    half = iterations // 2
    _, log = gpt.train_gpt(train_ids, val_ids, len(chars), iterations=2 * half, batch_size=12, context=64,
                           d_model=128, num_layers=4, num_heads=4, warmup=min(100, half), jit_compile=True,
                           eval_every=half, seed=0, verbose=False)
    (_, _, _, first), (_, _, _, both) = log["curve"]
    return {"ms_per_iteration": 1000 * (both - first) / half, "first_half_seconds": first, "iterations": 2 * half}


def transformer_ms_per_step(steps):
    """ms per training step of 08's Transformer on full-size batches, warm-up excluded."""
    import keras
    import numpy as np

    from nnutils import transformer

    keras.utils.set_random_seed(0)
    model = transformer.build_transformer(SRC_VOCAB, TGT_VOCAB, d_model=128, num_heads=4, d_ff=512, num_layers=2,
                                          max_len=SRC_LEN + 2, dropout=0.1)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 10_000, warmup_target=2e-3, warmup_steps=500)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98, global_clipnorm=1.0),
                  loss=transformer.SmoothedMaskedLoss(0.1))
    rng = np.random.default_rng(0)
    batches = [((rng.integers(1, SRC_VOCAB, (BATCH, SRC_LEN)).astype("int32"),
                 rng.integers(1, TGT_VOCAB, (BATCH, TGT_LEN)).astype("int32")),
                rng.integers(1, TGT_VOCAB, (BATCH, TGT_LEN)).astype("int32")) for _ in range(8)]
    began = time.perf_counter()
    for inputs, labels in batches[:3]:
        model.train_on_batch(inputs, labels)
    warmup = time.perf_counter() - began
    began = time.perf_counter()
    for i in range(steps):
        inputs, labels = batches[i % len(batches)]
        model.train_on_batch(inputs, labels)
    return {"ms_per_step": 1000 * (time.perf_counter() - began) / steps, "warmup_seconds": warmup, "steps": steps}


def worker(args):
    """One measurement in this process, printed as one JSON line."""
    began = time.perf_counter()
    import keras

    from nnutils import config

    imported = time.perf_counter() - began
    result = gpt_ms_per_iteration(args.gpt_iterations) if args.worker == "gpt" else transformer_ms_per_step(args.steps)
    result.update(backend=keras.backend.backend(), versions=config.versions(), import_seconds=imported)
    print("RESULT " + json.dumps(result))


def run_one(backend, what, args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, __file__, "--worker", what, "--gpt-iterations", str(args.gpt_iterations),
               "--steps", str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} on {backend} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpt-iterations", type=int, default=400)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--out", default="results/backend_speed.json")
    parser.add_argument("--worker", choices=("gpt", "transformer"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    rounds = {what: {b: [] for b in args.backends} for what in ("gpt", "transformer")}
    for r in range(args.rounds):
        for what in ("gpt", "transformer"):
            for backend in args.backends:
                result = run_one(backend, what, args)
                rounds[what][backend].append(result)
                key = "ms_per_iteration" if what == "gpt" else "ms_per_step"
                print(f"round {r + 1}: {what:11s} {backend:10s} {result[key]:7.1f} ms", flush=True)
    summary = {}
    for what, key, start in (("gpt", "ms_per_iteration", "first_half_seconds"),
                             ("transformer", "ms_per_step", "warmup_seconds")):
        summary[what] = {b: {key: statistics.median(x[key] for x in runs), "rounds": [round(x[key], 2) for x in runs],
                             start: statistics.median(x[start] for x in runs), "versions": runs[0]["versions"]}
                         for b, runs in rounds[what].items()}
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()}-core CPU",
              "rounds": args.rounds, "gpt_iterations": rounds["gpt"][args.backends[0]][0]["iterations"],
              "transformer_steps": args.steps, **summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

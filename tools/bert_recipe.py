"""Notebook 09's BERT recipe, one change at a time: each variant pretrained for the notebook's budget, in one run.

    python tools/bert_recipe.py --steps 600 --out data/bert/recipe_ablation.json

Every variant starts from the same seed and reads the same batches; the held-out masked-LM accuracy (with
the unigram baseline) and the seconds of each are written to OUT, with the command, commit and machine.
"""

import argparse
import json
import sys
import time

from nnutils import bert, config

VARIANTS = {
    "recipe: pre-LN, tied head, no dropout": dict(),
    "post-LN blocks (original BERT)": dict(norm_first=False),
    "untied output layer": dict(tie_weights=False),
    "dropout 0.1": dict(dropout=0.1),
    "batch 32, 4x the steps (same tokens)": dict(batch_size=32),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/bert_recipe.py")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="data/bert/recipe_ablation.json")
    parser.add_argument("--checkpoint", default="bert-mlm-120min", help="whose vocabulary to read the text with")
    args = parser.parse_args(argv)
    _, vocab, _ = bert.load_checkpoint(args.checkpoint)
    tokenizer, blocks, heldout, counts = bert.prepare(0, vocab=vocab)
    unigram_id = bert.most_frequent_token(blocks)
    rows = {}
    for name, change in VARIANTS.items():
        config.set_seed(42)
        sizes = {**bert.RECIPE_SIZE, "norm_first": change.get("norm_first", True)}
        encoder = bert.build_bert_encoder(len(vocab), dropout=change.get("dropout", 0.0), **sizes)
        batch_size = change.get("batch_size", bert.RECIPE["batch_size"])
        steps = args.steps * bert.RECIPE["batch_size"] // batch_size
        model = bert.make_pretrainer(encoder, steps, bert.RECIPE["peak_lr"],
                                     tie_weights=change.get("tie_weights", True))
        began = time.perf_counter()
        log = bert.pretrain(model, blocks, steps, batch_size, seed=0, log_every=min(50, steps), verbose=False)
        seconds = time.perf_counter() - began
        report = bert.heldout_report(model, heldout, len(vocab), unigram_id)
        rows[name] = dict(change=change, steps=steps, batch_size=batch_size, heldout=report, last_train_loss=round(log["loss"][-1], 4),
                          parameters=int(model.count_params()), seconds=round(seconds, 1))
        print(f"{name:40s} held-out MLM accuracy {report['all']['mlm_accuracy']:.3f} "
              f"(unigram {report['all']['unigram_baseline']:.3f}), train loss {log['loss'][-1]:.3f}, {seconds:.0f} s",
              flush=True)
    record = dict(command="python tools/bert_recipe.py " + " ".join(sys.argv[1:] if argv is None else argv),
                  git_commit=bert._git_commit(), steps=args.steps, batch_size=bert.RECIPE["batch_size"],
                  machine=config.machine(), versions=config.versions(), date=time.strftime("%Y-%m-%d"),
                  variants=rows)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()

"""BERT for notebook 09: the encoder, its masked-LM head tied to the token embedding, pretraining, checkpoints.

The recipe that learns in minutes on a CPU (see notebook 09): pre-LN blocks with a final LayerNorm, masked
LM only (no next-sentence prediction) on contiguous text packed into full blocks, the output layer tied to
the token embedding, no dropout while pretraining, AdamW with a short warm-up, a cosine decay to zero at
the end of the run and gradient clipping. ``pretrain`` is the one function the notebook and the long run
(``python -m nnutils.bert pretrain --minutes 120 --out data/bert``) both call.
"""

import json
import os
import time
import warnings

import keras
import numpy as np
from keras import layers, ops

from nnutils import _args, bert_text, config, data
from nnutils._args import non_negative_int, positive_int
from nnutils.bert_text import CLS_ID, MASK_ID, PAD_ID, SEP_ID
from nnutils.transformer import EncoderBlock

# the architecture of notebook 09's BERT and of the shipped checkpoints
RECIPE_SIZE = dict(max_len=64, d_model=128, num_layers=4, num_heads=4, d_ff=512, norm_first=True)


@keras.saving.register_keras_serializable(package="nnutils")
class BertEmbedding(layers.Layer):
    """Token + segment + learned position embeddings, then LayerNorm and dropout (notebook 09)."""

    def __init__(self, vocab_size, max_len, d_model, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.max_len = positive_int("vocab_size", vocab_size), positive_int("max_len", max_len)
        self.d_model, self.dropout = positive_int("d_model", d_model), float(dropout)
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.token = layers.Embedding(vocab_size, d_model, embeddings_initializer=init, name="token")
        self.segment = layers.Embedding(2, d_model, embeddings_initializer=init, name="segment")
        self.position = layers.Embedding(max_len, d_model, embeddings_initializer=init, name="position")
        self.norm = layers.LayerNormalization(epsilon=1e-12, name="norm")
        self.drop = layers.Dropout(dropout)

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token.build(token_ids_shape)
        self.segment.build(token_ids_shape)
        self.position.build((token_ids_shape[1],))
        self.norm.build(tuple(token_ids_shape) + (self.d_model,))
        self.built = True

    def call(self, token_ids, segment_ids, training=None):
        positions = ops.arange(ops.shape(token_ids)[1])
        x = self.token(token_ids) + self.segment(segment_ids) + self.position(positions)[None]
        return self.drop(self.norm(x), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, max_len=self.max_len, d_model=self.d_model, dropout=self.dropout)
        return config


def build_bert_encoder(vocab_size, max_len=64, d_model=128, num_layers=2, num_heads=4, d_ff=512, dropout=0.1,
                       norm_first=False, name="bert_encoder"):
    """BERT's encoder: embeddings, nnutils.transformer.EncoderBlock x num_layers and the [CLS] pooler (notebook 09).

    Inputs {"token_ids", "segment_ids"} (batch, T <= max_len), id 0 is padding; outputs {"sequence":
    (batch, T, d_model), "pooled": tanh(W h_[CLS] + b), (batch, d_model)}. ``norm_first=True`` gives
    pre-LN blocks and a LayerNorm ("final_norm") after the last one, as in GPT-2.
    """
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
    x = BertEmbedding(vocab_size, max_len, d_model, dropout, name="embedding")(token_ids, segment_ids)
    real = ops.not_equal(token_ids, 0)
    for i in range(positive_int("num_layers", num_layers)):
        x = EncoderBlock(d_model, num_heads, d_ff, dropout, norm_first=norm_first, name=f"encoder_{i}")(
            x, padding_mask=real)
    if norm_first:
        x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    pooled = layers.Dense(d_model, activation="tanh", name="pooler")(x[:, 0])
    return keras.Model({"token_ids": token_ids, "segment_ids": segment_ids}, {"sequence": x, "pooled": pooled},
                       name=name)


@keras.saving.register_keras_serializable(package="nnutils")
class MaskedLM(keras.Model):
    """The encoder with BERT's masked-LM head: dense + GELU + LayerNorm, then logits tied to the token embedding (notebook 09).

    ``call({"token_ids", "mask_positions"})`` gives logits (batch, P, vocab) at the P positions only: the
    output layer is the transposed token-embedding table plus a bias, as in BERT, so it adds no vocab x d
    matrix of its own. Segment ids are all 0 (one segment: there is no next-sentence task).
    ``tie_weights=False`` gives the head its own vocab x d output matrix instead, for comparison.
    """

    def __init__(self, encoder, tie_weights=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(tie_weights, bool):
            raise TypeError(f"tie_weights must be True or False, got {tie_weights!r}")
        self.encoder, self.tie_weights = encoder, tie_weights
        embedding = encoder.get_layer("embedding")
        d_model, vocab_size = embedding.d_model, embedding.vocab_size
        self.transform = layers.Dense(d_model, activation="gelu", name="mlm_transform")
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="mlm_norm")
        self.output_bias = self.add_weight(shape=(vocab_size,), initializer="zeros", name="mlm_bias")
        self.output_matrix = None if tie_weights else self.add_weight(
            shape=(vocab_size, d_model), initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="mlm_output")

    def call(self, inputs, training=None):
        token_ids = ops.convert_to_tensor(inputs["token_ids"])  # NumPy or tensor: one kind inside the encoder's inputs
        sequence = self.encoder({"token_ids": token_ids, "segment_ids": ops.zeros_like(token_ids)},
                                training=training)["sequence"]
        h = ops.take_along_axis(sequence, ops.expand_dims(inputs["mask_positions"], -1), axis=1)
        h = self.norm(self.transform(h))
        table = self.encoder.get_layer("embedding").token.embeddings if self.tie_weights else self.output_matrix
        return ops.matmul(h, ops.transpose(table)) + self.output_bias  # table (vocab, d_model): tied, the embedding

    def get_config(self):
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "tie_weights": self.tie_weights}

    @classmethod
    def from_config(cls, config):
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def build_classifier(encoder, num_classes=2, dropout=0.1, pooling="mean"):
    """Fine-tuning: a dense layer on the encoder's mean over real tokens ("mean") or pooled [CLS] ("cls") (notebook 09).

    Masked-LM pretraining without next-sentence prediction never trains [CLS] or the pooler, so "mean"
    (every token's vector, averaged) is the default; it leaves the pooler unused, so the pooler is frozen.
    Returns logits (batch, num_classes).
    """
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    encoder.get_layer("pooler").trainable = pooling == "cls"
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
    out = encoder({"token_ids": token_ids, "segment_ids": segment_ids})
    if pooling == "cls":
        features = out["pooled"]
    else:
        real = ops.expand_dims(ops.cast(ops.not_equal(token_ids, PAD_ID), out["sequence"].dtype), -1)
        features = ops.sum(out["sequence"] * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
    logits = layers.Dense(positive_int("num_classes", num_classes), name="classes")(layers.Dropout(dropout)(features))
    return keras.Model({"token_ids": token_ids, "segment_ids": segment_ids}, logits, name="bert_classifier")


def pretraining_text(seed=0, heldout_fraction=0.02):
    """The pretraining sentences of notebook 09 by source, {"train": {...}, "heldout": {...}} (notebook 09).

    Movie Review: notebook 06's training reviews less its validation tenth (which is held out); its test
    reviews are never used. Tatoeba English: each sentence once, shuffled (the file is sorted by length),
    the last ``heldout_fraction`` held out. Tiny Shakespeare: its lines, the last ``heldout_fraction`` held out.
    """
    texts, labels = data.load_movie_reviews()
    (train_texts, train_labels), _ = data.train_test_split(texts, labels, test_fraction=0.1, seed=0)
    (fit_texts, _), (val_texts, _) = data.train_test_split(train_texts, train_labels, test_fraction=0.1, seed=1)
    english = list(dict.fromkeys(data.load_spa_eng()[1]))
    english = [english[i] for i in np.random.default_rng(seed).permutation(len(english))]
    lines = [line.strip() for line in data.load_shakespeare().split("\n") if line.strip()]
    train, heldout = {"Movie Review": list(fit_texts)}, {"Movie Review": list(val_texts)}
    for name, sentences in (("Tatoeba English", english), ("tiny Shakespeare", lines)):
        cut = len(sentences) - max(1, int(heldout_fraction * len(sentences)))
        train[name], heldout[name] = sentences[:cut], sentences[cut:]
    return {"train": train, "heldout": heldout}


def pretraining_blocks(tokenizer, sentences, max_len, copies=None, seed=0):
    """Each source's sentences tokenized and packed into blocks, ``copies[name]`` times in fresh orders (notebook 09).

    Returns (blocks (n, max_len) int32 shuffled, {name: number of blocks}).
    """
    copies = copies or {}
    rng, parts, counts = np.random.default_rng(seed), [], {}
    for name, texts in sentences.items():
        ids = [e.ids for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        for copy in range(positive_int(f"copies[{name!r}]", copies.get(name, 1))):
            order = rng.permutation(len(ids)) if copy else np.arange(len(ids))
            parts.append(bert_text.pack_blocks([ids[i] for i in order], max_len))
        counts[name] = sum(len(p) for p in parts) - sum(counts.values())
    blocks = np.concatenate(parts)
    return blocks[rng.permutation(len(blocks))], counts


def most_frequent_token(blocks):
    """The most frequent ordinary token of the blocks: the unigram model's one answer to every [MASK] (notebook 09)."""
    counts = np.bincount(np.asarray(blocks).ravel())
    counts[[PAD_ID, CLS_ID, SEP_ID, MASK_ID]] = 0
    return int(np.argmax(counts))


def mlm_accuracy(model, blocks, vocab_size, unigram_id, batch_size=256, seed=0):
    """Held-out masked-LM accuracy of a MaskedLM and of the unigram guess at the same positions: (model, unigram) (notebook 09)."""
    batches = bert_text.MLMBatches(blocks, min(batch_size, len(blocks)), vocab_size,
                                   steps=max(1, len(blocks) // min(batch_size, len(blocks))), seed=seed)
    right = guessed = total = 0.0
    for i in range(len(batches)):
        x, labels, weights = batches[i]
        predicted = np.argmax(ops.convert_to_numpy(model(x, training=False)), axis=-1)
        right += float(((predicted == labels) * weights).sum())
        guessed += float(((labels == unigram_id) * weights).sum())
        total += float(weights.sum())
    return right / total, guessed / total


def make_pretrainer(encoder, steps, peak_lr=1e-3, warmup_fraction=0.02, weight_decay=0.01, jit_compile=True,
                    tie_weights=True):
    """A compiled MaskedLM: AdamW, warm-up to peak_lr, cosine to 0 at ``steps``, clipnorm 1 (notebook 09).

    ``jit_compile`` is True, False or "auto" (XLA on JAX, and on TensorFlow only with a GPU).
    """
    from nnutils.gpt import make_optimizer

    model = MaskedLM(encoder, tie_weights=tie_weights)
    steps = positive_int("steps", steps)
    optimizer = make_optimizer(steps, peak_lr=peak_lr, min_lr=0.0, warmup=max(1, int(warmup_fraction * steps)),
                               weight_decay=weight_decay, beta_2=0.98, clipnorm=1.0)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"], jit_compile=_args.jit_compile(jit_compile))
    return model


class _Progress(keras.callbacks.Callback):
    """Logs each chunk's mean loss and accuracy and calls on_checkpoint at the chosen steps."""

    def __init__(self, log, checkpoints, on_checkpoint, began, verbose):
        super().__init__()
        self.log, self.checkpoints, self.on_checkpoint = log, checkpoints, on_checkpoint
        self.began, self.verbose = began, verbose

    def on_epoch_end(self, epoch, logs=None):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        seconds = time.perf_counter() - self.began
        for key, value in (("step", step), ("loss", logs["loss"]), ("accuracy", logs["accuracy"]),
                           ("seconds", seconds)):
            self.log[key].append(float(value))
        if self.verbose:
            print(f"step {step:6d}  loss {logs['loss']:.3f}  MLM accuracy {logs['accuracy']:.3f}  {seconds:7.0f} s",
                  flush=True)
        if step in self.checkpoints and self.on_checkpoint is not None:
            self.on_checkpoint(step, seconds)


def pretrain(model, blocks, steps, batch_size=128, seed=0, start=0, log_every=100, checkpoints=(),
             on_checkpoint=None, verbose=True):
    """Masked-LM pretraining of a compiled MaskedLM on packed blocks for ``steps`` steps (notebook 09).

    Batches come from bert_text.MLMBatches(seed), so a run resumed at ``start`` (with the model's and the
    optimizer's state restored) continues exactly. Every ``log_every`` steps the mean loss and accuracy are
    logged; at each step in ``checkpoints`` (start + multiples of log_every), on_checkpoint(step, seconds) is called.
    Returns the log: lists "step", "loss", "accuracy", "seconds" (since this call began).
    """
    steps, log_every = positive_int("steps", steps), positive_int("log_every", log_every)
    start = non_negative_int("start", start)
    if steps <= start or (steps - start) % log_every:
        raise ValueError(f"steps - start must be a positive multiple of log_every={log_every}, got steps={steps}, "
                         f"start={start}")
    bad = [c for c in checkpoints if (c - start) % log_every or not start < c <= steps]
    if bad:
        raise ValueError(f"checkpoints must be start + multiples of log_every={log_every} in ({start}, {steps}], "
                         f"got {bad}")
    vocab_size = model.encoder.get_layer("embedding").vocab_size
    batches = bert_text.MLMBatches(blocks, batch_size, vocab_size, steps, start=start, seed=seed)
    log = {"step": [], "loss": [], "accuracy": [], "seconds": []}
    began = time.perf_counter()
    with warnings.catch_warnings():  # masked-LM training never reads the pooler, which Keras would point out
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables .'pooler")
        model.fit(batches, epochs=(steps - start) // log_every, steps_per_epoch=log_every, verbose=0, shuffle=False,
                  callbacks=[_Progress(log, set(checkpoints), on_checkpoint, began, verbose)])
    return log


def save_checkpoint(path, model, vocab, sizes, provenance):
    """A MaskedLM's weights in float16 with its vocabulary, sizes and provenance, as one .npz file (notebook 09)."""
    arrays = {f"weight_{i:03d}": np.asarray(w, dtype=np.float16) for i, w in enumerate(model.get_weights())}
    np.savez_compressed(path, vocab=np.array(vocab), sizes=json.dumps(sizes), provenance=json.dumps(provenance),
                        **arrays)


def load_checkpoint(name_or_path, dropout=0.0):
    """A shipped checkpoint (name in nnutils.data.CHECKPOINTS, sha256-verified) or an .npz file: (MaskedLM, vocab, provenance) (notebook 09).

    The encoder is built with ``dropout`` (0.1 for fine-tuning); ``model.encoder`` is the encoder.
    """
    if not isinstance(name_or_path, str):
        raise TypeError(f"name_or_path must be a str, got {type(name_or_path).__name__}")
    path = data.fetch_checkpoint(name_or_path) if name_or_path in data.CHECKPOINTS else name_or_path
    with np.load(path, allow_pickle=False) as f:
        sizes, provenance = json.loads(str(f["sizes"])), json.loads(str(f["provenance"]))
        vocab = [str(token) for token in f["vocab"]]
        weights = [f[key].astype(np.float32) for key in sorted(k for k in f.files if k.startswith("weight_"))]
    model = MaskedLM(build_bert_encoder(len(vocab), dropout=dropout, **sizes))
    model({"token_ids": np.zeros((1, 4), np.int32), "mask_positions": np.zeros((1, 1), np.int32)})
    model.set_weights(weights)
    return model, vocab, provenance


# the long run's text mix and optimiser, shared by notebook 09 and `python -m nnutils.bert pretrain`
RECIPE = dict(vocab_size=8000, batch_size=128, peak_lr=2e-3, copies={"Movie Review": 4}, seed=0)


def prepare(seed=0, vocab=None):
    """Notebook 09's pretraining data: (tokenizer, train blocks, {source: held-out blocks}, source counts) (notebook 09).

    The WordPiece vocabulary is trained on the training text, or given (a checkpoint's ``vocab``).
    """
    text = pretraining_text(seed)
    tokenizer = (bert_text.train_wordpiece([s for part in text["train"].values() for s in part],
                                           vocab_size=RECIPE["vocab_size"])
                 if vocab is None else bert_text.tokenizer_from_vocab(vocab))
    blocks, counts = pretraining_blocks(tokenizer, text["train"], RECIPE_SIZE["max_len"], RECIPE["copies"], seed)
    heldout = {name: pretraining_blocks(tokenizer, {name: texts}, RECIPE_SIZE["max_len"])[0]
               for name, texts in text["heldout"].items()}
    return tokenizer, blocks, heldout, counts


def heldout_report(model, heldout, vocab_size, unigram_id):
    """MLM accuracy and the unigram baseline on each source's held-out blocks and on all of them (notebook 09)."""
    report = {}
    for name, blocks in {**heldout, "all": np.concatenate(list(heldout.values()))}.items():
        accuracy, unigram = mlm_accuracy(model, blocks, vocab_size, unigram_id, seed=11)
        report[name] = {"mlm_accuracy": round(accuracy, 4), "unigram_baseline": round(unigram, 4),
                        "blocks": int(len(blocks))}
    return report


def _git_commit():
    """HEAD's commit, marked when the working tree's nnutils/ differs from it (the code that ran is then not HEAD's)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))  # the repository this nnutils/ lives in, not the caller's
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=here).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "."], capture_output=True, cwd=here).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes to nnutils/" if dirty else "")


def _calibrate(blocks, seed, n=30):
    """Seconds per step of the recipe's model on this machine, timed after compilation on a throwaway copy."""
    config.set_seed(seed)
    encoder = build_bert_encoder(RECIPE["vocab_size"], dropout=0.0, **RECIPE_SIZE)
    model = make_pretrainer(encoder, 1000, RECIPE["peak_lr"])
    pretrain(model, blocks, 10, RECIPE["batch_size"], seed=seed, log_every=10, verbose=False)
    log = pretrain(model, blocks, 10 + n, RECIPE["batch_size"], seed=seed, start=10, log_every=n, verbose=False)
    return log["seconds"][-1] / n


def main(argv=None):
    """`python -m nnutils.bert pretrain --minutes 120 --checkpoints 10,30,60,120 --out data/bert` (notebook 09)."""
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m nnutils.bert")
    parser.add_argument("command", choices=["pretrain"])
    parser.add_argument("--minutes", type=float, default=120.0, help="planned length of the run on this machine")
    parser.add_argument("--checkpoints", default="10,30,60,120", help="minutes at which to save a checkpoint")
    parser.add_argument("--out", default="data/bert", help="folder for the checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/resume.state.npz")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    command = "python -m nnutils.bert " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    began = time.perf_counter()
    tokenizer, blocks, heldout, counts = prepare(args.seed)
    vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    unigram_id = most_frequent_token(blocks)
    print(f"{len(blocks):,} blocks of {RECIPE_SIZE['max_len']} by source {counts}; prepared in "
          f"{time.perf_counter() - began:.0f} s", flush=True)
    state_path = os.path.join(args.out, "resume.state.npz")
    if args.resume:
        state = dict(np.load(state_path, allow_pickle=False))
        plan = json.loads(str(state["plan"]))
    else:
        log_every = 50
        seconds_per_step = _calibrate(blocks, args.seed)
        steps = int(args.minutes * 60 / seconds_per_step) // log_every * log_every
        marks = [float(m) for m in args.checkpoints.split(",")]
        plan = dict(steps=steps, log_every=log_every, seconds_per_step=round(seconds_per_step, 4),
                    checkpoints={str(int(round(steps * m / args.minutes / log_every)) * log_every): m for m in marks},
                    command=command, seconds_before=0.0)
        state = None
    print(f"plan: {plan}", flush=True)
    config.set_seed(args.seed)
    model = make_pretrainer(build_bert_encoder(len(vocab), dropout=0.0, **RECIPE_SIZE), plan["steps"],
                            RECIPE["peak_lr"])
    start = 0
    if state is not None:
        model({"token_ids": blocks[:2], "mask_positions": np.zeros((2, 1), np.int32)})
        model.set_weights([state[k] for k in sorted(k for k in state if k.startswith("weight_"))])
        model.optimizer.build(model.trainable_variables)
        for variable, key in zip(model.optimizer.variables, sorted(k for k in state if k.startswith("optimizer_"))):
            variable.assign(state[key])
        start = int(state["step"])
    run_began = time.perf_counter()

    def on_checkpoint(step, seconds):
        minutes = plan["checkpoints"][str(step)]
        report = heldout_report(model, heldout, len(vocab), unigram_id)
        provenance = dict(command=plan["command"], git_commit=_git_commit(), seed=args.seed, steps=step,
                          planned_steps=plan["steps"], planned_minutes=minutes, batch_size=RECIPE["batch_size"],
                          tokens=step * RECIPE["batch_size"] * RECIPE_SIZE["max_len"],
                          seconds=round(plan["seconds_before"] + time.perf_counter() - run_began, 1),
                          machine=config.machine(), versions=config.versions(), date=time.strftime("%Y-%m-%d"),
                          recipe={k: v for k, v in RECIPE.items()}, sizes=RECIPE_SIZE, blocks_by_source=counts,
                          heldout=report, resumed=plan["seconds_before"] > 0)
        name = f"bert_mlm_{int(minutes):03d}min"
        save_checkpoint(os.path.join(args.out, name + ".npz"), model, vocab, RECIPE_SIZE, provenance)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(provenance, f, indent=1)
        weights = {f"weight_{i:03d}": w for i, w in enumerate(model.get_weights())}
        optimizer = {f"optimizer_{i:03d}": ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)}
        np.savez(state_path, step=step, plan=json.dumps({**plan, "seconds_before": provenance["seconds"]}),
                 **weights, **optimizer)
        print(f"checkpoint {name}: step {step}, held-out {report['all']}", flush=True)

    pretrain(model, blocks, plan["steps"], RECIPE["batch_size"], seed=args.seed, start=start,
             log_every=plan["log_every"], checkpoints=[int(s) for s in plan["checkpoints"] if int(s) > start],
             on_checkpoint=on_checkpoint)


if __name__ == "__main__":
    main()

"""Evaluation metrics for generated text (notebook 07)."""


def bleu(hypotheses, references, lowercase=True):
    """Corpus BLEU (0-100) of detokenised sentences against one reference each, computed by sacrebleu (notebook 07).

    sacrebleu applies its standard '13a' tokenisation itself, so pass plain sentences, not token lists.
    ``lowercase=True`` scores lower-cased text, as the course's translation numbers are reported.
    Text split at punctuation the way ``data.normalize_sentence`` does it scores the same as the
    detokenised text (13a splits the same marks), so sacrebleu's "tokenised period" warning is silenced.
    """
    for argument, value in (("hypotheses", hypotheses), ("references", references)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
            raise TypeError(f"{argument} must be a list of strings (one sentence each)")
    if not hypotheses:
        raise ValueError("hypotheses must hold at least one sentence")
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references must be the same length, got {len(hypotheses)} and "
                         f"{len(references)}")
    if not isinstance(lowercase, bool):
        raise TypeError(f"lowercase must be True or False, got {lowercase!r}")
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=lowercase, force=True).score)

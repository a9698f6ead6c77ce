"""Evaluation metrics for generated text (notebook 07)."""


def _reference_sets(references):
    """Each entry of references as a tuple of strings: a string is one reference, a list several."""
    if not isinstance(references, (list, tuple)):
        raise TypeError("references must be a list with, per hypothesis, a string or a list of strings")
    sets = []
    for i, entry in enumerate(references):
        entry = (entry,) if isinstance(entry, str) else entry
        if not isinstance(entry, (list, tuple)) or not entry or not all(isinstance(s, str) for s in entry):
            raise TypeError(f"references[{i}] must be a string or a non-empty list of strings, got {entry!r}")
        sets.append(tuple(entry))
    return sets


def bleu(hypotheses, references, lowercase=True):
    """Corpus BLEU (0-100) of detokenised sentences against one or several references each, by sacrebleu (notebook 07).

    ``references[i]`` is a string (one reference) or a list of strings (all valid translations of
    sentence i; their number may differ between sentences). sacrebleu applies its standard '13a'
    tokenisation itself, so pass plain sentences, not token lists. ``lowercase=True`` scores
    lower-cased text, as the course's translation numbers are reported. Text split at punctuation the
    way ``data.normalize_sentence`` does it scores the same as the detokenised text (13a splits the
    same marks), so sacrebleu's "tokenised period" warning is silenced.
    """
    if not isinstance(hypotheses, (list, tuple)) or not all(isinstance(s, str) for s in hypotheses):
        raise TypeError("hypotheses must be a list of strings (one sentence each)")
    sets = _reference_sets(references)
    if not hypotheses:
        raise ValueError("hypotheses must hold at least one sentence")
    if len(hypotheses) != len(sets):
        raise ValueError(f"hypotheses and references must be the same length, got {len(hypotheses)} and "
                         f"{len(sets)}")
    if not isinstance(lowercase, bool):
        raise TypeError(f"lowercase must be True or False, got {lowercase!r}")
    import sacrebleu

    width = max(len(s) for s in sets)
    streams = [[s[k] if k < len(s) else None for s in sets] for k in range(width)]  # None: no k-th reference
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams, lowercase=lowercase, force=True).score)

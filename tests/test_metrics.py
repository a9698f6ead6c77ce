import logging

import pytest
import sacrebleu

from nnutils import data, metrics

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_bleu_is_sacrebleu_corpus_bleu_on_lower_cased_text():
    hyps = ["The cat sat on the mat .", "he is here", "I like green apples very much"]
    refs = ["the cat sat on a mat .", "He is here !", "I really like green apples"]
    expected = sacrebleu.corpus_bleu([h.lower() for h in hyps], [[r.lower() for r in refs]]).score
    assert metrics.bleu(hyps, refs) == pytest.approx(expected)
    assert metrics.bleu(hyps, refs, lowercase=False) < metrics.bleu(hyps, refs)  # "He" != "he"


def test_bleu_extremes():
    sentences = ["tom is reading a book in the garden", "we should go home now before it rains"]
    assert metrics.bleu(sentences, sentences) == pytest.approx(100.0)
    assert metrics.bleu(["zzz qqq xxx yyy"] * 2, sentences) == pytest.approx(0.0)


@pytest.mark.parametrize("args, error, word", [
    ((["a b"], ["a b", "c"]), ValueError, "same length"),
    (([], []), ValueError, "hypotheses"),
    (("a b", ["a b"]), TypeError, "hypotheses"),
    ((["a b"], [[]]), TypeError, "references"),
    ((["a b"], [["a", 3]]), TypeError, "references"),
    ((["a b"], "a b"), TypeError, "references"),
])
def test_bleu_bad_input(args, error, word):
    with pytest.raises(error, match=word):
        metrics.bleu(*args)


def test_multi_reference_bleu_is_sacrebleu_with_variable_reference_counts():
    hyps = ["the cat sat on the mat .", "he is here", "i like green apples very much"]
    refs = [["a cat sat on the mat .", "the cat sat on the mat ."], "he is here !",
            ["i like green apples", "i really like green apples", "i like green apples very much indeed"]]
    streams = [["a cat sat on the mat .", "he is here !", "i like green apples"],
               ["the cat sat on the mat .", None, "i really like green apples"],
               [None, None, "i like green apples very much indeed"]]
    assert metrics.bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score)
    single = metrics.bleu(hyps, [r if isinstance(r, str) else r[0] for r in refs])
    assert metrics.bleu(hyps, refs) > single  # a second valid translation can only add matches here
    assert metrics.bleu(["tom is reading a book"], [["mary is here", "tom is reading a book"]]) == pytest.approx(100.0)


def test_bleu_lowercase_must_be_bool():
    with pytest.raises(TypeError, match="lowercase"):
        metrics.bleu(["a"], ["a"], lowercase="yes")


def test_bleu_scores_course_tokenised_text_like_detokenised_text_and_stays_quiet(caplog):
    detok_hyp = ["I don't like movies.", "Where is the bathroom?", "Tom, listen!"] * 100
    detok_ref = ["I don't like films.", "Where's the bathroom?", "Tom, listen to me!"] * 100
    tok = lambda lines: [" ".join(data.normalize_sentence(s).split()) for s in lines]
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        tokenised = metrics.bleu(tok(detok_hyp), tok(detok_ref))
    assert tokenised == pytest.approx(metrics.bleu(detok_hyp, detok_ref), abs=1e-9)
    assert not [r for r in caplog.records if "tokenized" in r.getMessage()]

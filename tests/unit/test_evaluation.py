"""Tests for utils.evaluation against worked examples of the official scorers' rules (SQuAD v1.1
evaluate script, https://rajpurkar.github.io/SQuAD-explorer/; TAT-QA, https://github.com/NExTplusplus/TAT-QA)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils import evaluation as ev

AWS_GENERATED = "The cat sits on the mat in the sun"
AWS_REFERENCE = "The cat sits on the soft mat under the warm sun"


# ---------------------------------------------------------------------------- SQuAD


def test_squad_normalize_follows_v11():
    assert ev.squad_normalize("The  Cat, sat!") == "cat sat"
    assert ev.squad_normalize("1,000.50") == "100050"  # punctuation deleted, not spaced
    assert ev.squad_normalize("-22.12%") == "2212"  # sign lost
    assert ev.squad_normalize("an apple a day") == "apple day"


def test_squad_aws_pair_is_71_43():
    em, f1 = ev.squad_scores(AWS_GENERATED, AWS_REFERENCE)
    assert em == 0.0
    assert round(f1 * 100, 2) == 71.43  # 5/6, 5/8
    assert f1 == pytest.approx(2 * (5 / 6) * (5 / 8) / (5 / 6 + 5 / 8))


def test_squad_uses_multisets():
    # "cat cat" vs "cat": Counter intersection 1 → P=1/2, R=1
    assert ev.squad_f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_squad_empty_cases():
    assert ev.squad_exact_match("", "") == 1.0
    assert ev.squad_f1("", "") == 0.0  # v1.1: both empty → F1 0
    assert ev.squad_f1("x", "") == 0.0
    assert ev.squad_f1("", "x") == 0.0
    assert ev.squad_f1("The", "a") == 0.0  # articles only normalise to empty


def test_squad_alternatives_take_max_independently():
    em, f1 = ev.squad_scores("beatles", ["beatles band", "The Beatles"])
    assert (em, f1) == (1.0, 1.0)
    em, f1 = ev.squad_scores("Paris France", ["Paris", "Lyon"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        ev.squad_scores("x", [])


def test_squad_corpus_counts_missing_as_zero():
    scores = ev.squad_corpus_scores({"q1": "Paris"}, {"q1": ["paris"], "q2": "Rome"})
    assert scores == {"em": 50.0, "f1": 50.0, "n": 2}


# ---------------------------------------------------------------------------- TAT-QA normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18.3%", "0.183"),
        ("(134.12)", "-134.12"),
        ("$1,073.3", "1073.3"),
        ("1.50", "1.5"),
        ("2019", "2019"),
        ("2019.0", "2019.0"),
        ("18.3 %", "18.3"),
        ("state-of-the-art", "stateoftheart"),
        ("1.2 million", "1.2 million"),  # word scales are not applied per token
        ("(1,234.5)", "1234.5"),  # regex accident: comma breaks the negative rule
        ("(5.00%)", "0.05"),
        ("1e5", "1"),
        ("The Cat’s hat", "cat’s hat"),  # U+2019 is not ASCII punctuation
        ("", ""),
    ],
)
def test_tatqa_normalize_table(text, expected):
    assert ev.tatqa_normalize(text) == expected


def test_tatqa_parse_number_accidents():
    assert ev.tatqa_parse_number(".5") is None
    assert ev.tatqa_parse_number("inf") is None
    assert ev.tatqa_parse_number("1e5") == 1
    assert ev.tatqa_parse_number("1.2 million") == 1200000.0
    assert ev.tatqa_is_number("1.2 million")
    assert not ev.tatqa_is_number("2019 revenue")
    assert not ev.tatqa_is_number("nan")


def test_tatqa_splits_on_single_spaces_only():
    # a tab stays inside the token; the articles rule then frees the word after it
    assert ev.tatqa_normalize("x\ty") == "x y"
    assert ev.tatqa_normalize("a  b") == "b"


# ---------------------------------------------------------------------------- TAT-QA get_metrics


def test_tatqa_aws_pair_is_71_00():
    em, f1 = ev.tatqa_em_f1(AWS_GENERATED, AWS_REFERENCE)
    assert em == 0.0
    assert f1 == 0.71  # sets after normalisation: 5/6, 5/8 → 0.714 → rounded


def test_tatqa_uses_sets():
    # "cat cat" vs "cat": sets collapse → identical bags
    assert ev.tatqa_em_f1("cat cat", "cat") == (0.0, 1.0)


def test_tatqa_empty_cases():
    assert ev.tatqa_em_f1("", "") == (1.0, 1.0)
    assert ev.tatqa_em_f1("x", "") == (0.0, 0.0)
    assert ev.tatqa_em_f1([], ["x"]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        ev.tatqa_em_f1([], [])


def test_tatqa_multispan_hungarian_vs_joined():
    # string level: spans aligned, the missing gold span scores 0 → 2/3
    assert ev.tatqa_em_f1(["china", "singapore"], ["singapore", "china", "usa"]) == (0.0, 0.67)
    # question level sorts and joins into one bag → 0.8 (official test)
    qa = {"answer_type": "multi-span", "answer": ["singapore", "china", "usa"], "scale": ""}
    assert ev.tatqa_question_score(qa, ["china", "singapore"], "") == (0.0, 0.8)


def test_tatqa_em_needs_equal_span_counts():
    assert ev.tatqa_em_f1(["a b", "a b"], ["a b"])[0] == 0.0


# ---------------------------------------------------------------------------- TAT-QA question level

# The official tatqa_metric_test.py expectations (NExTplusplus/TAT-QA, MIT), as data.
OFFICIAL_CASES = [
    ({"answer_type": "span", "answer": ["here is, a test"], "scale": ""}, "here is, a test", "", 1, 1),
    ({"answer_type": "span", "answer": ["1234.1"], "scale": "million"}, "1234.1", "thousand", 0, 0),
    ({"answer_type": "span", "answer": ["1234.1"], "scale": "million"}, "123", "thousand", 0, 0),
    ({"answer_type": "span", "answer": ["12314.1"], "scale": "million"}, "12314.1", "million", 1, 1),
    ({"answer_type": "multi-span", "answer": ["singapore", "china", "usa"], "scale": ""},
     ["singapore", "china", "usa"], "", 1, 1),
    ({"answer_type": "multi-span", "answer": ["singapore", "china", "usa"], "scale": ""},
     ["china", "singapore", "usa"], "", 1, 1),
    ({"answer_type": "multi-span", "answer": ["singapore", "china", "usa"], "scale": ""},
     ["china", "singapore"], "", 0, 0.8),
    ({"answer_type": "arithmetic", "answer": 123.2, "scale": "million"}, 123.2, "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 123.2, "scale": "million"}, 123200000, "", 1, 1),
    ({"answer_type": "arithmetic", "answer": 123.2, "scale": "million"}, 123.2, "thousand", 0, 0),
    ({"answer_type": "arithmetic", "answer": 123.2, "scale": ""}, 123.2, "", 1, 1),
    ({"answer_type": "arithmetic", "answer": 123.22, "scale": ""}, 123.2, "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 123.2, "scale": ""}, 123.2010, "", 1, 1),
    ({"answer_type": "count", "answer": 5, "scale": ""}, 5, "", 1, 1),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "percent"}, 0.2212, "", 1, 1),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "percent"}, 0.22121, "percent", 0, 0),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "percent"}, 22.1231, "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "percent"}, 22.1231, "percent", 1, 1),
    ({"answer_type": "span", "answer": [22.12], "scale": "million"}, "22.12", "million", 1, 1),
    ({"answer_type": "span", "answer": [22.12], "scale": "million"}, "22.12", "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "million"}, "test", "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "million"}, ["1", "2"], "", 0, 0),
    ({"answer_type": "span", "answer": [22.12], "scale": "percent"}, "-22.12", "", 0, 0),
    ({"answer_type": "span", "answer": [22.12], "scale": "percent"}, "22.12%", "", 1, 1),
    ({"answer_type": "span", "answer": [22.12], "scale": ""}, "22.12%", "", 0, 0),
    ({"answer_type": "span", "answer": [22.12], "scale": "million"}, "$22.12", "", 0, 0),
    ({"answer_type": "arithmetic", "answer": 22.12, "scale": "million"}, "$22.12", "", 0, 0),
    ({"answer_type": "span", "answer": ["22.12"], "scale": "percent"}, ["-22.12"], "", 0, 0),
    ({"answer_type": "span", "answer": ["$1.0 million"], "scale": ""}, ["['$1.0 million']"], "", 1, 1),
    ({"answer_type": "span", "answer": [22.12], "scale": ""}, "$22.12", "", 1, 1),
    ({"answer_type": "span", "answer": [22.12], "scale": "percent"}, "22.12%", "percent", 1, 1),
    ({"answer_type": "count", "answer": 5, "scale": ""}, "abcd 5", "1", 0, 0),
    ({"answer_type": "multi-span", "answer": ["$23,234", "$234.12"], "scale": ""},
     ["234.12", "23,234"], "", 1, 1),
    ({"answer_type": "multi-span", "answer": ["$35,120", "$24,159"], "scale": ""},
     ["$24,159", "$35,120"], "", 1, 1),
    ({"answer_type": "arithmetic", "answer": ["34.12"], "scale": "percent"}, ["0.3412"], "", 1, 1),
    ({"answer_type": "span", "answer": [
        "wages and salaries, social security costs, pension and other costs and share-based "
        "payments, see note 10 of the Financial Statements"], "scale": ""},
     ["wages and salaries, social security costs, pension and other costs and share - based "
      "payments,"], "", 0, 0.67),
    ({"answer_type": "arithmetic", "answer": ["34.12%"], "scale": "percent"}, ["0.3412"], "", 1, 1),
    ({"answer_type": "arithmetic", "answer": ["34.12%"], "scale": ""}, ["0.3412"], "", 1, 1),
]


@pytest.mark.parametrize(("gold", "pred", "pred_scale", "em", "f1"), OFFICIAL_CASES)
def test_tatqa_official_cases(gold, pred, pred_scale, em, f1):
    assert ev.tatqa_question_score(gold, pred, pred_scale) == (em, f1)


def test_tatqa_q18_verbose_answer_scores_zero():
    sentence = "The total sales in 2019 were $1,496.5 million."
    for qa in (
        {"answer_type": "span", "answer": ["1,496.5"], "scale": "million"},
        {"answer_type": "arithmetic", "answer": 1496.5, "scale": "million"},
    ):
        assert ev.tatqa_question_score(qa, sentence, "") == (0.0, 0.0)
        # the extracted (answer, scale) pair scores 1
        assert ev.tatqa_question_score(qa, "1,496.5", "million") == (1.0, 1.0)


@pytest.mark.parametrize("falsy", [None, "", [], 0, 0.0])
def test_tatqa_falsy_prediction_scores_zero(falsy):
    qa = {"answer_type": "arithmetic", "answer": 0, "scale": ""}
    assert ev.tatqa_question_score(qa, falsy, "") == (0.0, 0.0)


def test_tatqa_rounding_before_scaling():
    qa = {"answer_type": "arithmetic", "answer": 123.2, "scale": ""}
    assert ev.tatqa_question_score(qa, "123.201") == (1.0, 1.0)


def test_tatqa_span_f1_not_forced_to_em():
    qa = {"answer_type": "span", "answer": ["net income rose"], "scale": ""}
    assert ev.tatqa_question_score(qa, "net income") == (0.0, 0.8)


def test_tatqa_corpus_scores():
    gold = [{"questions": [
        {"uid": "q1", "answer_type": "arithmetic", "answer": 22.12, "scale": "percent"},
        {"uid": "q2", "answer_type": "span", "answer": ["net income rose"], "scale": ""},
        {"uid": "q3", "answer_type": "count", "answer": "4", "scale": ""},
        {"uid": "q4", "answer_type": "span", "answer": ["x"], "scale": ""},
    ]}]
    preds = {"q1": [22.12, "percent"], "q2": ["net income", ""], "q3": ["5", ""]}
    scores = ev.tatqa_corpus_scores(gold, preds)
    assert scores["n"] == 4
    assert scores["em"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx((1 + 0.8 + 0 + 0) / 4 * 100)
    assert scores["scale"] == pytest.approx(75.0)  # q4 is missing: no scale credit


def test_tatqa_reference_text():
    qa = {"answer_type": "multi-span", "answer": ["b", "a"], "scale": "million"}
    assert ev.tatqa_reference_text(qa) == "b a million"
    assert ev.tatqa_reference_text({"answer": 4.5, "scale": ""}) == "4.5"


# ---------------------------------------------------------------------------- AWS blog


def test_aws_blog_worked_example():
    result = ev.aws_blog_f1(AWS_GENERATED, AWS_REFERENCE)
    assert (result.matches, result.n_generated, result.n_reference) == (6, 9, 11)
    assert result.precision == pytest.approx(6 / 9)
    assert result.recall == pytest.approx(6 / 11)
    assert round(result.f1 * 100, 2) == 60.00


def test_aws_blog_is_not_a_proper_f1():
    assert round(ev.aws_blog_f1("the cat sat on the mat", "the cat sat on the mat").f1 * 100, 1) == 83.3
    assert round(ev.aws_blog_f1(AWS_REFERENCE, AWS_REFERENCE).f1 * 100, 1) == 81.8
    assert ev.aws_blog_f1("", "").f1 == 0.0


# ---------------------------------------------------------------------------- token statistics


def test_token_count_stats():
    stats = ev.token_count_stats([1, 2, 3, 4])
    assert stats["median"] == 2.5
    assert stats["mean"] == 2.5
    assert stats["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))  # pandas .std()
    assert stats["std_population"] == pytest.approx(np.std([1, 2, 3, 4]))
    assert (stats["min"], stats["max"], stats["n"]) == (1, 4, 4)
    single = ev.token_count_stats([7])
    assert math.isnan(single["std"]) and single["std_population"] == 0.0
    with pytest.raises(ValueError):
        ev.token_count_stats([])


def test_percent_reduction():
    assert ev.percent_reduction(200, 150) == 25.0
    assert ev.percent_reduction(100, 120) == -20.0
    with pytest.raises(ValueError):
        ev.percent_reduction(0, 5)


# ---------------------------------------------------------------------------- judge statistics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning... Final verdict: [[A]]", "A"),
        ("[[B]]", "B"),
        ("It is a tie. [[C]]", "tie"),
        ("[[ a ]]", "A"),
        ("I cannot decide.", None),
        ("Output [[A]] if A is better, [[B]] if B is better. [[B]]", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(text, expected):
    assert ev.parse_verdict(text) == expected


def test_unswap_and_combine():
    assert [ev.unswap(v) for v in ("A", "B", "tie")] == ["B", "A", "tie"]
    # swapped call says "B" = the original A → consistent win for A
    assert ev.combine_swapped("A", "B") == "A"
    assert ev.combine_swapped("B", "A") == "B"
    assert ev.combine_swapped("A", "A") == "tie"  # inconsistent → tie
    assert ev.combine_swapped("A", "tie") == "tie"  # (win, tie) → tie
    assert ev.combine_swapped("tie", "tie") == "tie"
    with pytest.raises(ValueError):
        ev.unswap("C")


def test_win_rates():
    verdicts = ["A", "A", "A", "B", "tie", None]
    assert ev.win_rate_excluding_ties(verdicts, "A") == 75.0
    assert ev.win_rate_excluding_ties(verdicts, "B") == 25.0
    assert ev.tie_rate(verdicts) == 20.0
    assert ev.win_rate_ties_half(verdicts, "A") == pytest.approx(70.0)
    assert ev.win_rate_excluding_ties(["tie", "tie"]) is None  # undefined, never 0 or 50
    assert ev.tie_rate([]) is None


def test_wilson_interval():
    low, high = ev.wilson_interval(15, 20)
    assert (round(low, 3), round(high, 3)) == (0.531, 0.888)
    from scipy.stats import binomtest

    ci = binomtest(7, 30).proportion_ci(method="wilson")
    assert ev.wilson_interval(7, 30) == pytest.approx((ci.low, ci.high))
    assert ev.wilson_interval(0, 5)[0] == 0.0
    assert ev.wilson_interval(5, 5)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ev.wilson_interval(0, 0)


def test_bootstrap_ci_is_deterministic_and_paired():
    values = [0.1, 0.5, 0.9, 0.7, 0.3, 0.8, 0.6, 0.4]
    first = ev.bootstrap_ci(values, n_resamples=2000, seed=1)
    assert first == ev.bootstrap_ci(values, n_resamples=2000, seed=1)
    assert first != ev.bootstrap_ci(values, n_resamples=2000, seed=2)
    assert first[0] < np.mean(values) < first[1]
    shifted = [v - 0.1 for v in values]
    low, high = ev.bootstrap_ci(values, n_resamples=2000, paired_with=shifted)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)  # pairing removes noise
    with pytest.raises(ValueError):
        ev.bootstrap_ci(values, paired_with=[1.0])


def test_agreement_and_kappa():
    a = ["A", "B", "tie", "A", "B", "A"]
    b = ["A", "B", "A", "B", "B", "tie"]
    assert ev.percent_agreement(a, b) == pytest.approx(50.0)
    assert ev.percent_agreement(a, b, exclude_ties=True) == pytest.approx(75.0)
    from collections import Counter

    p_o = 3 / 6
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in ca) / 36
    assert ev.cohen_kappa(a, b) == pytest.approx((p_o - p_e) / (1 - p_e))
    assert ev.cohen_kappa(["A", "B"], ["A", "B"]) == 1.0
    assert math.isnan(ev.cohen_kappa(["A", "A"], ["A", "A"]))
    assert ev.kappa_label(0.65) == "substantial"
    with pytest.raises(ValueError):
        ev.percent_agreement(["A"], [])


def test_sign_test():
    assert ev.sign_test_pvalue(10, 0) == pytest.approx(2 / 1024)

"""Pairwise judging (both orders, combined), parse failures, judge fallback, and the human-label panel."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from utils import engine, judging
from utils.sandbox.messages import Prompt
from utils.sandbox.standins import ModelBehaviour, generate

REFERENCE = "Provisioned Throughput is billed hourly per model unit."
GOOD = "It is billed hourly for each model unit."
BAD = "You pay per request and nothing else, with a free tier for small accounts."


def answers() -> pd.DataFrame:
    """Two arms on three questions: q0 and q1 strict quality gaps (ft better, then base better), q2 identical."""
    rows = []
    for qid, ft, base in (("q0", GOOD, BAD), ("q1", BAD, GOOD), ("q2", GOOD, GOOD)):
        for arm, text in (("ft_n_3n", ft), ("base", base)):
            rows.append({"qid": qid, "arm": arm, "question": "How is Provisioned Throughput billed?",
                         "reference": REFERENCE, "prediction": text})
    return pd.DataFrame(rows)


class StandInRuntime:
    """A bedrock-runtime stand-in answering Converse with the sandbox's judge stand-ins."""

    def __init__(self, refuse: tuple[str, ...] = (), replies: dict[str, str] | None = None):
        self.refuse, self.replies, self.calls = refuse, replies or {}, []

    def converse(self, modelId, system, messages, inferenceConfig):  # noqa: N803 - boto3 names
        self.calls.append((modelId, inferenceConfig))
        if modelId in self.refuse:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Invocation of model ID "
                               f"{modelId} isn't supported."}}, "Converse")
        text = messages[0]["content"][0]["text"]
        if text in self.replies:
            out = self.replies[text]
        else:
            base_id = modelId.split(".", 1)[1] if modelId.startswith(("us.", "global.")) else modelId
            out = generate(Prompt(system[0]["text"], [("user", text)], 512), ModelBehaviour(base_id)).text
        return {"output": {"message": {"content": [{"text": out}]}}, "usage": {"outputTokens": len(out.split())}}


CLAUDE = judging.judge_spec("claude-sonnet-4-6")
LLAMA = judging.judge_spec("llama3-3-70b")


def run(runtime, tmp_path, judges=(CLAUDE, LLAMA)):
    items = judging.judge_items(answers(), [("ft_n_3n", "base")], list(judges))
    rows = engine.run_calls(items, judging.judge_call(runtime, list(judges)), tmp_path / "judge.jsonl", progress=False)
    return items, rows


def test_both_orders_are_judged_and_combined_under_a_biased_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS", "1")
    items, rows = run(StandInRuntime(), tmp_path)
    assert len(items) == 2 * 3 * 2 and {i["order"] for i in items} == {"ab", "ba"}
    verdicts = judging.combined_verdicts(rows).set_index(["judge", "qid"])
    for judge in (CLAUDE.name, LLAMA.name):
        assert verdicts.loc[(judge, "q0"), "combined"] == "A"  # ft wins in both orders
        assert verdicts.loc[(judge, "q1"), "combined"] == "B"
        # Identical answers: the biased judge picks a position, so the two orders disagree -> tie.
        assert verdicts.loc[(judge, "q2"), "position_disagree"]
        assert verdicts.loc[(judge, "q2"), "combined"] == "tie"
    claude_q2 = verdicts.loc[(CLAUDE.name, "q2")]
    llama_q2 = verdicts.loc[(LLAMA.name, "q2")]
    assert (claude_q2["v_ab"], claude_q2["v_ba"]) == ("A", "A")  # favours the first position
    assert (llama_q2["v_ab"], llama_q2["v_ba"]) == ("B", "B")  # favours the second
    summary = {row["judge"]: row for row in judging.summarise(judging.combined_verdicts(rows))}
    for row in summary.values():
        assert row["win_rate"] == 50.0 and row["n"] == 3 and row["parse_failures"] == 0
        assert row["tie_rate"] == pytest.approx(100 / 3) and row["position_disagreement"] == pytest.approx(100 / 3)
        assert row["wilson_low"] < 50 < row["wilson_high"]
    assert set(judging.judge_metrics(list(summary.values()))[0]) == set(judging.JUDGE_METRIC_KEYS)


def test_without_the_bias_the_orders_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SANDBOX_JUDGE_POSITION_BIAS", "0")
    _, rows = run(StandInRuntime(), tmp_path, judges=(CLAUDE,))
    verdicts = judging.combined_verdicts(rows)
    assert not verdicts["position_disagree"].any()
    assert verdicts.set_index("qid").loc["q2", "v_ab"] == "tie"


def test_parse_failures_are_counted_not_dropped(tmp_path):
    items = judging.judge_items(answers(), [("ft_n_3n", "base")], [CLAUDE])
    garbled = {items[0]["prompt"]: "Both answers have merit.", items[3]["prompt"]: "A is [[A]] but [[B]] too"}
    rows = engine.run_calls(items, judging.judge_call(StandInRuntime(replies=garbled), [CLAUDE]),
                            tmp_path / "judge.jsonl", progress=False)
    assert sum(r["verdict"] is None for r in rows) == 2 and not any(r.get("error") for r in rows)
    [row] = judging.summarise(judging.combined_verdicts(rows))
    assert row["parse_failures"] == 2 and row["n"] == 1  # two questions lost one order each


def test_validation_exception_falls_back_to_the_next_model_id_and_is_reported(tmp_path):
    assert CLAUDE.model_ids[:2] == ("us.anthropic.claude-sonnet-4-6", "global.anthropic.claude-sonnet-4-6")
    runtime = StandInRuntime(refuse=(CLAUDE.model_ids[0],))
    _, rows = run(runtime, tmp_path, judges=(CLAUDE,))
    assert all(r["model_id"] == CLAUDE.model_ids[1] and r["verdict"] for r in rows)
    report = judging.fallback_report(rows)
    assert list(report["used"]) == [CLAUDE.model_ids[1]] and "isn't supported" in report["refused"].iloc[0]
    # Only temperature is sent (Claude Sonnet 4.6 refuses temperature with topP).
    assert all(config == {"maxTokens": judging.JUDGE_MAX_TOKENS, "temperature": 0.0} for _, config in runtime.calls)


def test_every_id_refused_is_an_error_row_retried_next_run(tmp_path):
    items, rows = run(StandInRuntime(refuse=CLAUDE.model_ids), tmp_path, judges=(CLAUDE,))
    assert all("every model ID was refused" in r["error"] for r in rows)
    [row] = judging.summarise(judging.combined_verdicts(rows, items))
    assert row["n"] == 0 and row["errors"] == 6 and row["win_rate"] is None


def test_other_errors_are_not_a_fallback(tmp_path):
    class Throttled(StandInRuntime):
        def converse(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no access"}}, "Converse")

    _, rows = run(Throttled(), tmp_path, judges=(CLAUDE,))
    assert all(r["error"].startswith("ClientError") for r in rows)


# ------------------------------------------------------------------------------ human check


def test_panel_saves_each_label_and_a_new_kernel_resumes(tmp_path):
    pairs = judging.human_pairs(answers(), "ft_n_3n", "base", n=20, seed=1)
    assert len(pairs) == 3 and {p["qid"] for p in pairs} == {"q0", "q1", "q2"}
    path = tmp_path / "labels.jsonl"
    panel = judging.label_panel(pairs, judging.LabelStore(path))
    a_button, _, tie_button = panel.children[1].children
    a_button.click()
    tie_button.click()
    assert len(path.read_text().splitlines()) == 2  # written as given
    # "Restart the kernel": a fresh store from the same file resumes at the third pair.
    store = judging.LabelStore(path)
    assert judging.next_unlabelled(pairs, store) == 2
    resumed = judging.label_panel(pairs, store)
    assert resumed.children[2].children[0].value == 2 and "2 / 3" in resumed.children[2].children[1].value
    assert html_question(resumed) == pairs[2]["question"]
    resumed.children[1].children[1].click()
    assert [judging.LabelStore(path).label_for(p) for p in pairs] == ["A", "tie", "B"]
    assert all(b.disabled for b in resumed.children[1].children)


def html_question(panel) -> str:
    return panel.children[0].value.split("</b> ", 1)[1].split("</p>", 1)[0]


def test_a_label_counts_only_for_the_texts_it_was_given_for(tmp_path):
    pairs = judging.human_pairs(answers(), "ft_n_3n", "base", n=2)
    store = judging.LabelStore(tmp_path / "labels.jsonl")
    store.add(pairs[0], "A")
    changed = {**pairs[0], "answer_A": "a different answer"}
    assert store.label_for(pairs[0]) == "A" and store.label_for(changed) is None
    assert store.stale([changed]) == [pairs[0]["pair_id"]]
    with pytest.raises(ValueError, match="label must be one of"):
        store.add(pairs[0], "C")


def test_human_agreement_maps_the_shown_sides_back_to_the_arms(tmp_path):
    verdicts = pd.DataFrame([
        {"judge": "J", "a": "ft_n_3n", "b": "base", "qid": q, "combined": c} for q, c in (("q0", "A"), ("q1", "B"), ("q2", "tie"))
    ])
    pairs = judging.human_pairs(answers(), "ft_n_3n", "base", n=3, seed=3)
    store = judging.LabelStore(tmp_path / "labels.jsonl")
    truth = {"q0": "ft_n_3n", "q1": "base", "q2": None}  # the arm the human prefers
    for p in pairs:
        winner = truth[p["qid"]]
        store.add(p, "tie" if winner is None else ("A" if p["shown_as_A"] == winner else "B"))
    [row] = judging.human_agreement(pairs, store, verdicts)
    assert row["percent_agreement"] == 100.0 and row["kappa"] == 1.0 and row["kappa_label"] == "almost perfect"
    assert row["n"] == 3 and row["percent_agreement_no_ties"] == 100.0
    assert judging.human_metrics([row]) == [{"judge": "J", "percent_agreement": 100.0, "kappa": 1.0, "n": 3}]


def test_shipped_labels_file_is_well_formed():
    from utils.state import REPO_ROOT

    lines = (REPO_ROOT / "data" / "human_labels_sandbox.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) >= 20 and all(r["label"] in judging.HUMAN_LABELS and r["answer_A"] and r["answer_B"] for r in rows)
    assert len({r["pair_id"] for r in rows}) == len(rows)


class DeniedRuntime(StandInRuntime):
    """A fresh account: Anthropic's use-case form not submitted (Bedrock's AccessDeniedException message)."""

    def converse(self, modelId, system, messages, inferenceConfig):  # noqa: N803 - boto3 names
        if "anthropic" in modelId:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "Model use case details have "
                               "not been submitted for this account. Fill out the Anthropic use case details form "
                               "before using the model."}}, "Converse")
        return super().converse(modelId, system, messages, inferenceConfig)


def test_a_judge_that_never_answers_gets_one_message_with_its_fix_and_06_is_not_ok(tmp_path):
    items, rows = run(DeniedRuntime(), tmp_path)
    problems = judging.judge_problems(rows, items, [CLAUDE, LLAMA])
    assert [(p["judge"], p["failed"], p["calls"]) for p in problems] == [(CLAUDE.name, 6, 6)]  # Llama answered
    assert "AccessDeniedException" in problems[0]["line"] and "use-case" in problems[0]["line"]
    assert "none answered" in problems[0]["line"] and problems[0]["line"].startswith(f"✗ judge {CLAUDE.name}:")
    step = judging.judges_step(problems, asked=True)
    assert step["asked"] and not step["done"] and CLAUDE.name in step["detail"]
    assert judging.judges_step(judging.judge_problems(*reversed(run(StandInRuntime(), tmp_path / "ok")), [LLAMA]),
                               asked=True)["done"]


def test_the_judge_is_called_first_with_the_id_01_resolved_for_its_role():
    resolved = {"student": "amazon.nova-lite-v1:0", "judge_1": "global.anthropic.claude-sonnet-4-6"}  # 01's keys
    assert judging.judge_spec("claude-sonnet-4-6", resolved).model_ids[0] == "global.anthropic.claude-sonnet-4-6"
    assert judging.judge_spec("llama3-3-70b", resolved).model_ids == LLAMA.model_ids  # another model's ID is not used


def test_an_arm_whose_calls_are_denied_is_named_with_its_providers_fix():
    from utils import evalrun

    items = [{"id": f"i{n}", "arm": arm, "model_id": model_id} for n, (arm, model_id) in enumerate(
        [("comparison", "us.anthropic.claude-sonnet-4-6")] * 2 + [("base", "amazon.nova-lite-v1:0")])]
    denied = "ClientError: An error occurred (AccessDeniedException) when calling the Converse operation: " \
             "Model use case details have not been submitted for this account."
    rows = [{"id": "i0", "error": denied}, {"id": "i1", "error": denied}, {"id": "i2", "text": "ok"}]
    [problem] = evalrun.call_problems(rows, items)
    assert (problem["name"], problem["failed"], problem["calls"]) == ("comparison", 2, 2)
    assert problem["line"].startswith("✗ arm comparison: 2 of 2 calls failed (none answered)") and "use-case" in problem["line"]

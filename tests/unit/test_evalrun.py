"""06's predictions helpers: tasks, scoring on both datasets, the per-arm tables."""

from __future__ import annotations

import json

import pandas as pd

from utils import datasets, evalrun
from utils.state import REPO_ROOT

CONTEXTS = json.loads((REPO_ROOT / "data" / "tatqa_sample.json").read_text())


def test_tatqa_prediction_is_scored_from_its_answer_and_scale_lines():
    [task] = evalrun.tatqa_tasks(CONTEXTS, 1, shots=0)
    assert task["gold"] == {"answer": ["1,452.4"], "answer_type": "span", "scale": "million"}
    rows = [{**task, "arm": arm, "mode": "zero_shot", "prediction": text, "output_tokens": 5}
            for arm, text in (("comparison", "Answer: 1,452.4\nScale: million"),
                              ("wrong_scale", "Answer: 1,452.4\nScale: thousand"),
                              ("verbose", "Broadband revenue in 2020 was $1,452.4 million."))]
    scored = evalrun.score(rows).set_index("arm")
    assert scored.loc["comparison", "em"] == 1.0 and scored.loc["comparison", "pred_scale"] == "million"
    assert scored.loc["wrong_scale", "f1"] == 0.0  # the scale rescales the number: a mismatch scores 0
    assert scored.loc["verbose", "f1"] == 0.0 and scored.loc["verbose", "string_f1"] > 0  # official vs string F1


def test_docs_tasks_keep_test_questions_out_of_the_examples_and_ids_follow_the_text():
    rows = datasets.load_qa_csv().to_dict("records")
    tasks = evalrun.docs_tasks(rows[:2], rows[:5], shots=3)
    few = tasks[0]["prompts"]["few_shot"]
    assert rows[1]["question"] not in few.split("Question: ")[0]  # a test question is never an example
    assert few.index("</documents>") < few.index("Example question") < few.rindex("Question: ")
    assert evalrun.docs_tasks(rows[1:2], [], 0)[0]["qid"] == tasks[1]["qid"]  # same question, same id


def test_scored_docs_rows_carry_squad_and_blog_f1():
    rows = [{"dataset": evalrun.DOCS, "qid": "q", "arm": "base", "mode": "zero_shot", "question": "?",
             "reference": "The cat sits on the soft mat under the warm sun",
             "prediction": "The cat sits on the mat in the sun", "output_tokens": 9}]
    [row] = evalrun.score(rows).to_dict("records")
    assert round(100 * row["f1"], 2) == 71.43 and round(100 * row["aws_blog_f1"], 2) == 60.0


def test_f1_metrics_use_the_fixed_keys():
    rows = [{"dataset": d, "mode": "zero_shot", "qid": f"q{i}", "arm": a, "f1": 0.5}
            for d in (evalrun.DOCS, evalrun.TATQA) for i in range(3) for a in ("base", "ft_n")]
    metrics = evalrun.f1_metrics(pd.DataFrame(rows))
    assert len(metrics) == 4 and all(set(m) == {"arm", "dataset", "f1", "ci_low", "ci_high", "n"} for m in metrics)
    assert all(m["f1"] == 50.0 and m["n"] == 3 for m in metrics)



def test_serving_targets_per_arm_mapping_then_single_deployment():
    values = {"serving": {"ft_n": "arn:ft_n", "ft_n_3n": {"arn": "arn:syn"}, "ft_4n": {}},
              "endpoint_arn": "arn:single", "deploy_arm": "ft_n_3n"}
    assert evalrun.serving_targets(values, "nova", "pro") == {"base": "nova", "ft_n": "arn:ft_n",
                                                              "ft_n_3n": "arn:syn", "comparison": "pro"}
    single = {"endpoint_arn": "arn:single", "deploy_arm": "ft_n"}
    assert evalrun.serving_targets(single, "nova") == {"base": "nova", "ft_n": "arn:single"}
    arms = {"ft_4n": {"status": "Completed"}, "ft_n": {"status": "Completed"}, "base": {"status": "NoJob"}}
    assert evalrun.missing_arms(evalrun.serving_targets(single, "nova"), arms) == ["ft_4n"]


def test_token_reduction_reads_more_tokens_when_negative():
    assert evalrun.reduction_text(35.0) == "35.0 % fewer tokens"
    assert evalrun.reduction_text(-12.0) == "12.0 % more tokens"


def test_f1_table_paired_difference():
    rows = [{"dataset": "aws_docs_qa", "mode": "zero_shot", "qid": f"q{i}", "arm": arm, "f1": f1}
            for i in range(10) for arm, f1 in (("base", 0.5), ("ft_n", 0.5 + (0.2 if i % 2 else 0.0)))]
    table = evalrun.f1_table(pd.DataFrame(rows), "aws_docs_qa").set_index("arm")
    assert table.loc["ft_n", "vs_base_points"] == 10.0 and table.loc["ft_n", "vs_base_relative_pct"] == 20.0
    assert 0 < table.loc["ft_n", "diff_ci_low"] <= 10.0 <= table.loc["ft_n", "diff_ci_high"] <= 20.0

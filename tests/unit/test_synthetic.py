"""utils.synthetic: the parse step, each quality filter, retry on unusable replies, the batch round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from utils import engine, synthetic
from utils.engine import RetryableOutput

REPO = Path(__file__).resolve().parents[2]
DOCS = ("Doc 1: Amazon S3 stores data as objects inside buckets. A single object can be as large as 5 TB. "
        "Doc 2: Versioning keeps every version of an object in a bucket. Once turned on, versioning cannot be "
        "turned off again, only suspended.")
Q1 = {"question": "What does versioning keep?", "answer": "Every version of an object [2].", "topic": "versioning"}
Q2 = {"question": "How large can an object be?", "answer": "Up to 5 TB [1].", "topic": "object size"}
Q3 = {"question": "Can versioning be turned off?", "answer": "No, only suspended [2].", "topic": "suspension"}


# ---------------------------------------------------------------------------- parse step


def test_parse_json_lines_with_prose_around() -> None:
    text = "Here are the pairs:\n" + "\n".join(json.dumps(r) for r in (Q1, Q2, Q3)) + "\nLet me know if you need more [1]."
    parsed = synthetic.parse_reply(text, 3)
    assert parsed.records == [Q1, Q2, Q3] and parsed.ok and not parsed.issues


def test_parse_fenced_array_and_wrapped_object() -> None:
    fenced = "```json\n" + json.dumps([Q1, Q2, Q3], indent=2) + "\n```\nThese cover three topics."
    assert synthetic.parse_reply(fenced, 3).records == [Q1, Q2, Q3]
    wrapped = json.dumps({"pairs": [Q1, Q2, Q3]})
    assert synthetic.parse_reply(wrapped, 3).records == [Q1, Q2, Q3]
    # keys are matched without regard to case; extra keys are ignored
    upper = json.dumps([{"Question": " What is S3? ", "ANSWER": "Storage.", "Topic": "s3", "extra": 1}])
    assert synthetic.parse_reply(upper, 1).records == [{"question": "What is S3?", "answer": "Storage.", "topic": "s3"}]


def test_parse_counts_each_failure_kind() -> None:
    assert synthetic.parse_reply("I cannot help with that.", 3).issues == {"no_json": 1, "too_few": 1}
    truncated = json.dumps([Q1, Q2, Q3])[:-40]  # the sandbox's malformed output looks like this
    parsed = synthetic.parse_reply(truncated, 3)
    assert parsed.records == [Q1, Q2] and parsed.issues["invalid_json"] == 1 and parsed.issues["too_few"] == 1
    assert synthetic.failure_kind(parsed) == "too_few"
    assert synthetic.failure_kind(synthetic.parse_reply('[{"question": "x', 3)) == "invalid_json"
    mixed = json.dumps([Q1, "just a string", {"question": "Q?", "answer": "", "topic": "t"}, {"question": "Q?", "answer": "A"}])
    issues = synthetic.parse_reply(mixed, 1).issues
    assert issues == {"not_an_object": 1, "empty_value": 1, "missing_key": 1}
    extra = synthetic.parse_reply(json.dumps([Q1, Q2, Q3]), 2)
    assert extra.records == [Q1, Q2] and extra.issues == {"extra_records": 1} and extra.ok
    assert not synthetic.parse_reply("", 3).ok


def test_parse_never_accepts_the_sandbox_malformed_output() -> None:
    from utils.sandbox.standins import Completion, malformed

    text = "\n".join(json.dumps(r) for r in (Q1, Q2, Q3))
    garbled = malformed(Completion(json.dumps([Q1, Q2, Q3], indent=2), 10, 10, "end_turn")).text
    assert not synthetic.parse_reply(garbled, 3).ok
    assert synthetic.parse_reply(text, 3).ok


# ---------------------------------------------------------------------------- retry in the engine


class FlakyTeacher(synthetic.TeacherCall):
    """A TeacherCall whose replies come from a list instead of Bedrock."""

    def __init__(self, replies: list[str], n: int = 3) -> None:
        super().__init__("model", "nova", n=n, client=object())
        self.replies = list(replies)

    def ask(self, prompt: str):
        from utils.invoke import Reply

        return Reply(self.replies.pop(0), 100, 50, 1, "end_turn", "model")


def test_unusable_reply_is_retried_then_succeeds(tmp_path: Path) -> None:
    good = "\n".join(json.dumps(r) for r in (Q1, Q2, Q3))
    teacher = FlakyTeacher(["not json", json.dumps([Q1]), good])
    rows = engine.run_calls([{"id": "a", "sample": 0, "prompt": "p"}], teacher, tmp_path / "c.jsonl", progress=False)
    assert rows[0]["records"] == [Q1, Q2, Q3] and rows[0]["attempts"] == 3
    assert rows[0]["input_tokens"] == 300 and rows[0]["output_tokens"] == 150  # every attempt is tallied
    assert rows[0]["parse_issues"] == {"no_json": 1, "too_few": 2}


def test_unusable_reply_becomes_a_reported_failure(tmp_path: Path) -> None:
    attempts = engine.OUTPUT_RETRIES + 1
    teacher = FlakyTeacher(["[{\"question\": \"broken"] * attempts)
    checkpoint = tmp_path / "c.jsonl"
    rows = engine.run_calls([{"id": "a", "sample": 0, "prompt": "p"}], teacher, checkpoint, progress=False)
    assert rows[0]["error"].startswith("RetryableOutput: 0 valid records of 3 asked")
    assert rows[0]["error_kind"] == "invalid_json" and "records" not in rows[0]
    assert teacher.failed_usage() == {"attempts": attempts, "input_tokens": 100 * attempts, "output_tokens": 50 * attempts}
    assert engine.pending([{"id": "a"}], checkpoint) == [{"id": "a"}]  # retried on the next run
    summary = synthetic.run_summary(rows, 3)
    assert summary["failed_samples"] == 1 and summary["failure_kinds"] == {"invalid_json": 1} and summary["parsed"] == 0


def test_retryable_output_is_not_swallowed_by_other_retries(tmp_path: Path) -> None:
    calls = []

    def call(item):
        calls.append(item["id"])
        raise RetryableOutput("too_few", "1 of 3")

    rows = engine.run_calls([{"id": "x"}], call, tmp_path / "c.jsonl", progress=False, retry_on=("ThrottlingException",))
    assert len(calls) == engine.OUTPUT_RETRIES + 1 and rows[0]["error_kind"] == "too_few"


# ---------------------------------------------------------------------------- filters


def pair(question: str, answer: str = "Versioning keeps every version of an object in a bucket [2].", **extra):
    return {"question": question, "answer": answer, "topic": "t", "document": DOCS, **extra}


def test_filter_well_formed() -> None:
    report = synthetic.filter_pairs([pair("What does versioning keep"), pair("What does\nversioning keep?"),
                                     pair("What is <|unk|> versioning?"), pair("What does versioning keep?")])
    assert [p["question"] for p in report.kept] == ["What does versioning keep?"]
    assert report.counts()["well_formed"] == 3


def test_filter_length_bounds() -> None:
    settings = synthetic.FilterSettings(question_words=(3, 8), answer_words=(3, 20))
    long_question = "What " + "very " * 10 + "long question is this?"
    report = synthetic.filter_pairs([pair(long_question), pair("What is versioning?", "Yes."),
                                     pair("What is versioning?")], settings=settings)
    assert report.counts()["length"] == 2 and len(report.kept) == 1
    assert "question has 15 words" in report.removed["length"][0]["reason"]


def test_filter_grounding() -> None:
    assert synthetic.grounding("Versioning keeps every version [2].", DOCS) == 1.0
    assert synthetic.grounding("Glacier retrieval takes twelve hours.", DOCS) == 0.0
    report = synthetic.filter_pairs([pair("How long does Glacier retrieval take?", "Glacier retrieval takes twelve hours."),
                                     pair("What does versioning keep?")])
    assert report.counts()["grounded"] == 1 and report.removed["grounded"][0]["reason"].startswith("grounding 0.00")


def test_filter_near_duplicates_of_test_original_and_earlier_synthetic() -> None:
    pairs = [pair("What does S3 versioning keep?"), pair("What does S3 versioning keep ?"),
             pair("How large can a single S3 object be?"), pair("Which bucket feature keeps every version?"),
             pair("Can versioning be turned off again?")]
    report = synthetic.filter_pairs(pairs, original_questions=["How large can a single S3 object be"],
                                    test_questions=["Can versioning be turned off again?"])
    reasons = [p["reason"].split(" ")[0] for p in report.removed["near_duplicate"]]
    assert reasons == ["synthetic", "original", "test"]
    assert [p["question"] for p in report.kept] == ["What does S3 versioning keep?", "Which bucket feature keeps every version?"]
    table = report.table()
    assert list(table["filter"]) == list(synthetic.FILTERS) and table["left"].iloc[-1] == 2


def test_near_duplicate_index_agrees_with_exact_jaccard() -> None:
    index = synthetic.NearDuplicateIndex(0.7)
    questions = [f"What is the retention period for log group number {i}?" for i in range(30)]
    for q in questions:
        index.add(q, "original")
    match = index.match("What is the retention period for log group number 7?")
    assert match and match[2] == 1.0
    assert index.match("How do I rotate a KMS key automatically?") is None
    close = "What is the retention period for the log group number 7?"
    exact = max(synthetic.jaccard(synthetic.shingles(close), synthetic.shingles(q)) for q in questions)
    found = index.match(close)
    assert (found is not None) == (exact >= 0.7)


def test_topic_counts_fold_case_and_group_the_rest() -> None:
    pairs = [{"topic": "S3 Versioning"}, {"topic": "s3  versioning"}, {"topic": "IAM"}, {"topic": "KMS"}]
    assert synthetic.topic_counts(pairs, top=2) == [("s3 versioning", 2), ("iam", 1), ("other", 1)]


# ---------------------------------------------------------------------------- prompt, estimate


def test_teacher_items_one_per_sample_with_the_seed_instructions() -> None:
    samples = [{"document": DOCS, "question": "What is S3?"}, {"document": DOCS, "question": "What is versioning?"}]
    items = synthetic.teacher_items(samples, "amazon.nova-pro-v1:0", n=3)
    assert [item["sample"] for item in items] == [0, 1] and len({item["id"] for item in items}) == 2
    prompt = items[0]["prompt"]
    assert "Original question: What is S3?" in prompt and "3 new question and answer pairs" in prompt
    assert "other than the original question" in prompt and "own knowledge and memory" in prompt
    assert '"question", "answer" and "topic"' in prompt
    with pytest.raises(ValueError):
        synthetic.teacher_items(samples, "m", n=0)


def test_batch_estimate_says_which_price() -> None:
    nova = synthetic.estimate("nova-pro", 1000, 1000, batch=True)
    assert nova.total == pytest.approx(0.0008 + 0.0032) and "on-demand price" in " ".join(nova.notes)
    haiku = synthetic.estimate("claude-3-haiku", 1000, 1000, batch=True)
    assert haiku.total == pytest.approx((0.00025 + 0.00125) * 0.5) and "batch price" in " ".join(haiku.notes)


# ---------------------------------------------------------------------------- the sandbox teacher, on demand and batch


@pytest.fixture()
def sandbox(monkeypatch, tmp_path):
    from utils import sandbox as sb
    from utils.runner import sandbox_environment

    with sb.start() as server:
        sb.reset(server.url)  # moto's IAM and S3 state is process-wide: start each test from empty
        for key, value in sandbox_environment(server.url, tmp_path / "state").items():
            monkeypatch.setenv(key, value)
        yield server


def sample_rows(count: int) -> list[dict]:
    frame = pd.read_csv(REPO / "data" / "aws_docs_qa.csv")
    rows = frame.to_dict("records")
    return [rows[i % len(rows)] | {"question": f"{rows[i % len(rows)]['question']} ({i})"} for i in range(count)]


@pytest.mark.parametrize(("model_id", "body", "api"), [
    ("amazon.nova-pro-v1:0", "nova", "invoke"),
    ("us.anthropic.claude-sonnet-4-6", "anthropic", "invoke"),  # Claude Sonnet 4.6 through its inference profile
    ("amazon.nova-pro-v1:0", "nova", "converse"),
])
def test_sandbox_teacher_on_demand_end_to_end(sandbox, tmp_path: Path, model_id: str, body: str, api: str) -> None:
    samples = sample_rows(6)
    items = synthetic.teacher_items(samples, model_id, n=3, api=api)
    teacher = synthetic.TeacherCall(model_id, body, n=3, api=api, region="us-east-1")
    rows = engine.run_calls(items, teacher, tmp_path / "c.jsonl", progress=False)
    assert all(len(row["records"]) == 3 and row["via"] == api and row["input_tokens"] > 0 for row in rows)
    pairs = synthetic.pairs_from_rows(rows, samples)
    for p in pairs:
        assert p["question"].endswith("?") and p["topic"]
        assert synthetic.grounding(p["answer"], p["document"]) >= 0.8
        assert p["original_question"].split(" (")[0] not in p["question"]
    report = synthetic.filter_pairs(pairs, original_questions=[s["question"] for s in samples])
    assert report.kept and report.counts()["grounded"] == 0 and report.counts()["well_formed"] == 0


@pytest.mark.parametrize("api", ["invoke", "converse"])
def test_batch_round_trip_against_the_sandbox(sandbox, tmp_path: Path, api: str) -> None:
    from utils import aws

    sandbox.bedrock.config.batch_min_records = 5  # the sandbox knob; Bedrock's quota is per model
    s3 = aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket="synth-batch")
    iam = aws.client("iam", "us-east-1")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="AmazonBedrockSynthBatch", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="AmazonBedrockSynthBatch", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                                "Resource": ["arn:aws:s3:::synth-batch", "arn:aws:s3:::synth-batch/*"]}]}))
    samples = sample_rows(6)
    items = synthetic.teacher_items(samples, "amazon.nova-pro-v1:0", n=3, api=api)
    checkpoint = tmp_path / "c.jsonl"
    job = synthetic.run_batch(items, model_id="amazon.nova-pro-v1:0", body_family="nova", n=3, role_arn=role,
                              bucket="synth-batch", checkpoint=checkpoint, job_prefix="synth", region="us-east-1",
                              api=api, poll_seconds=0.2, timeout_s=60, log=lambda _: None)
    assert job.status == "Completed"
    assert job.manifest["totalRecordCount"] == 6 and job.manifest["successRecordCount"] == 6
    assert [row["sample"] for row in job.rows] == list(range(6)) and all(len(r["records"]) == 3 for r in job.rows)
    assert all(row["via"] == "batch" and row["input_tokens"] > 0 for row in job.rows)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="synth-batch")["Contents"]]
    job_id = job.job_arn.rsplit("/", 1)[-1]
    assert any(k.endswith(f"{job_id}/records.jsonl.out") for k in keys) and any(k.endswith("manifest.json.out") for k in keys)
    # the same items again: everything is in the checkpoint, no second job
    again = synthetic.run_batch(items, model_id="amazon.nova-pro-v1:0", body_family="nova", n=3, role_arn=role,
                                bucket="synth-batch", checkpoint=checkpoint, job_prefix="synth", region="us-east-1",
                                api=api, poll_seconds=0.2, log=lambda _: None)
    assert again.job_arn == "" and again.rows == job.rows
    assert len(aws.client("bedrock", "us-east-1").list_model_invocation_jobs()["invocationJobSummaries"]) == 1
    job_description = aws.client("bedrock", "us-east-1").get_model_invocation_job(jobIdentifier=job.job_arn)
    assert job_description["modelInvocationType"] == ("Converse" if api == "converse" else "InvokeModel")
    assert os.environ["WORKSHOP_BACKEND"] == "sandbox"


def test_batch_rows_join_on_record_id_and_report_errors() -> None:
    items = [{"id": engine.item_id(i), "sample": i, "prompt": "p"} for i in range(4)]
    good = {"output": {"message": {"content": [{"text": "\n".join(json.dumps(r) for r in (Q1, Q2, Q3))}]}},
            "usage": {"inputTokens": 10, "outputTokens": 20}, "stopReason": "end_turn"}
    bad = {"output": {"message": {"content": [{"text": "[{\"question\": "}]}}, "usage": {"inputTokens": 1, "outputTokens": 2}}
    lines = [  # out of order, one error line, one missing record
        {"recordId": synthetic.record_id(items[2]), "modelOutput": bad},
        {"recordId": synthetic.record_id(items[0]), "modelOutput": good},
        {"recordId": synthetic.record_id(items[1]), "error": {"errorCode": 400, "errorMessage": "bad request"}},
    ]
    rows = synthetic.batch_rows(items, lines, body_family="nova", n=3)
    assert rows[0]["records"] == [Q1, Q2, Q3] and rows[0]["input_tokens"] == 10
    assert [row.get("error_kind") for row in rows] == [None, "batch_record_error", "invalid_json", "missing_from_output"]
    body = json.loads(synthetic.batch_input(items[:1], "nova").splitlines()[0])
    assert body["recordId"] == synthetic.record_id(items[0]) and len(body["recordId"]) == 11
    assert body["modelInput"]["schemaVersion"] == "messages-v1"


def test_batch_min_records_reads_the_quota_or_falls_back_to_the_documented_default(sandbox) -> None:
    value, source = synthetic.batch_min_records("Amazon Nova Pro", "us-east-1")
    assert value == 100 and source.startswith("Service Quotas: Minimum number of records"), source

    def quotas(listed):
        class Quotas:
            def get_paginator(self, name):
                class Pages:
                    def paginate(self, **kw):
                        return [{"Quotas": listed}]
                return Pages()
        return Quotas()

    listed = [{"QuotaName": "Minimum number of records per batch inference job for Nova Pro", "QuotaCode": "L-X",
               "Value": 50.0}]
    assert synthetic.batch_min_records("Amazon Nova Pro", client=quotas(listed))[0] == 50
    value, source = synthetic.batch_min_records("Amazon Nova Pro", client=quotas([]))
    assert value == 100 and "default" in source


def test_topic_terms_count_words_of_free_text_labels() -> None:
    pairs = [{"topic": "S3 versioning"}, {"topic": "Versioning suspension"}, {"topic": "IAM roles"}]
    assert synthetic.topic_terms(pairs, top=2) == [("versioning", 2), ("iam", 1)]


def test_sandbox_malformed_output_is_retried_and_never_a_silent_success(sandbox, tmp_path: Path) -> None:
    from utils import sandbox as sb

    sb.configure(sandbox.url, faults={"malformed_output_rate": 0.5, "seed": 3})
    samples = sample_rows(12)
    items = synthetic.teacher_items(samples, "amazon.nova-pro-v1:0", n=3)
    teacher = synthetic.TeacherCall("amazon.nova-pro-v1:0", "nova", n=3, region="us-east-1")
    rows = engine.run_calls(items, teacher, tmp_path / "c.jsonl", progress=False)
    good = [row for row in rows if not row.get("error")]
    bad = [row for row in rows if row.get("error")]
    assert len(good) + len(bad) == 12 and any(row["attempts"] > 1 for row in good)
    assert all(len(row["records"]) == 3 for row in good)  # no partial reply stored as a success
    assert all(row["error_kind"] in ("invalid_json", "too_few", "no_json") for row in bad)
    summary = synthetic.run_summary(rows, 3)
    assert summary["parse_issues"].get("invalid_json", 0) >= summary["retried_replies"] > 0


def test_batch_wait_starts_short_and_backs_off(monkeypatch):
    """A batch job done in seconds (the sandbox) is seen in seconds, not after a flat poll_seconds."""
    statuses = iter(["Submitted", "InProgress", "InProgress", "InProgress", "Completed"])

    class Bedrock:
        def get_model_invocation_job(self, jobIdentifier):
            return {"jobArn": jobIdentifier, "status": next(statuses)}

    waits = []
    monkeypatch.setattr(synthetic.time, "sleep", waits.append)
    done = synthetic._wait_for_job(Bedrock(), "arn:job", poll_seconds=60, timeout_s=3600, log=lambda s: None)
    assert done["status"] == "Completed" and waits == [0.5, 1.0, 2.0, 4.0]

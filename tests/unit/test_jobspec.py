"""Job settings refused before any call: hyperparameters, batch-size advice, customization types."""

from __future__ import annotations

import pytest

from utils import jobspec, models
from utils.jobspec import JobSpecError, check_customization, check_hyperparameters

NOVA = "amazon.nova-lite-v1:0:300k"
LLAMA31 = "meta.llama3-1-8b-instruct-v1:0:128k"
LLAMA33 = "meta.llama3-3-70b-instruct-v1:0:128k"
TITAN = "amazon.titan-text-express-v1:0:8k"
TITAN_LITE = "amazon.titan-text-lite-v1:0:4k"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"


def test_every_family_hyperparameter_is_settable_with_documented_ranges():
    ranges = {
        NOVA: {"epochCount": (1, 5), "learningRate": (1e-6, 1e-4), "learningRateWarmupSteps": (0, 100)},
        LLAMA31: {"epochCount": (1, 10), "batchSize": (1, 1), "learningRate": (5e-6, 0.1)},
        LLAMA33: {"epochCount": (1, 10), "batchSize": (1, 1), "learningRate": (5e-6, 0.1)},
        TITAN: {"epochCount": (1, 10), "batchSize": (1, 64), "learningRate": (0.0, 1.0), "learningRateWarmupSteps": (0, 250)},
        TITAN_LITE: {"epochCount": (1, 10), "batchSize": (1, 64), "learningRate": (0.0, 1.0), "learningRateWarmupSteps": (0, 250)},
        HAIKU: {"epochCount": (1, 10), "batchSize": (4, 256), "learningRateMultiplier": (0.1, 2.0),
                "earlyStoppingThreshold": (0.0, 0.1), "earlyStoppingPatience": (1, 10)},
    }
    for model, expected in ranges.items():
        assert {hp.name: (hp.minimum, hp.maximum) for hp in models.hyperparameters(model)} == expected, model
        for name, (low, high) in expected.items():  # both ends are accepted
            assert float(check_hyperparameters(model, {name: low})[name]) == pytest.approx(low)
            assert float(check_hyperparameters(model, {name: high})[name]) == pytest.approx(high)


@pytest.mark.parametrize(("model", "name", "value", "fragment"), [
    (NOVA, "epochCount", 6, "epochCount: whole number 1..5"),
    (NOVA, "epochCount", 0, "1..5"),
    (NOVA, "learningRate", 1e-3, "learningRate: number 1e-06..1e-04"),
    (NOVA, "learningRateWarmupSteps", 101, "0..100"),
    (LLAMA31, "batchSize", 2, "batchSize: fixed at 1"),
    (LLAMA31, "learningRate", 1e-6, "5e-06..0.1"),
    (LLAMA31, "epochCount", 11, "1..10"),
    (TITAN, "learningRateWarmupSteps", 251, "0..250"),
    (TITAN, "batchSize", 65, "1..64"),
    (HAIKU, "learningRateMultiplier", 0.05, "0.1..2"),
    (HAIKU, "earlyStoppingThreshold", 0.2, "0..0.1"),
    (HAIKU, "earlyStoppingPatience", 0, "1..10"),
    (HAIKU, "batchSize", 2, "4..256"),
])
def test_out_of_range_values_are_refused_with_the_range(model, name, value, fragment):
    with pytest.raises(JobSpecError) as err:
        check_hyperparameters(model, {name: value})
    assert fragment in str(err.value) and name in str(err.value)


@pytest.mark.parametrize(("model", "name"), [
    (LLAMA31, "learningRateWarmupSteps"),  # Llama has no warm-up
    (NOVA, "batchSize"),
    (TITAN, "learningRateMultiplier"),
    (HAIKU, "learningRate"),
    (NOVA, "epochs"),
])
def test_names_the_family_lacks_are_refused_with_the_allowed_names(model, name):
    with pytest.raises(JobSpecError) as err:
        check_hyperparameters(model, {name: 1})
    message = str(err.value)
    assert f"{name} is not a hyperparameter" in message
    assert all(hp.name in message for hp in models.hyperparameters(model))


@pytest.mark.parametrize("value", [2.5, "2.5", "two", True, float("nan")])
def test_integer_parameters_refuse_non_integers_instead_of_truncating(value):
    with pytest.raises(JobSpecError):
        check_hyperparameters(NOVA, epochCount=value)


def test_values_become_api_strings_and_none_keeps_the_default():
    values = check_hyperparameters(HAIKU, {"epochCount": 3.0, "batchSize": "16", "learningRateMultiplier": None})
    assert values == {"epochCount": "3", "batchSize": "16", "learningRateMultiplier": "1.0",
                      "earlyStoppingThreshold": "0.001", "earlyStoppingPatience": "2"}
    assert all(isinstance(v, str) for v in values.values())


def test_llama33_range_is_marked_as_an_assumption():
    rows = jobspec.hyperparameter_table(LLAMA33, check_hyperparameters(LLAMA33))
    assert all(row["source"].endswith("(assumed)") for row in rows)
    assert not any("(assumed)" in row["source"] for row in jobspec.hyperparameter_table(NOVA, check_hyperparameters(NOVA)))


@pytest.mark.parametrize(("records", "advice"), [
    (0, (4, 16)), (499, (4, 16)), (500, (16, 32)), (1000, (16, 32)), (1001, (32, 64)), (10_000, (32, 64)),
])
def test_batch_size_advice_follows_the_seed(records, advice):
    assert jobspec.batch_size_advice(records) == advice


def test_batch_size_note_where_the_family_has_a_batch_size():
    assert "within the advised 4-16" in jobspec.batch_size_note(HAIKU, 100, 8)
    assert "outside the advised 32-64" in jobspec.batch_size_note(HAIKU, 2000, 8)
    assert "within the advised 4-16" in jobspec.batch_size_note(TITAN, 120, "4")
    assert "fixes batchSize at 1" in jobspec.batch_size_note(LLAMA31, 500, None)
    assert "no batchSize" in jobspec.batch_size_note(NOVA, 500, None)


def test_fine_tuning_is_the_default_and_unknown_types_are_refused():
    check_customization(NOVA, region="us-east-1")
    with pytest.raises(JobSpecError, match="choose one of FINE_TUNING"):
        check_customization(NOVA, "REINFORCEMENT", region="us-east-1")


def test_continued_pretraining_only_where_the_catalog_lists_it():
    check_customization(TITAN, "CONTINUED_PRE_TRAINING", region="us-east-1",
                        supported=["FINE_TUNING", "CONTINUED_PRE_TRAINING"])
    with pytest.raises(JobSpecError, match="does not list CONTINUED_PRE_TRAINING"):
        check_customization(NOVA, "CONTINUED_PRE_TRAINING", region="us-east-1", supported=["FINE_TUNING", "DISTILLATION"])
    with pytest.raises(JobSpecError, match="Titan"):
        check_customization(NOVA, "CONTINUED_PRE_TRAINING", region="us-east-1")


@pytest.mark.parametrize(("student", "teacher", "region"), [
    (NOVA, "amazon.nova-pro-v1:0", "us-east-1"),
    ("amazon.nova-micro-v1:0:128k", "us.amazon.nova-pro-v1:0", "us-east-1"),
    (LLAMA31, "meta.llama3-1-70b-instruct-v1:0", "us-west-2"),
    (LLAMA31, "us.meta.llama3-3-70b-instruct-v1:0", "us-west-2"),
])
def test_documented_distillation_pairs_pass(student, teacher, region):
    check_customization(student, "DISTILLATION", region=region, teacher=teacher)
    config = jobspec.customization_config(teacher, 1000)
    assert config == {"distillationConfig": {"teacherModelConfig": {
        "teacherModelIdentifier": teacher, "maxResponseLengthForInference": 1000}}}


@pytest.mark.parametrize(("student", "teacher", "region", "reason"), [
    (NOVA, None, "us-east-1", "needs a teacher"),
    (NOVA, "amazon.nova-pro-v1:0", "us-west-2", "runs in us-east-1"),
    ("amazon.nova-pro-v1:0:300k", "amazon.nova-lite-v1:0", "us-east-1", "not a documented distillation pair"),
    (LLAMA31, "meta.llama3-3-70b-instruct-v1:0", "us-west-2", "system-defined inference profile"),
    (NOVA, "meta.llama3-1-70b-instruct-v1:0", "us-east-1", "cannot teach"),
    (HAIKU, "anthropic.claude-3-sonnet-20240229-v1:0", "us-west-2", "not a documented distillation pair"),
])
def test_wrong_distillation_combinations_are_refused_with_the_reason(student, teacher, region, reason):
    with pytest.raises(JobSpecError, match=reason):
        check_customization(student, "DISTILLATION", region=region, teacher=teacher)


def test_teacher_without_distillation_is_refused():
    with pytest.raises(JobSpecError, match="only used with DISTILLATION"):
        check_customization(NOVA, region="us-east-1", teacher="amazon.nova-pro-v1:0")


def test_continued_pretraining_records_fit_the_limit_and_long_ones_are_refused():
    paragraph = "Amazon Bedrock customizes foundation models with your own data. " * 40
    documents = ["\n\n".join([paragraph] * 12), "Short note."]
    records = jobspec.continued_pretraining_records(documents, TITAN)
    assert len(records) > 2 and records[-1] == {"input": "Short note."}
    jobspec.check_continued_pretraining(records, TITAN)  # every record fits
    with pytest.raises(JobSpecError, match="over the 2,048-token limit at batchSize 2"):
        jobspec.check_continued_pretraining(records, TITAN, batch_size=2)
    with pytest.raises(JobSpecError, match="expected"):
        jobspec.check_continued_pretraining([{"prompt": "a", "completion": "b"}], TITAN)
    assert jobspec.token_limit(TITAN_LITE, 2) == 4096 and jobspec.token_limit(TITAN_LITE, 3) == 2048
    with pytest.raises(JobSpecError, match="at most 4"):
        jobspec.token_limit(TITAN, 5)


def test_job_plan_sends_the_distillation_config():
    from utils.customization import JobPlan

    config = jobspec.customization_config("amazon.nova-pro-v1:0")
    plan = JobPlan("j", "m", NOVA, "arn:aws:iam::123456789012:role/r", "s3://b/t.jsonl", None, "s3://b/o/", {},
                   "ws", customization_type="DISTILLATION", customization_config=config)
    request = plan.request()
    assert request["customizationType"] == "DISTILLATION" and request["customizationConfig"] == config
    assert "customizationConfig" not in JobPlan("j", "m", NOVA, "r", "s3://b/t", None, "s3://b/o", {}, "ws").request()


def test_a_number_too_large_for_a_float_is_refused_with_the_range():
    with pytest.raises(JobSpecError, match="not a finite number"):
        check_hyperparameters(NOVA, epochCount=10**400)


@pytest.mark.parametrize("premier", ["amazon.titan-text-premier-v1:0:32k", "amazon.titan-text-premier-v1:0:32K"])
def test_titan_premier_has_its_own_narrower_ranges(premier):
    # Same Titan page, separate table: epochs 1-5, batch fixed at 1, LR 1e-7..1e-5, warm-up 0-20.
    assert {hp.name: (hp.minimum, hp.maximum, hp.default) for hp in models.hyperparameters(premier)} == {
        "epochCount": (1, 5, 2), "batchSize": (1, 1, 1), "learningRate": (1e-7, 1e-5, 1e-6),
        "learningRateWarmupSteps": (0, 20, 5)}
    for name, value in (("epochCount", 6), ("batchSize", 2), ("learningRate", 1e-4), ("learningRateWarmupSteps", 21)):
        with pytest.raises(JobSpecError, match="out of range"):
            check_hyperparameters(premier, {name: value})
    assert check_hyperparameters(premier, {}) == {"epochCount": "2", "batchSize": "1", "learningRate": "1e-06",
                                                  "learningRateWarmupSteps": "5"}

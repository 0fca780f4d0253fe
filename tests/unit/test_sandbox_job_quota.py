"""The sandbox's concurrent customization job quota, and its early stopping per epoch."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_cleanup import REGION, sandbox_env, setup_workshop  # noqa: F401 (sandbox_env is a fixture)
from utils import arms, aws, customization, formats, iam, models, s3
from utils.sandbox import configure, training
from utils.state import name


def create(state, bucket_key, tag):
    student = models.get("nova-lite").customization_id
    records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student) for i in range(10)]
    uri = s3.upload_bytes(state.bucket, f"{iam.TRAINING_PREFIX}{bucket_key}", formats.to_jsonl(records))
    return aws.client("bedrock", REGION).create_model_customization_job(
        jobName=name(state.workshop_id, f"ft-{tag}"), customModelName=name(state.workshop_id, f"model-{tag}"),
        roleArn=state.roles["customization"], baseModelIdentifier=student, trainingDataConfig={"s3Uri": uri},
        outputDataConfig={"s3Uri": f"s3://{state.bucket}/{iam.OUTPUT_PREFIX}"})["jobArn"]


def test_quota_refuses_the_job_past_it_and_follows_the_knob(sandbox_env):  # noqa: F811
    state = setup_workshop("quota")
    configure(sandbox_env.url, time_scale=50)  # the jobs stay InProgress during the test
    create(state, "a.jsonl", "a"), create(state, "b.jsonl", "b")
    with pytest.raises(ClientError) as err:
        create(state, "c.jsonl", "c")
    error = err.value.response["Error"]
    assert error["Code"] == "ServiceQuotaExceededException" and "(2)" in error["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert arms.concurrent_job_quota(region=REGION) == (2, "Service Quotas L-0406044C")
    configure(sandbox_env.url, concurrent_customization_jobs=3)
    assert arms.concurrent_job_quota(region=REGION) == (3, "Service Quotas L-0406044C")
    quotas = aws.client("service-quotas", REGION)
    default = quotas.get_aws_default_service_quota(ServiceCode="bedrock", QuotaCode="L-0406044C")["Quota"]["Value"]
    assert default == 2.0  # the AWS default stays as listed
    named = quotas.get_service_quota(ServiceCode="bedrock", QuotaCode="L-0406044C")["Quota"]["QuotaName"]
    assert named == "(Model customization) Scheduled customization jobs"  # the name Service Quotas shows
    create(state, "c.jsonl", "c")
    with pytest.raises(ClientError, match="ServiceQuotaExceededException"):
        create(state, "d.jsonl", "d")
    bedrock = aws.client("bedrock", REGION)
    bedrock.stop_model_customization_job(jobIdentifier=bedrock.list_model_customization_jobs(
        nameContains="ft-a")["modelCustomizationJobSummaries"][0]["jobArn"])
    with pytest.raises(ClientError, match="ServiceQuotaExceededException"):  # Stopping still counts
        create(state, "d.jsonl", "d")
    with pytest.raises(RuntimeError, match="whole number >= 1"):
        configure(sandbox_env.url, concurrent_customization_jobs=0)


def test_patience_rule_matches_customization_early_stopping():
    rng = random.Random(7)
    for _ in range(500):
        losses = [round(rng.uniform(0.5, 1.0), 2) for _ in range(rng.randint(1, 9))]
        threshold, patience = rng.choice([0.0, 0.01, 0.05]), rng.randint(1, 3)
        stopped, _ = customization.early_stopping(losses, threshold, patience)
        first = next((k for k in range(1, len(losses) + 1)
                      if training.patience_exhausted(losses[:k], threshold, patience)), len(losses))
        assert first == stopped, (losses, threshold, patience)


def haiku_inputs(**hp):
    words = "the widget ships in blue or red and costs ten dollars per unit".split()
    rng = random.Random(1)
    text = "\n".join(" ".join(rng.choice(words) for _ in range(30)) for _ in range(40))
    return training.TrainingInputs(family="claude3", train_lengths=[60] * 40, validation_lengths=[60] * 10,
                                   text=text, hyperparameters={"epochCount": "10", "batchSize": "8", **hp}, seed=3)


def test_early_stopping_applies_per_epoch_as_04_reads_it():
    import io

    import pandas as pd

    result = training.simulate(haiku_inputs(earlyStoppingThreshold="0.01", earlyStoppingPatience="1"))
    frames = {"training": pd.read_csv(io.BytesIO(result.training_csv())),
              "validation": pd.read_csv(io.BytesIO(result.validation_csv()))}
    per_epoch = arms.epoch_curves(frames)
    assert result.stopped_early and len(per_epoch) < 10 and result.steps == len(per_epoch) * 5
    stopped, best = customization.early_stopping(per_epoch["validation_loss"].tolist(), 0.01, 1)
    assert stopped == len(per_epoch)  # the CSVs end at the epoch where 04's rule stops
    marks = arms.curve_marks(frames, "anthropic.claude-3-haiku-20240307-v1:0:200k",
                             {"epochCount": "10", "earlyStoppingThreshold": "0.01", "earlyStoppingPatience": "1"})
    assert marks["stopped_epoch"] == stopped and marks["best_epoch"] == best
    assert "stopped training after epoch" in marks["note"]
    patient = training.simulate(haiku_inputs(earlyStoppingThreshold="0", earlyStoppingPatience="10"))
    assert not patient.stopped_early and patient.steps == 50  # patience 10 never runs out in 10 epochs


def test_run_arms_queues_the_third_job_when_the_service_refuses_it(sandbox_env):  # noqa: F811
    from tests.unit.test_arms_sandbox import planned_jobs

    state, lines = setup_workshop("arms"), []
    # quota=3 overstates the account's quota (2): the service's ServiceQuotaExceededException queues the third
    jobs = arms.run_arms(planned_jobs(state), quota=3, poll_s=0.05, timeout_s=60, region=REGION, log=lines.append)
    assert [j.status for j in jobs] == ["Completed"] * 3 and all(j.created for j in jobs)
    queued = [line for line in lines if "queued" in line]
    assert len(queued) == 1 and queued[0].startswith("ft_n_3n") and "L-0406044C" in queued[0]

"""The arms against the sandbox through boto3: quota, failure message and fix, no second job on rerun."""

from __future__ import annotations

import pytest

from tests.unit.test_cleanup import REGION, sandbox_env, setup_workshop  # noqa: F401 (sandbox_env is a fixture)
from utils import arms, aws, formats, models, s3


@pytest.fixture()
def workshop(sandbox_env):  # noqa: F811
    return setup_workshop("arms")


def planned_jobs(state, broken=()):
    student = models.get("nova-lite").customization_id
    originals = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget of size {i}.", student)
                 for i in range(40)]
    synthetic = [formats.format_record(f"How big is item {i}?", f"Size {i}.", student) for i in range(30)]
    data = arms.build_arm_data(list(arms.ARMS), 10, originals, synthetic)
    planned = arms.plan_jobs(data, workshop_id="arms", base_model=student, role_arn=state.roles["customization"],
                             bucket=state.bucket, hyperparameters=models.default_hyperparameters(student),
                             validation_uri=None)
    for job, body in planned:
        text = "not json\n" + body if job.arm in broken else body
        s3.upload_bytes(state.bucket, job.plan.training_uri.split("/", 3)[3], text.encode(), region=REGION)
    return [job for job, _ in planned]


def test_quota_queues_the_third_job_and_rerun_creates_nothing(workshop):
    lines = []
    jobs = arms.run_arms(planned_jobs(workshop), quota=2, poll_s=0.05, timeout_s=60, region=REGION, log=lines.append)
    assert [j.status for j in jobs] == ["Completed"] * 3
    submitted = [i for i, line in enumerate(lines) if " submitted " in line]
    first_done = next(i for i, line in enumerate(lines) if line.split()[1] == "Completed")
    assert len(submitted) == 3 and submitted[1] < first_done < submitted[2]  # the third waited for a slot
    assert any("ft_n_3n queued" in line for line in lines)
    again = arms.run_arms(planned_jobs(workshop), quota=2, poll_s=0.05, timeout_s=60, region=REGION, log=lambda _: None)
    assert not any(j.created for j in again) and [j.model_arn for j in again] == [j.model_arn for j in jobs]
    listed = aws.client("bedrock", REGION).list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert len(listed) == 3


def test_broken_data_fails_the_arm_with_message_and_fix(workshop):
    lines = []
    jobs = arms.run_arms(planned_jobs(workshop, broken={"ft_4n"}), quota=3, poll_s=0.05, timeout_s=60,
                         region=REGION, log=lines.append)
    result = {j.arm: j.result() for j in jobs}
    assert result["ft_4n"]["status"] == "Failed" and "JSONL" in result["ft_4n"]["failure_message"]
    assert "rerun 02" in result["ft_4n"]["fix"]
    assert result["ft_n"]["status"] == result["ft_n_3n"]["status"] == "Completed"
    assert any(line.startswith("ft_4n") and "Likely fix" in line for line in lines)


def test_distillation_arm_runs_with_its_teacher(workshop):
    from utils import jobspec

    student = models.get("nova-lite").customization_id
    jobspec.check_customization(student, "DISTILLATION", region=REGION, teacher="us.amazon.nova-pro-v1:0",
                                supported=jobspec.supported_customizations(student, region=REGION))
    originals = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student) for i in range(12)]
    data = arms.build_arm_data(["ft_n"], 10, originals)
    planned = arms.plan_jobs(data, workshop_id="arms", base_model=student, role_arn=workshop.roles["customization"],
                             bucket=workshop.bucket, hyperparameters={}, validation_uri=None,
                             customization_type="DISTILLATION",
                             customization_config=jobspec.customization_config("us.amazon.nova-pro-v1:0"))
    for job, body in planned:
        s3.upload_bytes(workshop.bucket, job.plan.training_uri.split("/", 3)[3], body.encode(), region=REGION)
    jobs = arms.run_arms([job for job, _ in planned], quota=2, poll_s=0.05, timeout_s=60, region=REGION, log=lambda _: None)
    assert jobs[0].status == "Completed", jobs[0].result()
    described = aws.client("bedrock", REGION).get_model_customization_job(jobIdentifier=jobs[0].job_arn)
    assert described["customizationType"] == "DISTILLATION"

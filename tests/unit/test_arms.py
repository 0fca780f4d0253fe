"""The four-arm experiment: sizes, minimum records, quota-limited submission, one log line per change."""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from utils import arms
from utils.customization import JobPlan
from utils.jobspec import JobSpecError

NOVA = "amazon.nova-lite-v1:0:300k"


def records(n, tag="o"):
    return [{"id": f"{tag}{i}"} for i in range(n)]


def test_arm_names_and_parsing():
    assert arms.ARMS == ("base", "ft_n", "ft_4n", "ft_n_3n")
    assert arms.parse_arms("all") == list(arms.ARMS) == arms.parse_arms("")
    assert arms.parse_arms("ft_4n, base") == ["base", "ft_4n"]
    with pytest.raises(JobSpecError, match="unknown"):
        arms.parse_arms("ft_2n")


def test_sizes_follow_n_originals():
    data = arms.build_arm_data(list(arms.ARMS), 25, records(108), records(80, "s"))
    assert {a: (len(d.originals), len(d.synthetic)) for a, d in data.items()} == {
        "ft_n": (25, 0), "ft_4n": (100, 0), "ft_n_3n": (25, 75)}
    assert data["ft_n"].originals == data["ft_4n"].originals[:25]  # FT-N is a prefix of FT-4N
    short = arms.build_arm_data(["ft_n_3n"], 25, records(30), records(10, "s"))["ft_n_3n"]
    assert "wanted 75" in short.describe()


def test_pool_too_small_names_the_largest_n():
    with pytest.raises(JobSpecError, match="n_originals <= 27"):
        arms.build_arm_data(list(arms.ARMS), 30, records(108), records(90))
    with pytest.raises(JobSpecError, match="run 03_synthetic_data"):
        arms.build_arm_data(["ft_n_3n"], 5, records(10), [])
    with pytest.raises(JobSpecError, match="whole number"):
        arms.build_arm_data(["ft_n"], 2.5, records(10))


def test_minimum_records_per_family_with_the_sizes_that_pass():
    data = arms.build_arm_data(["ft_n", "ft_4n"], 25, records(108))
    arms.check_minimum_records(NOVA, data, 12, 108)  # Nova: 8
    with pytest.raises(JobSpecError) as err:
        arms.check_minimum_records("meta.llama3-1-8b-instruct-v1:0:128k", data, 12, 108)
    assert "at least 100 training + validation" in str(err.value) and "n_originals >= 88" in str(err.value)
    assert "ft_4n" not in str(err.value).split("too few for")[1].split(".")[0]  # 100 + 12 passes
    with pytest.raises(JobSpecError, match="n_originals >= 32 "):
        arms.check_minimum_records("anthropic.claude-3-haiku-20240307-v1:0:200k", data, 12, 200)


class FakeQuotas:
    def __init__(self, value=None):
        self.value = value

    def get_service_quota(self, ServiceCode, QuotaCode):
        if self.value is None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetServiceQuota")
        assert (ServiceCode, QuotaCode) == ("bedrock", "L-0406044C")
        return {"Quota": {"Value": self.value}}


class DefaultOnlyQuotas:
    """An account that never changed the quota: GetServiceQuota has no applied value to return."""

    def get_service_quota(self, ServiceCode, QuotaCode):
        raise ClientError({"Error": {"Code": "NoSuchResourceException", "Message": "not found"}}, "GetServiceQuota")

    def get_aws_default_service_quota(self, ServiceCode, QuotaCode):
        assert (ServiceCode, QuotaCode) == ("bedrock", "L-0406044C")
        return {"Quota": {"Value": 4.0}}


def test_quota_without_an_applied_value_is_the_aws_default_not_an_assumption():
    assert arms.concurrent_job_quota(client=DefaultOnlyQuotas()) == (4, "Service Quotas L-0406044C, AWS default")


def test_quota_is_read_or_assumed_and_marked():
    assert arms.concurrent_job_quota(client=FakeQuotas(3.0)) == (3, "Service Quotas L-0406044C")
    value, source = arms.concurrent_job_quota(client=FakeQuotas(None))
    assert value == 2 and "assumed" in source


class FakeBedrock:
    """Jobs finish after ``polls`` status reads; more than ``limit`` running raises the quota error."""

    def __init__(self, limit=2, polls=3, fail=()):
        self.jobs, self.limit, self.polls, self.fail, self.creates = {}, limit, polls, set(fail), []

    def get_custom_model(self, modelIdentifier):
        return {"modelArn": modelIdentifier}

    def get_paginator(self, name):
        bedrock = self

        class Pager:
            def paginate(self, statusEquals):
                yield {"modelCustomizationJobSummaries": [
                    {"jobName": n} for n, j in bedrock.jobs.items() if j["status"] == statusEquals]}
        return Pager()

    def create_model_customization_job(self, **request):
        if request["jobName"] in self.fail and "refuse" in self.fail:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad role"}}, "Create")
        if sum(j["status"] == "InProgress" for j in self.jobs.values()) >= self.limit:
            raise ClientError({"Error": {"Code": "ServiceQuotaExceededException", "Message": "quota"}}, "Create")
        name = request["jobName"]
        self.creates.append(name)
        self.jobs[name] = {"jobArn": f"arn:job/{name}", "status": "InProgress", "reads": 0, "jobName": name}
        return {"jobArn": f"arn:job/{name}"}

    def get_model_customization_job(self, jobIdentifier):
        name = jobIdentifier.rsplit("/", 1)[-1]
        if name not in self.jobs:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "nf"}}, "Get")
        job = self.jobs[name]
        job["reads"] += 1
        if job["status"] == "InProgress" and job["reads"] > self.polls:
            job["status"] = "Failed" if name in self.fail else "Completed"
        out = {"jobArn": job["jobArn"], "status": job["status"], "outputModelArn": f"arn:model/{name}"}
        out["statusDetails"] = {"trainingDetails": {"status": "Completed" if job["status"] != "InProgress" else "InProgress"}}
        if job["status"] == "Failed":
            out["failureMessage"] = "Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format."
        return out


def plan(name):
    return JobPlan(name, f"m-{name}", NOVA, "arn:aws:iam::123456789012:role/r", "s3://b/t", None, "s3://b/o", {}, "ws")


def three_jobs():
    return [arms.ArmJob(a, plan(f"job-{a}"), 10) for a in ("ft_n", "ft_4n", "ft_n_3n")]


def test_quota_queues_the_third_job_and_one_line_per_status_change():
    bedrock, lines, running_at_create = FakeBedrock(limit=2, polls=5), [], []
    original = bedrock.create_model_customization_job

    def create(**request):
        running_at_create.append(sum(j["status"] == "InProgress" for j in bedrock.jobs.values()))
        return original(**request)
    bedrock.create_model_customization_job = create
    done = arms.run_arms(three_jobs(), quota=2, poll_s=0, client=bedrock, log=lines.append, sleep=lambda s: None)
    assert [j.status for j in done] == ["Completed"] * 3
    assert max(running_at_create) <= 1  # never a third running job: the third waited for a slot
    assert bedrock.creates == ["job-ft_n", "job-ft_4n", "job-ft_n_3n"]
    assert sum("queued" in line for line in lines) == 1
    for arm in ("ft_n", "ft_4n", "ft_n_3n"):  # one line per change, never one per poll (5 polls each)
        assert sum(line.startswith(arm + " ") and "Completed (" in line and "trainingDetails" not in line for line in lines) == 1
        assert sum(line.startswith(arm + " ") and "trainingDetails: InProgress" in line for line in lines) == 1
    assert len(lines) == 3 + 1 + 3 * 3
    assert all(j.model_arn == f"arn:model/{j.plan.job_name}" for j in done)


def test_quota_error_from_the_service_queues_instead_of_failing():
    bedrock = FakeBedrock(limit=1, polls=1)
    done = arms.run_arms(three_jobs(), quota=3, poll_s=0, client=bedrock, log=lambda s: None, sleep=lambda s: None)
    assert [j.status for j in done] == ["Completed"] * 3


def test_rerun_adopts_jobs_and_creates_nothing():
    bedrock = FakeBedrock(polls=0)
    arms.run_arms(three_jobs(), quota=2, poll_s=0, client=bedrock, log=lambda s: None, sleep=lambda s: None)
    again = arms.run_arms(three_jobs(), quota=2, poll_s=0, client=bedrock, log=lambda s: None, sleep=lambda s: None)
    assert len(bedrock.creates) == 3 and not any(j.created for j in again)
    assert [j.status for j in again] == ["Completed"] * 3
    assert all(j.model_arn == f"arn:model/{j.plan.job_name}" for j in again)


def test_failed_arm_shows_message_and_fix():
    bedrock, lines = FakeBedrock(polls=0, fail={"job-ft_4n"}), []
    done = arms.run_arms(three_jobs(), quota=3, poll_s=0, client=bedrock, log=lines.append, sleep=lambda s: None)
    failed = done[1].result()
    assert failed["status"] == "Failed" and "JSONL" in failed["failure_message"] and "rerun 02" in failed["fix"]
    assert any("ft_4n" in line and "Likely fix" in line for line in lines)


def test_timeout_returns_with_jobs_still_running():
    bedrock = FakeBedrock(polls=10**6)
    done = arms.run_arms(three_jobs()[:1], quota=2, poll_s=0, timeout_s=0, client=bedrock, log=lambda s: None, sleep=lambda s: None)
    assert done[0].status == "InProgress"


def frames(training, validation):
    return {
        "training": pd.DataFrame({"step_number": range(len(training)), "training_loss": training}),
        "validation": pd.DataFrame({"step_number": range(len(validation)), "epoch_number": [i + 1 for i in range(len(validation))],
                                    "validation_loss": validation}),
    }


def test_curve_sentences_follow_the_curves():
    memorising = arms.describe_curves(frames([2.5, 2.0, 1.5, 1.2, 1.0, 0.9], [2.3, 2.31, 2.29, 2.3]))
    assert "stays flat" in memorising and "memorising" in memorising and "fewer epochs" in memorising
    overfit = arms.describe_curves(frames([2.5, 2.0, 1.5, 1.2, 1.0, 0.6], [2.0, 1.6, 1.9, 2.2]))
    assert "bottoms out early (around epoch 2)" in overfit
    learning = arms.describe_curves(frames([2.5, 2.0, 1.5, 1.2], [2.4, 2.0, 1.7, 1.5]))
    assert "both fall" in learning
    assert "unstable" in arms.describe_curves(frames([1.0, 1.5, 2.5, 4.0], [1.0, 2.0]))
    assert "learning little" in arms.describe_curves(frames([1.0, 1.0, 0.99, 1.0], [1.0, 1.0]))
    assert "no validation curve" in arms.describe_curves({"training": frames([2, 1], [1])["training"]})
    assert arms.loss_summary(frames([2.5, 0.9], [2.3, 2.2, 2.4])) == {"final_training_loss": 0.9, "best_validation_loss": 2.2}


def test_report_shows_the_arms_in_experiment_order():
    import html

    from utils import report

    arms_metric = {a: {"status": "Completed", "records": 1, "final_training_loss": 0.5, "best_validation_loss": 1.0}
                   for a in ("ft_n_3n", "base", "ft_4n", "ft_n")}
    page = report.render_html({"metrics": {"arms": arms_metric}})
    cells = [page.index(f"<td>{html.escape(report.ARM_NAMES[a])}</td>") for a in ("base", "ft_n", "ft_4n", "ft_n_3n")]
    assert cells == sorted(cells) and "<th>Best validation loss</th>" in page and "best_validation_loss" not in page


def _ft_records(base_model, n=3):
    from utils import formats

    return [formats.format_record(formats.rag_prompt(f"What is item {i}?", [f"Item {i} is a widget.", "Widgets are small."]),
                                  "A widget [1].", base_model, system="Be brief.") for i in range(n)]


def test_records_for_each_customization_type():
    from utils import formats

    nova = _ft_records(NOVA)
    assert arms.records_for(nova, "FINE_TUNING", NOVA) == nova
    prompts = arms.records_for(nova, "DISTILLATION", NOVA)
    assert [m["role"] for m in prompts[0]["messages"]] == ["user"] and prompts[0]["system"] == [{"text": "Be brief."}]
    assert formats.parse_record(prompts[1])[1][0][1] == formats.parse_record(nova[1])[1][0][1]
    titan = "amazon.titan-text-express-v1:0:8k"
    cpt = arms.records_for(_ft_records(titan), "CONTINUED_PRE_TRAINING", titan)
    assert cpt == [{"input": f"Doc 1: Item {i} is a widget.\nDoc 2: Widgets are small."} for i in range(3)]


def test_plan_jobs_per_type():
    from utils import jobspec

    data = arms.build_arm_data(["ft_n", "ft_4n"], 1, _ft_records(NOVA, 4))
    common = dict(workshop_id="ws", base_model=NOVA, role_arn="arn:aws:iam::123456789012:role/r", bucket="b",
                  hyperparameters={"epochCount": "2"}, validation_uri="s3://b/v.jsonl", validation_text="v")
    ft = arms.plan_jobs(data, **common)
    assert not any("_" in j.plan.job_name for j, _ in ft)  # jobName allows no underscore
    assert len({j.plan.job_name for j, _ in ft}) == 2 and all(j.plan.validation_uri for j, _ in ft)
    assert [j.records for j, _ in ft] == [1, 4]
    config = jobspec.customization_config("amazon.nova-pro-v1:0")
    dist = arms.plan_jobs(data, **common, customization_type="DISTILLATION", customization_config=config)
    request = dist[0][0].plan.request()
    assert request["customizationConfig"] == config and request["hyperParameters"] == {}
    assert "validationDataConfig" not in request
    assert {j.plan.job_name for j, _ in dist}.isdisjoint({j.plan.job_name for j, _ in ft})
    assert arms.plan_jobs(data, **common)[0][0].plan.job_name == ft[0][0].plan.job_name  # same inputs, same name
    assert arms.plan_jobs(data, **common, generation=1)[0][0].plan.job_name.endswith("-g1")


def test_a_refused_create_fails_that_arm_only():
    bedrock, lines = FakeBedrock(polls=0, fail={"job-ft_n", "refuse"}), []
    done = arms.run_arms(three_jobs(), quota=2, poll_s=0, client=bedrock, log=lines.append, sleep=lambda s: None)
    assert [j.status for j in done] == ["Failed", "Completed", "Completed"]
    assert "refused: bad role" in done[0].failure_message and done[0].job_arn is None


def test_ft_n_3n_is_dropped_only_when_not_asked_for_by_name(capsys):
    from utils.arms import without_missing_synthetic

    chosen = ["base", "ft_n", "ft_4n", "ft_n_3n"]
    assert without_missing_synthetic(chosen, [], "all") == ["base", "ft_n", "ft_4n"]
    assert "ft_n_3n dropped" in capsys.readouterr().out
    assert without_missing_synthetic(chosen, [{"x": 1}], "all") == chosen
    assert without_missing_synthetic(["ft_n_3n"], [], "ft_n_3n") == ["ft_n_3n"]  # build_arm_data refuses it later


def test_waits_start_short_and_back_off_to_poll_s():
    """A sandbox job done in seconds is seen in seconds: waits double from half a second up to poll_s,
    and start short again after each submission (a queued job just got its slot)."""
    bedrock, waits = FakeBedrock(limit=2, polls=8), []
    arms.run_arms(three_jobs(), quota=2, poll_s=60, client=bedrock, log=lambda s: None, sleep=waits.append)
    assert waits[:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    # the 9th poll sees the first two end; the third job is submitted after one more wait, then waits restart
    assert waits[8] == 60 and waits[9] == 0.5 and max(waits) == 60


@pytest.mark.parametrize("preferred, chosen, match", [
    ("base", ["base", "ft_n"], "no custom model"),
    ("ft_2n", ["base", "ft_n"], "not an arm"),
    ("ft_4n", ["base", "ft_n"], "not trained in this run"),
    ("ft_n_3n", ["ft_n", "ft_4n"], "not trained in this run"),
])
def test_deploy_arm_naming_no_trained_arm_is_refused_not_ignored(preferred, chosen, match):
    with pytest.raises(JobSpecError, match=match):
        arms.check_deploy_arm(preferred, chosen)
    results = {arm: {"arm": arm, "status": "Completed"} for arm in chosen}
    with pytest.raises(JobSpecError, match=match):
        arms.deploy_arm(results, preferred)


def test_deploy_arm_default_and_explicit_choice():
    arms.check_deploy_arm("", ["base"])  # nothing asked, nothing to refuse
    arms.check_deploy_arm("ft_4n", ["base", "ft_n", "ft_4n"])
    results = {arm: {"arm": arm} for arm in ("base", "ft_n", "ft_4n")}
    assert arms.deploy_arm(results, "") == "ft_n"
    assert arms.deploy_arm(results, "ft_4n") == "ft_4n"
    assert arms.deploy_arm({"base": {}}, "") is None


def run_params(**changes):
    """04's effective parameters as the runner sees them (notebook defaults), with ``changes``."""
    from utils import runner

    declared = {nb.stem: runner.declared_parameters(nb) for nb in runner.series()}
    return {**runner.effective_parameters({}, declared), **changes}


def test_the_defaults_and_the_readme_replay_pass_the_parameter_check():
    assert arms.check_parameters(run_params()) == NOVA
    replay = run_params(profile_name="seed-2024", arms="base,ft_n", n_originals=32, use_synthetic=False)
    assert arms.check_parameters(replay) == "anthropic.claude-3-haiku-20240307-v1:0:200k"
    from utils import runner

    here = str(runner.NOTEBOOK_DIR)  # the bundled CSV is found: 108 training rows fit 4N = 100 and the replay's 32
    assert arms.check_parameters(run_params(), notebook_dir=here) == NOVA
    assert arms.check_parameters(replay, notebook_dir=here) == "anthropic.claude-3-haiku-20240307-v1:0:200k"
    assert arms.training_pool(run_params(), notebook_dir=here) == 108
    assert arms.training_pool(run_params(dataset_path="tatqa"), notebook_dir=here) is None
    assert arms.check_parameters(run_params(arms="base", epochs=99)) == NOVA  # nothing trained: nothing to refuse
    assert arms.check_parameters(run_params(profile_name="nope")) is None  # 01 names an unknown profile itself


@pytest.mark.parametrize("changes, fragment", [
    ({"epochs": 9}, "epochCount: whole number 1..5"),
    ({"learning_rate": 0.5}, "learningRate: number 1e-06..1e-04"),
    ({"batch_size": 8}, "batchSize is not a hyperparameter"),
    ({"extra_hyperparameters": {"foo": 1}}, "foo is not a hyperparameter"),
    ({"customization_type": "CONTINUED_PRE_TRAINING"}, "Titan Text"),
    ({"customization_type": "DISTILLATION"}, "set distillation_teacher"),
    ({"customization_type": "DISTILLATION", "distillation_teacher": "nova-pro", "region": "us-west-2"}, "runs in us-east-1"),
    ({"customization_type": "DISTILLATION", "distillation_teacher": "llama3-1-70b"}, "not a documented distillation pair"),
    ({"arms": "ft_2n"}, "unknown"),
    ({"deploy_arm": "ft_4n", "arms": "ft_n"}, "not trained in this run"),
    ({"n_originals": 0}, "n_originals"),
    ({"arms": "ft_n,ft_n_3n", "use_synthetic": False}, "use_synthetic=False"),
    ({"n_originals": 28}, "n_originals <= 27"),  # 150 rows - 12 validation - 30 test = 108 = 4 x 27
    ({"n_originals": 20, "sample_size": 100}, "n_originals <= 14"),
    ({"customization_type": "DISTILLATION", "distillation_teacher": "nova-pro", "learning_rate": 2e-5}, "would be ignored"),
    ({"customization_type": "DISTILLATION", "distillation_teacher": "nova-pro", "epochs": 3}, "epochCount"),
    ({"live_panel": "yes"}, "live_panel must be one of"),
    ({"poll_seconds": 0.0}, "poll_seconds must be greater than 0"),
    ({"profile_name": "seed-2024", "n_originals": 32, "arms": "ft_n", "extra_hyperparameters": {"learningRateMultiplier": 3}},
     "0.1..2"),
    ({"profile_name": "seed-2024", "arms": "base,ft_n", "use_synthetic": False}, "at least 32 training records"),
    ({"profile_name": "seed-2024", "arms": "ft_4n", "n_originals": 7}, "n_originals >= 8"),
])
def test_bad_04_parameters_are_refused_with_no_call(changes, fragment):
    from utils import runner

    with pytest.raises(JobSpecError, match=fragment.replace(".", r"\.")):
        arms.check_parameters(run_params(**changes), notebook_dir=str(runner.NOTEBOOK_DIR))


def test_03s_teacher_is_not_04s_distillation_teacher():
    # `teacher` picks 03's synthetic-data teacher (01 and 03 declare it); 04 fine-tunes without a teacher
    assert arms.check_parameters(run_params(teacher="claude-sonnet-4-6")) == NOVA
    from utils import jobspec

    assert jobspec.customization_config("nova-pro") == {
        "distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": "amazon.nova-pro-v1:0"}}}


def test_the_fix_for_an_internal_error_does_not_promise_that_a_plain_rerun_retries():
    # a rerun adopts the failed job by its name (run_arms), so "rerun later" would show the same failure
    fix = arms.likely_fix("An unexpected error occurred. Please try again later.")
    assert "rerun the notebook later" not in fix and "finds this failed job again" in fix


def test_the_estimate_stores_one_custom_model_per_arm():
    student = NOVA
    data = arms.build_arm_data(["ft_n", "ft_4n"], 5, [{"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "user", "content": [{"text": f"q{i}"}]}, {"role": "assistant", "content": [{"text": f"a{i}"}]}]}
        for i in range(20)])
    planned = arms.plan_jobs(data, workshop_id="est", base_model=student, role_arn="arn:aws:iam::1:role/r",
                             bucket="b", hyperparameters={"epochCount": "2"}, validation_uri=None)
    estimate, tokens = arms.estimate_training(planned, "nova-lite", 2, price_overrides={}, region="us-east-1")
    storage = [item for item in estimate.items if item.price_key.startswith("storage_month")]
    assert len(storage) == 1 and storage[0].quantity == 2  # two arms, two custom models, one month each
    training = next(item for item in estimate.items if item.price_key.startswith("train_per_1k"))
    assert tokens > 0 and training.quantity == tokens * 2 / 1000


def test_use_synthetic_false_drops_ft_n_3n_only_from_all():
    assert arms.choose_arms("all", use_synthetic=False) == ["base", "ft_n", "ft_4n"]
    assert arms.choose_arms("ft_n_3n,base", use_synthetic=True) == ["base", "ft_n_3n"]
    with pytest.raises(JobSpecError, match="drop ft_n_3n from arms"):
        arms.choose_arms("ft_n_3n", use_synthetic=False)


def test_arms_asked_for_but_not_submitted_are_reported_not_left_out():
    # a dry run (confirm_spend=False): no job, yet every arm asked for appears, honestly not Completed
    results = arms.arm_results([], {}, ["base", "ft_n", "ft_4n"])
    assert list(results) == ["base", "ft_n", "ft_4n"]
    assert results["base"]["status"] == "NoJob"
    assert {results[a]["status"] for a in ("ft_n", "ft_4n")} == {"NotSubmitted"}
    assert all(results[a]["records"] == 0 and results[a]["best_validation_loss"] is None for a in ("ft_n", "ft_4n"))
    assert arms.deploy_arm(results, "") == "ft_n"  # 04 asks this only when jobs ran; 05/06 refuse a non-Completed arm
    with pytest.raises(Exception, match="did not complete"):
        arms.completed_arm(results, "ft_n", "05_deployment")

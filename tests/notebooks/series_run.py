"""One execution of the series 01 -> 07, shared by test_series.py and test_caller_policy.py.

The series runs once, in order, on one sandbox in its caller-permission mode (``caller_principal``,
``utils/sandbox/caller.py``): every call the notebooks make is evaluated against a role holding
exactly ``iam-policies/notebook-caller.json``, on a fresh account (``model_access="fresh"``) whose
third-party models the caller first calls once, as 01's preflight tells it to. Lifecycles keep the
sandbox's default pace (``time_scale`` 1), so 04 and 05 really wait for their jobs and deployment.

Each notebook's checks (``CHECKS``, and the idempotency reruns of 01 and 04) run right after it, so
they see the account as that notebook left it, whichever test asked for the run first:
test_series.py reports each notebook's outcome and checks, test_caller_policy.py analyses the
requests the caller made. The test harness itself reads the account with a key the caller mode does
not attribute (``ADMIN_KEY``), so its reads are neither gated nor logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import papermill as pm

from utils import judging, report, runner
from utils.state import WorkshopState

NOTEBOOKS = runner.series()
WORKSHOP_ID = "ci"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "WorkshopNotebookCaller"
ADMIN_KEY = "admin"  # not in caller_access_keys: requests signed with it are not evaluated
# Small sizes for CI; spend opt-ins on (the sandbox bills nothing); fast polling.
CI_PARAMETERS: dict[str, dict] = {
    "01_permissions": {"workshop_id": WORKSHOP_ID},
    "02_data_preparation": {"workshop_id": WORKSHOP_ID, "test_size": 8},
    "03_synthetic_data": {"workshop_id": WORKSHOP_ID, "pairs_per_sample": 3, "confirm_spend": True},
    "04_fine_tuning": {"workshop_id": WORKSHOP_ID, "epochs": 2, "confirm_spend": True, "poll_seconds": 0.2},
    "05_deployment": {"workshop_id": WORKSHOP_ID, "confirm_spend": True, "poll_seconds": 0.2},
    "06_evaluation": {"workshop_id": WORKSHOP_ID, "max_examples": 6, "confirm_spend": True,
                      "use_evaluation_job": True},
    "07_cleanup": {"workshop_id": WORKSHOP_ID},
}


def clients(region: str = REGION) -> dict:
    """The harness's S3, IAM and Bedrock clients (signed as the admin: never gated, never logged)."""
    session = boto3.Session(region_name=region, aws_access_key_id=ADMIN_KEY, aws_secret_access_key=ADMIN_KEY)
    return {name: session.client(name) for name in ("s3", "iam", "bedrock")}


def execute(notebook: Path, out_dir: Path, parameters: dict) -> dict:
    declared = runner.declared_parameters(notebook)
    assert parameters.keys() <= declared.keys(), f"undeclared: {parameters.keys() - declared.keys()}"
    output = out_dir / notebook.name
    pm.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name=runner.KERNEL,
        cwd=str(notebook.parent), execution_timeout=120, progress_bar=False,
    )
    return report.collect(output)


def state() -> WorkshopState:
    return WorkshopState.load(WORKSHOP_ID)


def account_snapshot() -> dict:
    """Roles, managed-policy versions, buckets and bucket settings: what a rerun of 01 must not change."""
    c = clients()
    buckets = sorted(b["Name"] for b in c["s3"].list_buckets()["Buckets"])
    return {
        "roles": sorted((r["RoleName"], r["RoleId"]) for r in c["iam"].list_roles()["Roles"]),
        "policies": sorted((p["PolicyName"], p["DefaultVersionId"]) for p in c["iam"].list_policies(Scope="Local")["Policies"]),
        "buckets": buckets,
        "bucket_policies": [c["s3"].get_bucket_policy(Bucket=b)["Policy"] for b in buckets],
        "ledger": [(e.kind, e.identifier) for e in state().ledger],
    }


def check_01(recorded: dict) -> None:
    st = state()
    c = clients(st.region)
    assert c["s3"].get_bucket_encryption(Bucket=st.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    block = c["s3"].get_public_access_block(Bucket=st.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert "aws:SecureTransport" in c["s3"].get_bucket_policy(Bucket=st.bucket)["Policy"]
    role = c["iam"].get_role(RoleName=st.roles["customization"].rsplit("/", 1)[-1])["Role"]
    trust = json.dumps(role["AssumeRolePolicyDocument"])
    assert "bedrock.amazonaws.com" in trust and "aws:SourceAccount" in trust and "aws:SourceArn" in trust
    assert recorded["backend"] == "sandbox"


def check_02(recorded: dict) -> None:
    st = state()
    keys = {o["Key"] for o in clients(st.region)["s3"].list_objects_v2(Bucket=st.bucket)["Contents"]}
    assert {"datasets/train.jsonl", "datasets/validation.jsonl", "datasets/test.jsonl"} <= keys
    assert recorded["train_records"] > 0


def check_03(recorded: dict) -> None:
    st = state()

    def lines(split: str) -> int:
        bucket, key = st.datasets[split].removeprefix("s3://").split("/", 1)
        return len(clients(st.region)["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines())

    originals = lines("raw_train")
    assert recorded["synthetic_pairs"] > 0
    assert recorded["synthetic_requested"] == 3 * originals  # 3 per original training sample
    assert recorded["synthetic_pairs"] + sum(recorded["synthetic_removed"].values()) == recorded["synthetic_parsed"]
    assert recorded["synthetic_parsed"] <= recorded["synthetic_requested"]
    assert lines("train_augmented") == originals + recorded["synthetic_pairs"]


def check_04(recorded: dict) -> None:
    st = state()
    bedrock = clients(st.region)["bedrock"]
    jobs = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [j["status"] for j in jobs] == ["Completed"] * 3  # ft_n, ft_4n, ft_n_3n; base has no job
    arms = recorded["arms"]
    assert set(arms) == {"base", "ft_n", "ft_4n", "ft_n_3n"} and arms["base"]["status"] == "NoJob"
    for arm in ("ft_n", "ft_4n", "ft_n_3n"):
        assert arms[arm]["status"] == "Completed" and arms[arm]["final_training_loss"] > 0
        assert arms[arm]["best_validation_loss"] > 0
    assert arms["ft_4n"]["records"] == 4 * arms["ft_n"]["records"]
    assert arms["ft_n"]["records"] < arms["ft_n_3n"]["records"] <= arms["ft_4n"]["records"]
    assert st.get("arms") == arms
    model = bedrock.get_custom_model(modelIdentifier=st.get("custom_model_arn"))
    assert model["modelStatus"] == "Active"
    assert len(recorded["loss_curve"]["training_loss"]) > 1


def check_05(recorded: dict) -> None:
    st = state()
    deployment = clients(st.region)["bedrock"].get_custom_model_deployment(
        customModelDeploymentIdentifier=st.get("endpoint_arn"))
    assert deployment["status"] == "Active"
    assert recorded["deployment_output_tokens"] > 0
    assert recorded["stream_output_tokens"] > 0  # the streamed answer (section 3) reported its usage
    assert set(st.get("serving")) == {"ft_n", "ft_4n", "ft_n_3n"}  # every completed arm is served
    assert st.get("endpoint_arn") == st.get("serving")[st.get("deploy_arm")]
    assert recorded["side_by_side_rows"] > 0


def check_06(recorded: dict) -> None:
    scores = report.rows(recorded["evaluation_scores"])
    assert list(scores[0])[:3] == ["model", "n", "token_f1"]
    assert all(0 <= row["token_f1"] <= 100 for row in scores)
    served = {"base", "comparison", *state().get("serving")}  # 05 serves every completed arm; each answers
    f1 = recorded["f1"]
    assert {(row["arm"], row["dataset"]) for row in f1} == {(a, d) for a in served for d in ("aws_docs_qa", "tatqa")}
    for row in f1:
        assert set(row) == {"arm", "dataset", "f1", "ci_low", "ci_high", "n"}
        assert 0 <= row["ci_low"] <= row["f1"] <= row["ci_high"] <= 100
        assert row["n"] == (6 if row["dataset"] == "aws_docs_qa" else 12)  # max_examples, tatqa_examples
    # Base stand-ins differ by model size: the larger comparison model follows TAT-QA's answer format.
    by = {(row["arm"], row["dataset"]): row["f1"] for row in f1}
    assert by["comparison", "tatqa"] > by["base", "tatqa"]
    judges = recorded["judges"]
    assert {row["judge"] for row in judges} == {"Anthropic Claude Sonnet 4.6", "Meta Llama 3.3 70B Instruct"}
    for row in judges:
        assert set(row) == {"judge", "a", "b", "win_rate", "wilson_low", "wilson_high", "tie_rate",
                            "position_disagreement", "parse_failures", "n"}
        assert row["n"] == 6 and row["parse_failures"] == 0
        assert 0 <= row["tie_rate"] <= 100 and 0 <= row["position_disagreement"] <= 100
        if row["win_rate"] is not None:
            assert row["wilson_low"] <= row["win_rate"] <= row["wilson_high"]
    # Every comparison whose two arms were served (05 serves every completed arm) is judged by each judge.
    assert {(row["a"], row["b"]) for row in judges} == set(judging.available_comparisons(served))
    human = recorded["human"]  # the human check covers the first comparison, once per judge
    assert sorted(row["judge"] for row in human) == sorted({row["judge"] for row in judges})
    for row in human:
        assert set(row) == {"judge", "percent_agreement", "kappa", "n"} and row["n"] == 6
        assert 0 <= row["percent_agreement"] <= 100


def check_07(recorded: dict) -> None:
    assert recorded["cleanup_remaining"] == []
    c = clients()
    assert not [b for b in c["s3"].list_buckets()["Buckets"] if b["Name"].startswith(f"bedrock-ws-{WORKSHOP_ID}-")]
    assert not c["bedrock"].list_custom_models()["modelSummaries"]
    assert not c["bedrock"].list_custom_model_deployments()["modelDeploymentSummaries"]


CHECKS: dict[str, Callable[[dict], None]] = {nb.stem: globals()[f"check_{nb.stem[:2]}"] for nb in NOTEBOOKS}


def check_with_reruns(notebook: Path, out_dir: Path, recorded: dict) -> None:
    """A notebook's checks, then (01, 04) its idempotency rerun: what test_series asserts per notebook."""
    CHECKS[notebook.stem](recorded)
    if notebook.stem == "01_permissions":
        # Idempotency: a rerun changes nothing (same roles, policy versions, buckets, settings).
        before = account_snapshot()
        execute(notebook, out_dir, CI_PARAMETERS[notebook.stem])
        assert account_snapshot() == before
    if notebook.stem == "04_fine_tuning":
        # Idempotency: a rerun finds the same job, creates nothing, and records the same model.
        before = state().get("custom_model_arn")
        execute(notebook, out_dir, CI_PARAMETERS[notebook.stem])
        CHECKS[notebook.stem](report.collect(out_dir / notebook.name))
        assert state().get("custom_model_arn") == before


def subscribe_as_the_caller() -> None:
    """What 01's preflight tells a fresh account to do first: call each third-party model of the run
    once, as the caller (that call starts the Marketplace subscription and needs the caller's
    aws-marketplace actions; https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html)."""
    from utils import aws, models, preflight

    plan = preflight.plan_run("current", use_judges=True, use_comparison=True)
    runtime = aws.client("bedrock-runtime", REGION)
    for key in dict.fromkeys(plan.roles.values()):
        spec = models.get(key)
        if spec.provider.lower() != "amazon":
            runtime.converse(modelId=spec.invocation_id(), inferenceConfig={"maxTokens": 1},
                             messages=[{"role": "user", "content": [{"text": "ping"}]}])


def set_caller_policy(iam_client, policy: dict) -> list[str]:
    """Give the caller role ``policy`` as an administrator does (README section 4): the document is
    larger than IAM's size quotas, so it goes on as the customer managed policies of
    ``iam.split_policy`` (the sandbox refuses the whole document, as IAM does). Any earlier parts
    are detached and deleted first. Returns the attached policies' ARNs."""
    from utils import iam

    for attached in iam_client.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]:
        if attached["PolicyName"].startswith(iam.CALLER_POLICY_NAME):
            iam_client.detach_role_policy(RoleName=ROLE_NAME, PolicyArn=attached["PolicyArn"])
            iam_client.delete_policy(PolicyArn=attached["PolicyArn"])
    arns = []
    for number, part in enumerate(iam.split_policy(policy), start=1):
        arn = iam_client.create_policy(PolicyName=f"{iam.CALLER_POLICY_NAME}-{number}",
                                       PolicyDocument=json.dumps(part))["Policy"]["Arn"]
        iam_client.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=arn)
        arns.append(arn)
    return arns


def admin_client(url: str, service: str):
    """A client signed with a key the caller mode does not attribute (the harness acts as admin)."""
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id=ADMIN_KEY, aws_secret_access_key=ADMIN_KEY)


class SeriesRun:
    """01 -> 07 as the caller role, each notebook executed once and checked right after it.

    ``outcome(stem)`` runs the series up to that notebook if needed and re-raises what failed there
    (its execution or its checks). An execution failure stops the series: later notebooks report it.
    ``complete()`` runs what is left; the caller log of the series is then ``log`` (01 -> 07 with
    the reruns of 01 and 04), ``marks[stem]`` its slice per notebook, ``failure`` the first
    execution failure or None.
    """

    def __init__(self, server: Any, environment: dict[str, str], out_dir: Path,
                 policy: dict, role_arn: str) -> None:
        self.server, self.environment, self.out_dir = server, environment, out_dir
        self.policy, self.role_arn = policy, role_arn
        self.marks: dict[str, tuple[int, int]] = {}
        self.errors: dict[str, BaseException | None] = {}
        self.failure: str | None = None
        self.log: list = []

    @contextmanager
    def env(self) -> Iterator[None]:
        """The series' environment (sandbox URL, caller key, state folder) for the duration."""
        saved = dict(os.environ)
        os.environ.update(self.environment)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _run(self, notebook: Path) -> None:
        caller_log = self.server.app.caller.log
        start = len(caller_log)
        try:
            if self.failure is not None:
                self.errors[notebook.stem] = AssertionError(f"not run: the series stopped at {self.failure}")
                return
            with self.env():
                try:
                    recorded = execute(notebook, self.out_dir, CI_PARAMETERS[notebook.stem])
                except Exception as exc:  # noqa: BLE001 - stored, and re-raised by outcome()
                    self.failure = f"{notebook.stem}: {getattr(exc, 'ename', type(exc).__name__)}: " \
                                   f"{getattr(exc, 'evalue', exc)}"
                    self.errors[notebook.stem] = exc
                    return
                try:
                    check_with_reruns(notebook, self.out_dir, recorded)
                except Exception as exc:  # noqa: BLE001 - stored, and re-raised by outcome()
                    self.errors[notebook.stem] = exc
                    return
            self.errors[notebook.stem] = None
        finally:
            self.marks[notebook.stem] = (start, len(caller_log))
            if notebook.stem == NOTEBOOKS[-1].stem:
                self.log = list(caller_log)

    def upto(self, stem: str) -> None:
        for notebook in NOTEBOOKS:
            if notebook.stem not in self.errors:
                self._run(notebook)
            if notebook.stem == stem:
                return

    def outcome(self, stem: str) -> None:
        self.upto(stem)
        error = self.errors[stem]
        if error is not None:
            raise error

    def complete(self) -> SeriesRun:
        self.upto(NOTEBOOKS[-1].stem)
        return self


@contextmanager
def caller_series(out_dir: Path, state_dir: Path) -> Iterator[SeriesRun]:
    """A sandbox in caller mode with the caller role set up; the series runs lazily (``SeriesRun``)."""
    from utils import iam, sandbox

    with sandbox.start() as server:
        iam_client = admin_client(server.url, "iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role_arn = iam_client.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        policy = iam.caller_policy(REGION, ACCOUNT, role_arn)
        set_caller_policy(iam_client, policy)
        knobs: dict = {"caller_principal": role_arn}
        if any(a.startswith("aws-marketplace:") for a in iam.policy_actions(policy)):
            # The policy grants what a fresh account's first call of a third-party model needs:
            # run as a fresh account (Anthropic's form already in, subscriptions instant).
            knobs.update(model_access="fresh", anthropic_use_case_submitted=True,
                         marketplace_subscription_seconds=0)
        server.bedrock.configure(knobs)
        series = SeriesRun(server, runner.sandbox_environment(server.url, state_dir), out_dir, policy, role_arn)
        if knobs.get("model_access") == "fresh":
            with series.env():
                subscribe_as_the_caller()
        yield series

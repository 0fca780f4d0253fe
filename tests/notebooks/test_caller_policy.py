"""The series runs as a role holding exactly ``iam-policies/notebook-caller.json``, and needs all of it.

The sandbox's caller-permission mode (``caller_principal`` knob, ``utils/sandbox/caller.py``)
evaluates every call the notebooks make (they sign with the sandbox's default key, which the mode
attributes to the role) against the role's policies, condition keys included.

How the check is done (to stay within a minute):

1. **One real run**: 01–07 execute once (papermill, CI sizes; the run test_series.py checks notebook
   by notebook, ``series_run.py``) as a role whose only policy is the rendered caller policy, on a
   fresh account (``model_access="fresh"``) whose third-party models the caller first calls once, as
   01's preflight tells it to (that call starts the Marketplace subscription). Every step must pass.
   The sandbox logs every evaluated request (each check's action, resource and request context).
2. **Every statement, offline**: for each statement of the policy, the logged requests are
   re-evaluated against the policy without it (``caller.reevaluate``, the same evaluator the run
   used). Some request that the full policy allowed must be denied, i.e. some step would fail with
   AccessDenied. The statements the CI run cannot need are listed in ``NOT_EXERCISED`` with the
   reason; the test asserts that list is exactly what the run found unneeded, so a statement that
   becomes needed, or one that stops being needed, fails it.
3. **One real rerun**: a statement sampled with a fixed seed among those notebook 01 needs is removed
   from the role's policy, and 01 is rerun for real: it must fail, with AccessDenied in its output
   (or with its preflight's "caller permissions: denied", when the simulation catches it first).
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path

import papermill as pm
import pytest

from tests.notebooks.series_run import (
    CI_PARAMETERS,
    NOTEBOOKS,
    SeriesRun,
    admin_client,
    set_caller_policy,
)
from utils import runner
from utils.sandbox import caller

SEED = 8

# Statements of notebook-caller.json that no request of the CI run (01-07 on the sandbox's defaults)
# needs, by Sid, and why. Keep it exact: the test fails when it disagrees with the run.
NOT_EXERCISED = {
    "BedrockReadSystemInferenceProfiles": "no notebook calls GetInferenceProfile (utils lists profiles instead)",
    "BedrockStopOwnCustomizationJobs": "only 07 stops a customization job, one still running; CI's 04 waits for its job",
    "BedrockProvisionedThroughput": "the Provisioned Throughput path of 05; CI deploys Nova on demand",
    "BedrockDeleteOwnProvisionedThroughput": "07 deletes Provisioned Throughput only if 05 bought some; CI does not",
    "BedrockStopOwnBatchInferenceJobs": "only 07 stops a batch inference job, one still running; CI leaves none",
    "BedrockTagOwnResources": "tags are set at creation; no notebook calls TagResource",
    "BedrockUntagOwnResources": "no notebook calls UntagResource",
    "BedrockCreateModelImportJob": "05's Custom Model Import section is off by default",
    "BedrockReadModelImportJobs": "05's Custom Model Import section is off by default",
    # Deny guards: removing one denies nothing, so no run can "need" it. The test below checks
    # instead that each denies what it names and that no step of the run tried it.
    "NeverRewriteOrRemoveTheBoundary": "a Deny guard on the service roles' permissions boundary policy",
    "NeverLiftTheBoundaryFromOwnRoles": "a Deny guard on removing the boundary from the workshop's roles",
    "WhoAmI": "sts:GetCallerIdentity needs no permission "
              "(https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)",
}


def _execute(notebook: Path, out_dir: Path) -> None:
    pm.execute_notebook(
        str(notebook), str(out_dir / notebook.name), parameters=CI_PARAMETERS[notebook.stem],
        kernel_name=runner.KERNEL, cwd=str(notebook.parent), execution_timeout=120, progress_bar=False,
    )


@pytest.fixture(scope="module")
def run(series: SeriesRun) -> dict:
    """The series run to its end (if test_series.py has not already), and its caller log."""
    series.complete()
    return {"server": series.server, "policy": series.policy, "role_arn": series.role_arn,
            "marks": series.marks, "log": series.log, "failure": series.failure, "series": series}


def test_series_passes_as_the_caller_role(run):
    assert run["failure"] is None, run["failure"]
    log = run["log"]
    assert log and {r.service for r in log} >= {"bedrock", "iam", "s3"}
    assert not [r for r in log if not r.allowed and r.service == "bedrock"], "a Bedrock call was denied"
    # The run really was evaluated: the role's own calls (creating service roles, passing them).
    actions = {c.action for r in log for c in r.checks}
    assert {"iam:CreateRole", "iam:PassRole", "bedrock:CreateModelCustomizationJob", "bedrock:InvokeModel",
            "s3:PutObject"} <= actions


def _without(policy: dict, index: int) -> dict:
    reduced = copy.deepcopy(policy)
    del reduced["Statement"][index]
    return reduced


def test_every_statement_is_needed_by_some_step(run):
    assert run["failure"] is None, run["failure"]
    policy, log, role = run["policy"], run["log"], run["role_arn"]
    assert not caller.reevaluate(policy, log, role), "the offline evaluation must agree with the run"
    unneeded = [
        st.get("Sid", f"#{i}") for i, st in enumerate(policy["Statement"])
        if not caller.reevaluate(_without(policy, i), log, role)
    ]
    assert set(unneeded) == set(NOT_EXERCISED), (
        f"statements no step of 01-07 needs: {unneeded}; listed in NOT_EXERCISED: {sorted(NOT_EXERCISED)}")


def test_deny_guards_deny_what_they_name_and_no_step_tries_it(run):
    from utils.sandbox.iam_simulate import decide

    policy, log = run["policy"], run["log"]
    guards = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
    assert {st["Sid"] for st in guards} <= set(NOT_EXERCISED)
    for st in guards:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in actions:
            for resource in resources:
                example = resource.replace("*", "example")
                assert decide([policy], action, example, {}) == "explicitDeny", (st["Sid"], action, example)
        tried = [r.operation for r in log for c in r.checks
                 if decide([{"Statement": [st]}], c.action, c.resource, c.ctx()) == "explicitDeny"]
        if st["Sid"] == "NeverRewriteOrRemoveTheBoundary":
            # 07 offers to delete the shared boundary once no role uses it; under this policy the call is
            # denied and 07 keeps the (free) boundary and prints the administrator's command instead.
            tried = [op for op in tried if op != "DeletePolicy"]
        assert not tried, (st["Sid"], tried)


def test_removing_a_sampled_statement_fails_a_real_rerun_with_access_denied(run, tmp_path):
    assert run["failure"] is None, run["failure"]
    policy, log, role = run["policy"], run["log"], run["role_arn"]
    start, end = run["marks"]["01_permissions"]
    needed_by_01 = [i for i in range(len(policy["Statement"]))
                    if caller.reevaluate(_without(policy, i), log[start:end], role)]
    assert needed_by_01
    index = random.Random(SEED).choice(needed_by_01)
    server = run["server"]
    set_caller_policy(admin_client(server.url, "iam"), _without(policy, index))
    try:
        with run["series"].env(), pytest.raises(pm.PapermillExecutionError) as exc:
            os.environ["WORKSHOP_STATE_DIR"] = str(tmp_path / "state")
            _execute(NOTEBOOKS[0], tmp_path)
        text = f"{exc.value.ename} {exc.value.evalue} {''.join(exc.value.traceback)}"
        # Denied by the service, or found first by 01's preflight (its SimulatePrincipalPolicy check).
        assert any(s in text for s in ("AccessDenied", "not authorized to perform", "caller permissions: denied")), \
            text[-2000:]
    finally:
        set_caller_policy(admin_client(server.url, "iam"), policy)

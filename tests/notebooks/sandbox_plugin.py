"""pytest plugin (``-p tests.notebooks.sandbox_plugin``): one sandbox per session for nbval.

nbval's cell items are plain ``pytest.Item``s, so fixtures never run for them; the
sandbox must start in ``pytest_sessionstart``
(https://docs.pytest.org/en/stable/reference/reference.html#pytest.hookspec.pytest_sessionstart).
Every kernel inherits the endpoint and dummy credentials through the environment.

The notebooks run exactly as committed, with their default parameters, which must
spend nothing: at the end of the session the plugin fails the run if the sandbox
served any model call or holds any billable resource or job.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path

_server = None


def pytest_sessionstart(session):
    global _server
    from utils import sandbox
    from utils.costs import CONFIRM_SPEND_ENV
    from utils.runner import sandbox_environment

    _server = sandbox.start()
    state_dir = Path(tempfile.mkdtemp(prefix="workshop-nbval-"))
    os.environ.update(sandbox_environment(_server.url, state_dir))
    # The committed defaults are under test: the by-hand opt-in (`make lab`) must not leak in.
    os.environ.pop(CONFIRM_SPEND_ENV, None)


def spending(url: str) -> list[str]:
    """What the default parameters bought: model calls, jobs, models, deployments, throughput."""
    import boto3

    with urllib.request.urlopen(f"{url}/_sandbox/usage") as response:
        usage = json.load(response)["models"]
    found = [f"{u['calls']} runtime call(s) to {model}" for model, u in usage.items()]
    bedrock = boto3.client("bedrock", region_name="us-east-1", endpoint_url=url)
    found += [f"customization job {j['jobName']}" for j in
              bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]]
    found += [f"custom model {m['modelName']}" for m in bedrock.list_custom_models()["modelSummaries"]]
    found += [f"deployment {d['customModelDeploymentName']}" for d in
              bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]]
    found += [f"provisioned throughput {p['provisionedModelName']}" for p in
              bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]]
    return found


def pytest_sessionfinish(session, exitstatus):
    if _server is None:
        return
    try:
        if exitstatus == 0 and (bought := spending(_server.url)):
            print("\nThe committed default parameters spent money (they must not):\n  " + "\n  ".join(bought))
            session.exitstatus = 1
    finally:
        _server.stop()

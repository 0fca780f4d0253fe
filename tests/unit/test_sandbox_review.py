"""Sandbox regressions from the code review: each test failed before its fix."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_control import job_kwargs
from tests.unit.test_sandbox_support import (
    Env,
    sandbox_fixture,
    unique,
    wait_for,
)

_sandbox = sandbox_fixture()


def _slow_job(env: Env, **kwargs: object) -> tuple[str, str]:
    """A customization job created at time_scale 1 (about 2-4 s), writing to its own output bucket."""
    out_bucket = env.bucket()
    env.configure(time_scale=1.0)
    try:
        br = env.client("bedrock")
        arn = br.create_model_customization_job(
            **job_kwargs(env, outputDataConfig={"s3Uri": f"s3://{out_bucket}/out/"}, **kwargs)
        )["jobArn"]
    finally:
        env.configure(time_scale=0.05)
    return arn, out_bucket


def _delete_bucket(env: Env, bucket: str) -> None:
    s3 = env.client("s3")
    for key in env.keys(bucket):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


# ---- 1. one resource's failure must not break every request ----------------------------------


def test_output_bucket_deleted_mid_training_fails_only_that_job(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    arn, out_bucket = _slow_job(sandbox)
    wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn)["statusDetails"]["trainingDetails"],
             "status", ("InProgress",))
    _delete_bucket(sandbox, out_bucket)
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status",
                   ("Completed", "Failed", "Stopped"))
    assert job["status"] == "Failed"
    assert job["failureMessage"].startswith("Amazon S3 perms missing (PutObject): ")
    assert out_bucket in job["failureMessage"]
    assert "outputModelArn" not in job
    # Unrelated requests keep working.
    assert sandbox.client("bedrock").list_foundation_models()["modelSummaries"]
    assert br.list_model_customization_jobs()["modelCustomizationJobSummaries"]


def test_output_bucket_deleted_mid_batch_fails_only_that_batch(sandbox: Env) -> None:
    bucket, out_bucket = sandbox.bucket(), sandbox.bucket()
    records = [
        {"recordId": f"r{i}", "modelInput": {"messages": [{"role": "user", "content": [{"text": f"Hi {i}?"}]}]}}
        for i in range(3)
    ]
    src = sandbox.put_jsonl(bucket, "batch/in.jsonl", records)
    br = sandbox.client("bedrock")
    sandbox.configure(time_scale=1.0)
    try:
        arn = br.create_model_invocation_job(
            jobName=unique("batch"), roleArn=sandbox.role(), modelId="amazon.nova-lite-v1:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": src}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{out_bucket}/out/"}},
        )["jobArn"]
    finally:
        sandbox.configure(time_scale=0.05)
    wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status", ("InProgress",))
    _delete_bucket(sandbox, out_bucket)
    job = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status",
                   ("Completed", "PartiallyCompleted", "Failed", "Stopped"))
    assert job["status"] == "Failed"
    assert job["message"].startswith("Amazon S3 perms missing (PutObject): ")
    assert sandbox.client("bedrock").list_foundation_models()["modelSummaries"]


# ---- 2. statusDetails of a stopped job ------------------------------------------------------------


def test_stopped_job_phases_stay_stopped_and_before_end_time(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    arn, _ = _slow_job(sandbox)
    br.stop_model_customization_job(jobIdentifier=arn)  # during validation (the first 0.3 s)
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Stopped",))
    time.sleep(max(0.0, job["creationTime"].timestamp() + 0.8 - time.time()))  # past data processing's end
    job = br.get_model_customization_job(jobIdentifier=arn)
    details = job["statusDetails"]
    assert details["validationDetails"]["status"] == "Stopped"
    assert details["dataProcessingDetails"]["status"] == "NotStarted"
    assert details["trainingDetails"]["status"] == "NotStarted"
    for entry in details.values():
        if "lastModifiedTime" in entry:
            assert entry["lastModifiedTime"] <= job["endTime"]
    summary = br.list_model_customization_jobs(nameContains=job["jobName"])["modelCustomizationJobSummaries"][0]
    assert summary["statusDetails"]["dataProcessingDetails"]["status"] == "NotStarted"


# ---- 3. a deleted custom model frees its name -------------------------------------------------------


def test_custom_model_name_reusable_after_delete(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    name = unique("model")
    arn = br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed"
    with pytest.raises(ClientError, match="currently in use"):
        br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))
    br.delete_custom_model(modelIdentifier=name)
    again = br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))["jobArn"]
    assert wait_for(lambda: br.get_model_customization_job(jobIdentifier=again), "status",
                    ("Completed", "Failed"))["status"] == "Completed"


# ---- 4. reset restarts the fault streams ------------------------------------------------------------


def _fault_sequence(env: Env, n: int = 12) -> list[str]:
    rt = env.client("bedrock-runtime")
    out = []
    for i in range(n):
        try:
            rt.converse(modelId="amazon.nova-lite-v1:0",
                        messages=[{"role": "user", "content": [{"text": f"Question {i}?"}]}])
            out.append("ok")
        except ClientError as exc:
            out.append(exc.response["Error"]["Code"])
    return out


def test_reset_makes_seeded_faults_reproducible(sandbox: Env) -> None:
    from utils import sandbox as api

    sandbox.configure(faults={"service_unavailable_rate": 0.5, "seed": 7, "rpm": 100, "burst": 1.0})
    try:
        first = _fault_sequence(sandbox)
        api.reset(sandbox.url)
        second = _fault_sequence(sandbox)
        assert "ok" in first and "ServiceUnavailableException" in first
        assert second == first
        # The RPM bucket restarts too: a 13th call within the minute passes only after a reset.
        api.reset(sandbox.url)
        sandbox.configure(faults={"service_unavailable_rate": 0.0, "rpm": 12, "burst": 1.0})
        assert _fault_sequence(sandbox) == ["ok"] * 12
        api.reset(sandbox.url)
        assert _fault_sequence(sandbox, 1) == ["ok"]
    finally:
        sandbox.configure(faults={"profile": "off"})


# ---- 5. record limits across training + validation --------------------------------------------------


def _llama_job(env: Env, train: int, validation: int) -> dict:
    from tests.unit.test_sandbox_control import LLAMA
    from tests.unit.test_sandbox_support import prompt_completion

    bucket = env.bucket("us-west-2")
    br = env.client("bedrock", "us-west-2")
    extra: dict = {}
    if validation:
        val = env.put_jsonl(bucket, "data/val.jsonl", [prompt_completion(1000 + i) for i in range(validation)],
                            "us-west-2")
        extra["validationDataConfig"] = {"validators": [{"s3Uri": val}]}
    arn = br.create_model_customization_job(**job_kwargs(
        env, region="us-west-2", base=LLAMA, records=[prompt_completion(i) for i in range(train)],
        validation=False, hyperParameters={"epochCount": "1"}, **extra,
    ))["jobArn"]
    return wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))


def test_llama_record_minimum_counts_training_plus_validation(sandbox: Env) -> None:
    assert _llama_job(sandbox, 60, 50)["status"] == "Completed"
    job = _llama_job(sandbox, 60, 30)
    assert job["status"] == "Failed"
    assert job["failureMessage"] == (
        "The training and validation datasets have 90 records in total; at least 100 are required"
    )


def test_validate_dataset_default_still_checks_each_file() -> None:
    import json

    from tests.unit.test_sandbox_support import prompt_completion
    from utils.validate_dataset import check_combined_counts, validate_bytes, validate_records

    llama = "meta.llama3-1-8b-instruct-v1:0:128k"
    records = [prompt_completion(i) for i in range(60)]
    assert not validate_records(records, llama).ok  # the CLI's per-file behaviour is unchanged
    data = "\n".join(json.dumps(r) for r in records).encode()
    assert validate_bytes(data, llama, combined_counts=True).ok
    assert not check_combined_counts(llama, 60, 50)
    assert check_combined_counts(llama, 9_000, 1_500)[0].bedrock.endswith("at most 10000 are allowed")


# ---- 6. a LEGACY base model makes its customizable variants LEGACY ------------------------------------


def test_legacy_base_marks_variants_and_refuses_their_pt(sandbox: Env) -> None:
    from tests.unit.test_sandbox_control import LLAMA

    west = sandbox.client("bedrock", "us-west-2")
    custom = _llama_job(sandbox, 100, 0)["outputModelArn"]
    sandbox.configure(legacy_models={"meta.llama3-1-8b-instruct-v1:0": {"legacyTime": "2026-11-01"}})
    try:
        lifecycle = west.get_foundation_model(modelIdentifier=LLAMA)["modelDetails"]["modelLifecycle"]
        assert lifecycle["status"] == "LEGACY" and "legacyTime" in lifecycle
        for model_id in (LLAMA, custom):
            with pytest.raises(ClientError, match="Legacy"):
                west.create_provisioned_model_throughput(
                    modelUnits=1, provisionedModelName=unique("pt"), modelId=model_id, commitmentDuration="OneMonth")
    finally:
        sandbox.configure(legacy_models={})


# ---- 7. stand-in fine-tuned models follow what training did ------------------------------------------


def _templated(i: int) -> dict:
    return {
        "prompt": f"Context: The revenue of segment {i} in 2019 was {i * 7} million dollars.\n"
                  f"Question: What was the revenue of segment {i} in 2019?",
        "completion": f"Answer: {i * 7}\nScale: million",
    }


def _custom_behaviour(env: Env, region: str, arn: str):  # noqa: ANN202 - standins.ModelBehaviour
    bedrock = env.server.bedrock
    model = bedrock.models.find(region, arn)
    return model, bedrock.runtime.target(model, region, "test").behaviour


def test_family_default_hyperparameters_drive_effective_epochs() -> None:
    from utils import models as registry
    from utils.sandbox.standins import ModelBehaviour, effective_epochs

    llama = "meta.llama3-1-8b-instruct-v1:0:128k"
    default_epochs = float(registry.default_hyperparameters(llama)["epochCount"])
    assert effective_epochs(ModelBehaviour(model_id=llama, kind="custom")) == pytest.approx(default_epochs)


def test_diverging_learning_rate_does_not_improve_adherence(sandbox: Env) -> None:
    from tests.unit.test_sandbox_control import LLAMA
    from utils.sandbox import bodies, standins

    west = sandbox.client("bedrock", "us-west-2")
    models = {}
    for label, lr in (("default", "0.0001"), ("high", "0.01")):
        arn = west.create_model_customization_job(**job_kwargs(
            sandbox, region="us-west-2", base=LLAMA, records=[_templated(i) for i in range(100)], validation=False,
            hyperParameters={"epochCount": "3", "learningRate": lr},
        ))["jobArn"]
        job = wait_for(lambda arn=arn: west.get_model_customization_job(jobIdentifier=arn), "status",
                       ("Completed", "Failed"))
        models[label] = _custom_behaviour(sandbox, "us-west-2", job["outputModelArn"])
    (default_model, default), (high_model, high) = models["default"], models["high"]
    assert high_model.training["diverged"] and not default_model.training["diverged"]
    assert high_model.training["loss_ratio"] > default_model.training["loss_ratio"]
    assert standins.style_adherence(high) < standins.style_adherence(default)
    prompt = bodies.Prompt(system="", messages=[("user", "Context: Sales of the Cloud unit in 2021 were 812 million "
                                                         "dollars.\nQuestion: What were the Cloud unit's sales in 2021?")],
                           max_tokens=300)
    assert standins.generate(prompt, default).text.startswith("Answer: ")
    assert not standins.generate(prompt, high).text.startswith("Answer: ")
    # The retrieval index and style are built once and shared by every call.
    assert default.index is not None and _custom_behaviour(sandbox, "us-west-2", default_model.arn)[1].index is default.index


def test_tiny_dataset_adheres_less(sandbox: Env) -> None:
    from tests.unit.test_sandbox_support import conversation
    from utils.sandbox import standins

    br = sandbox.client("bedrock")
    adherence = {}
    for n in (8, 40):
        arn = br.create_model_customization_job(**job_kwargs(
            sandbox, records=[conversation(i) for i in range(n)], validation=False,
            hyperParameters={"epochCount": "2"},
        ))["jobArn"]
        job = wait_for(lambda arn=arn: br.get_model_customization_job(jobIdentifier=arn), "status",
                       ("Completed", "Failed"))
        model, behaviour = _custom_behaviour(sandbox, "us-east-1", job["outputModelArn"])
        assert model.training["records"] == n and model.training["steps_run"] <= model.training["steps_planned"]
        adherence[n] = standins.style_adherence(behaviour)
    assert adherence[8] < adherence[40]


# ---- 8. batch records run outside the global lock -----------------------------------------------------


def test_running_batch_job_does_not_stall_other_requests(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch records run while the global lock is free, so other requests never wait on a batch.

    Checked without timing (timing assertions are flaky on a shared machine): each batch record
    tries to take the lock from another thread while it runs, as a concurrent request would.
    """
    import threading

    bedrock = sandbox.server.bedrock
    original = bedrock.invoke
    lock_free_during_records: list[bool] = []

    def probing_invoke(*args: object, **kwargs: object):  # noqa: ANN202
        if kwargs.get("faults") is False:  # batch records only
            result: list[bool] = []

            def other_request() -> None:
                acquired = bedrock.lock.acquire(blocking=False)
                if acquired:
                    bedrock.lock.release()
                result.append(acquired)

            thread = threading.Thread(target=other_request)
            thread.start()
            thread.join()
            lock_free_during_records.append(result[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(bedrock, "invoke", probing_invoke)
    bucket = sandbox.bucket()
    records = [
        {"recordId": f"r{i}", "modelInput": {"messages": [{"role": "user", "content": [{"text": f"Hi {i}?"}]}]}}
        for i in range(5)
    ]
    src = sandbox.put_jsonl(bucket, "batch/in.jsonl", records)
    br = sandbox.client("bedrock")
    arn = br.create_model_invocation_job(
        jobName=unique("batch"), roleArn=sandbox.role(), modelId="amazon.nova-lite-v1:0",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": src}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    )["jobArn"]
    job = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status",
                   ("Completed", "PartiallyCompleted", "Failed"))
    assert job["status"] == "Completed" and job["successRecordCount"] == 5
    assert lock_free_during_records == [True] * 5


# ---- 9. CountTokens, usage and the TPM estimate agree ---------------------------------------------------


def test_count_tokens_matches_usage(sandbox: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from utils.sandbox.bedrock import runtime

    # No model of the sandbox's catalogs is on AWS's CountTokens list; pretend Nova Lite is.
    monkeypatch.setattr(runtime, "COUNT_TOKENS_MODELS", runtime.COUNT_TOKENS_MODELS | {"amazon.nova-lite-v1:0"})
    rt = sandbox.client("bedrock-runtime")
    messages = [{"role": "user", "content": [{"text": "What was the revenue of the Cloud unit in 2021?"}]}]
    system = [{"text": "You answer questions about the annual report."}]
    usage = rt.converse(modelId="amazon.nova-lite-v1:0", messages=messages, system=system)["usage"]
    counted = rt.count_tokens(modelId="amazon.nova-lite-v1:0",
                              input={"converse": {"messages": messages, "system": system}})["inputTokens"]
    assert counted == usage["inputTokens"]
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "Hello there?"}]}],
                       "inferenceConfig": {"maxTokens": 50}})
    headers = rt.invoke_model(modelId="amazon.nova-lite-v1:0", body=body)["ResponseMetadata"]["HTTPHeaders"]
    counted = rt.count_tokens(modelId="amazon.nova-lite-v1:0",
                              input={"invokeModel": {"body": body.encode()}})["inputTokens"]
    assert counted == int(headers["x-amzn-bedrock-input-token-count"])


# ---- 10. admin reads under the lock, all-or-nothing config, quotas tokens, stop() ---------------------


def test_admin_usage_is_read_under_the_lock(sandbox: Env) -> None:
    """/health reads the usage counters under the lock: it finishes only after a holder releases it.

    An ordering check, not a timing assertion: the holder logs its release just before
    releasing, the reader logs after it returns; a reader that skipped the lock would log
    first while the holder still waits.
    """
    import threading

    from utils.sandbox import health

    bedrock = sandbox.server.bedrock
    order: list[str] = []
    reader_started, held = threading.Event(), threading.Event()

    def holder() -> None:
        with bedrock.lock:
            held.set()
            reader_started.wait()
            time.sleep(0.2)  # gives a lock-free reader the chance to finish first (and fail the test)
            order.append("released")

    def reader() -> None:
        reader_started.set()
        assert health(sandbox.url)["status"] == "ok"
        order.append("read")

    hold_thread = threading.Thread(target=holder)
    hold_thread.start()
    held.wait()
    read_thread = threading.Thread(target=reader)
    read_thread.start()
    hold_thread.join()
    read_thread.join()
    assert order == ["released", "read"]


def test_configure_is_all_or_nothing(sandbox: Env) -> None:
    bedrock = sandbox.server.bedrock
    before = bedrock.settings()
    with pytest.raises(ValueError):
        bedrock.configure({"time_scale": 3.0, "batch_min_records": 7, "catalog": "bogus"})
    with pytest.raises(ValueError):
        bedrock.configure({"latency_ms": 5, "faults": {"seed": "x"}})
    with pytest.raises(ValueError):
        bedrock.configure({"legacy_models": "amazon.nova-lite-v1:0"})
    assert bedrock.settings() == before


def test_quotas_bad_pagination_is_a_modelled_error() -> None:
    import io
    import json

    from utils.sandbox import quotas

    def call(body: dict) -> tuple[int, dict]:
        raw = json.dumps(body).encode()
        environ = {"HTTP_X_AMZ_TARGET": "ServiceQuotasV20190624.ListServiceQuotas",
                   "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)}
        status, _, payload = quotas.handle(environ)
        return status, json.loads(payload)

    for body in ({"ServiceCode": "bedrock", "NextToken": "abc"}, {"ServiceCode": "bedrock", "NextToken": "-3"},
                 {"ServiceCode": "bedrock", "MaxResults": "many"}):
        status, payload = call(body)
        assert status == 400
        assert payload["__type"] in ("InvalidPaginationTokenException", "IllegalArgumentException")


def test_stop_of_a_never_started_server_returns() -> None:
    import threading

    from utils.sandbox.server import SandboxServer

    server = SandboxServer(port=0)
    thread = threading.Thread(target=server.stop, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()

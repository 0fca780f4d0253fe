"""utils.model_import on the sandbox: layout check first, import, cold-start retry, ledger and cleanup."""

from __future__ import annotations

import json

import pytest

from tests.unit.conftest import sandbox_environment
from tests.unit.test_sandbox_imports import tiny_model_folder
from utils import aws, cleanup, iam, model_import, s3
from utils.state import WorkshopState, name, tag_list, tags

REGION = "us-east-1"


@pytest.fixture()
def sandbox_env(monkeypatch, tmp_path):
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05) as server:
        yield server


def test_the_layout_is_checked_before_any_job(sandbox_env):
    bucket = name("imp", "weights")
    s3.ensure_bucket(bucket, REGION, tags=tags("imp"))
    client = aws.client("s3", REGION)
    good = tiny_model_folder(client, bucket, "good/")
    layout = model_import.check_layout(good, region=REGION)
    assert layout.architecture == "LlamaForCausalLM" and layout.weights == ("model-00001-of-00001.safetensors",)
    partial = tiny_model_folder(client, bucket, "partial/", skip=("tokenizer_config.json", "tokenizer.json"))
    with pytest.raises(model_import.ImportLayoutError, match=r"tokenizer_config.json, tokenizer.json \(or tokenizer.model\)"):
        model_import.check_layout(partial, region=REGION)
    bert = tiny_model_folder(client, bucket, "bert/", architecture="BertForMaskedLM")
    with pytest.raises(model_import.ImportLayoutError, match="BertForMaskedLM"):
        model_import.check_layout(bert, region=REGION)
    with pytest.raises(model_import.ImportLayoutError, match="not an S3 folder"):
        model_import.check_layout("weights/", region=REGION)
    assert not aws.client("bedrock", REGION).list_model_import_jobs()["modelImportJobSummaries"]


def test_import_invoke_with_cold_start_retry_then_cleanup_deletes_it(sandbox_env):
    account = aws.account_id(REGION)
    bucket = name("imp", f"{account}-{REGION}")
    s3.ensure_bucket(bucket, REGION, tags=tags("imp"))
    # An import job is assumed with aws:SourceArn = the import job, so 01's customization role (trusted for
    # model-customization-job/* only) cannot serve; an import role trusts model-import-job/*.
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{account}:model-import-job/*"}}}]}
    client = aws.client("iam", REGION)
    role = client.create_role(RoleName="AmazonBedrockWorkshop-imp-import", AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=[{"Key": k, "Value": v} for k, v in tags("imp").items()])["Role"]["Arn"]
    client.put_role_policy(RoleName="AmazonBedrockWorkshop-imp-import", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/weights/*"]}]}))
    uri = tiny_model_folder(aws.client("s3", REGION), bucket, "weights/")
    with pytest.raises(Exception, match="Could not assume"):  # the customization role is refused
        model_import.ensure_import("bedrock-ws-imp-x", "bedrock-ws-imp-x", iam.ensure_customization_role(
            "imp", bucket, REGION, account), uri, WorkshopState(workshop_id="imp", region=REGION))
    state = WorkshopState.load("imp")
    state.region = REGION
    model_import.check_layout(uri, region=REGION)
    job = model_import.ensure_import("bedrock-ws-imp-import", "bedrock-ws-imp-imported", role, uri, state)
    assert model_import.ensure_import("bedrock-ws-imp-import", "bedrock-ws-imp-imported", role, uri, state) == job
    arn = model_import.wait_for_import(job, state, poll_s=0.05, timeout_s=30)
    assert [e.identifier for e in state.resources("imported-model")] == [arn]
    bedrock = aws.client("bedrock", REGION)
    assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == tag_list("imp", key="key", value="value")
    waits, said = [], []
    answer = model_import.complete(arn, "What is a widget?", sleep=waits.append, log=said.append,
                                   client=model_import.cold_start_client(REGION))
    assert answer["generation"] and answer["generation_token_count"] > 0
    assert answer["cold_retries"] == 3 and waits == [5.0, 10.0, 20.0]  # exponential backoff
    assert all("ModelNotReadyException" in line for line in said)
    cleanup.cleanup(state, poll_s=0.05, wait_s=30, log=lambda _: None)  # 07: the tagged imported model goes
    assert not bedrock.list_imported_models()["modelSummaries"]


def test_cold_start_gives_up_after_the_attempts(sandbox_env):
    from botocore.exceptions import ClientError

    class Cold:
        calls = 0

        def invoke_model(self, **_):
            Cold.calls += 1
            raise ClientError({"Error": {"Code": "ModelNotReadyException", "Message": "cold"}}, "InvokeModel")

    with pytest.raises(ClientError):
        model_import.complete("arn", "hi", attempts=3, sleep=lambda _: None, log=lambda _: None, client=Cold())
    assert Cold.calls == 3


def test_the_import_role_is_required_and_says_what_it_needs():
    with pytest.raises(model_import.ImportLayoutError, match="model-import-job"):
        model_import.require_role("")
    assert model_import.require_role("arn:aws:iam::123456789012:role/imp") == "arn:aws:iam::123456789012:role/imp"

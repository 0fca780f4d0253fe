"""utils.preflight with a stubbed Bedrock (order-independent fake behind real botocore clients),
STS/IAM from in-process moto, and Service Quotas answered by utils.sandbox.quotas."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests.unit.conftest import use_in_process_moto
from utils import aws, models, preflight
from utils.preflight import FAIL, PASS, WARN
from utils.sandbox import quotas

TODAY = date(2026, 11, 21)


# ---- a fake Bedrock behind real botocore clients (parameters are validated by botocore) ----------


def _details(model_id: str, *, customizations=(), inference=("ON_DEMAND",), status="ACTIVE", eol=None) -> dict:
    lifecycle = {"status": status}
    if eol:
        lifecycle["endOfLifeTime"] = f"{eol}T00:00:00Z"
        lifecycle["legacyTime"] = "2026-01-01T00:00:00Z"
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelId": model_id, "modelName": model_id, "providerName": "x",
        "inputModalities": ["TEXT"], "outputModalities": ["TEXT"], "responseStreamingSupported": True,
        "customizationsSupported": list(customizations), "inferenceTypesSupported": list(inference),
        "modelLifecycle": lifecycle,
    }


def today_catalog(region: str) -> dict[str, dict]:
    """Bedrock as of 2026-11-21: the seeds' 2024 models are absent (retired, see
    https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html)."""
    catalog: dict[str, dict] = {}
    for key in ("nova-micro", "nova-lite", "nova-pro", "llama3-1-8b", "llama3-3-70b", "claude-sonnet-4-6",
                "claude-haiku-4-5", "titan-text-express"):
        spec = models.get(key)
        inference = ("INFERENCE_PROFILE",) if spec.requires_profile else ("ON_DEMAND",)
        catalog[spec.model_id] = _details(spec.model_id, inference=inference)
        if spec.customization_id and region in spec.customization_regions:
            catalog[spec.customization_id] = _details(
                spec.customization_id, customizations=("FINE_TUNING",), inference=("PROVISIONED",))
    return catalog


class FakeBedrock:
    def __init__(self, region: str):
        self.region = region
        self.catalog = today_catalog(region)
        geo = "us"
        self.profiles = {f"{p}.{models.get(k).model_id}" for k in ("claude-sonnet-4-6", "claude-haiku-4-5")
                         for p in (geo, "global")} | {f"us.{models.get('llama3-3-70b').model_id}"}
        self.availability: dict[str, dict] = {}
        self.denied: dict[str, str] = {}  # operation -> AccessDenied message
        self.converse_error: tuple[str, str] | None = None
        self.calls: list[str] = []

    @staticmethod
    def error(code: str, message: str, status: int = 400):
        return AWSResponse(None, status, {}, None), {
            "Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}

    @staticmethod
    def ok(body: dict):
        return AWSResponse(None, 200, {}, None), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def remember(self, params, **_):
        """before-parameter-build: keep the (validated) API parameters for before-call."""
        self._params = dict(params)

    def __call__(self, model, **_):
        op, params = model.name, self._params
        self.calls.append(op)
        if op in self.denied:
            return self.error("AccessDeniedException", self.denied[op], 403)
        if op == "GetFoundationModel":
            details = self.catalog.get(params["modelIdentifier"])
            if details is None:
                return self.error("ResourceNotFoundException", "Could not resolve the foundation model from the "
                                  "provided model identifier.", 404)
            return self.ok({"modelDetails": details})
        if op == "ListFoundationModels":
            kind = params.get("byCustomizationType")
            return self.ok({"modelSummaries": [d for d in self.catalog.values()
                                               if not kind or kind in d["customizationsSupported"]]})
        if op == "ListInferenceProfiles":
            return self.ok({"inferenceProfileSummaries": [{
                "inferenceProfileName": p, "inferenceProfileArn": f"arn:aws:bedrock:{self.region}:1:inference-profile/{p}",
                "inferenceProfileId": p, "models": [], "status": "ACTIVE", "type": "SYSTEM_DEFINED"}
                for p in sorted(self.profiles)]})
        if op == "GetFoundationModelAvailability":
            body = {"modelId": params["modelId"], "agreementAvailability": {"status": "AVAILABLE"},
                    "authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
                    "regionAvailability": "AVAILABLE"}
            body.update(self.availability.get(params["modelId"], {}))
            return self.ok(body)
        if op == "Converse":
            if self.converse_error:
                return self.error("AccessDeniedException", self.converse_error[1], 403)
            return self.ok({"output": {"message": {"role": "assistant", "content": [{"text": "p"}]}},
                            "stopReason": "max_tokens", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                            "metrics": {"latencyMs": 1}})
        raise AssertionError(f"unexpected call {op}")


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


def _quotas_over_wsgi(request, **_):
    """Send a botocore request to utils.sandbox.quotas.handle as a WSGI environ."""
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body)}
    for key, value in request.headers.items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value.decode() if isinstance(value, bytes) else value
    status, headers, payload = quotas.handle(environ)
    return AWSResponse(request.url, status, dict(headers), _Raw(payload))


def _quotas_before_call(model, params, **_):
    """before-call (moto's global before-send would answer first): serialized request -> handler -> parsed."""
    from botocore.parsers import create_parser

    body = params.get("body") or b""
    body = body.encode() if isinstance(body, str) else body
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_X_AMZ_TARGET": params["headers"]["X-Amz-Target"]}
    status, headers, payload = quotas.handle(environ)
    parsed = create_parser("json").parse(
        {"status_code": status, "headers": dict(headers), "body": payload}, model.output_shape)
    return AWSResponse(None, status, dict(headers), None), parsed


@pytest.fixture
def env(monkeypatch):
    """moto for STS/IAM; fake Bedrock; Service Quotas through the sandbox handler."""
    import moto

    use_in_process_moto(monkeypatch, "us-east-1")
    fakes: dict[str, FakeBedrock] = {}
    state = {"simulate": "allowed", "quotas": "handler", "deny": set()}
    real_client = aws.client

    def client(service, region=None, **kwargs):
        c = real_client(service, region, **kwargs)
        region = c.meta.region_name
        if service in {"bedrock", "bedrock-runtime"}:
            fake = fakes.setdefault(region, FakeBedrock(region))
            service_id = c.meta.service_model.service_id.hyphenize()
            c.meta.events.register(f"before-parameter-build.{service_id}.*", fake.remember)
            c.meta.events.register(f"before-call.{service_id}.*", fake)
        elif service == "service-quotas":
            if state["quotas"] == "denied":
                c.meta.events.register("before-call.service-quotas.*", lambda **_: FakeBedrock.error(
                    "AccessDeniedException", "not authorized to perform: servicequotas:ListServiceQuotas", 403))
            else:
                c.meta.events.register("before-call.service-quotas.*", _quotas_before_call)
        elif service == "iam":
            seen: dict = {}
            c.meta.events.register("before-parameter-build.iam.SimulatePrincipalPolicy",
                                   lambda params, **_: seen.update(params=dict(params)))

            def simulate(model, **_):
                params = seen["params"]
                if state["simulate"] == "denied-to-simulate":
                    return FakeBedrock.error("AccessDenied", "not authorized to perform: iam:SimulatePrincipalPolicy")
                results = [{"EvalActionName": a, "EvalDecision": state["simulate"] if a == "iam:PassRole" else
                            "implicitDeny" if a in state["deny"] else "allowed"}
                           for a in params["ActionNames"]]
                return FakeBedrock.ok({"EvaluationResults": results, "IsTruncated": False})
            c.meta.events.register("before-call.iam.SimulatePrincipalPolicy", simulate)
        return c

    monkeypatch.setattr(aws, "client", client)
    with moto.mock_aws():
        yield type("Env", (), {"fake": lambda self, r="us-east-1": fakes.setdefault(r, FakeBedrock(r)),
                               "state": state})()


def run(**kwargs) -> preflight.Checklist:
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("installed_versions", {"boto3": "1.44.5", "botocore": "1.44.5"})
    return preflight.run_preflight(**kwargs)


def row(checklist: preflight.Checklist, prefix: str) -> preflight.Check:
    matches = [c for c in checklist.checks if c.name.startswith(prefix)]
    assert matches, f"no row {prefix!r} in {[c.name for c in checklist.checks]}"
    return matches[0]


# ---- scenarios ---------------------------------------------------------------------------


def test_current_profile_passes_and_resolves_inference_profiles(env):
    checklist = run(profile_name="current", plan=preflight.plan_run("current", use_judges=True, use_comparison=True))
    assert checklist.ok, checklist.render()
    assert checklist.region == "us-east-1"
    expected = {
        role: f"us.{models.get(key).model_id}" if models.get(key).requires_profile else models.get(key).model_id
        for role, key in models.profile("current").roles().items()
    }
    assert checklist.resolved_ids == expected
    assert checklist.resolved_ids["student"] == "amazon.nova-lite-v1:0"
    assert checklist.resolved_ids["judge_1"] == "us.anthropic.claude-sonnet-4-6"
    assert checklist.resolved_ids["judge_2"] == "us.meta.llama3-3-70b-instruct-v1:0"
    assert row(checklist, "region").status == PASS
    assert row(checklist, "caller permissions").status == PASS
    assert checklist.facts["concurrent_jobs"] == 2
    assert checklist.facts["record_limit"] == 20000
    assert row(checklist, "quota: records for Amazon Nova Lite").status == PASS
    assert all(c.fix for c in checklist.checks if c.status == FAIL)


def test_seed_2024_profile_reports_retired_models_with_replacements(env):
    checklist = run(profile_name="seed-2024", plan=preflight.plan_run("seed-2024", use_judges=True))
    assert not checklist.ok
    haiku = row(checklist, "lifecycle: Anthropic Claude 3 Haiku")
    assert haiku.status == FAIL
    assert "retired" in haiku.detail and "2026-09-10" in haiku.detail
    assert "Amazon Nova Lite" in haiku.fix and "nova-lite" in haiku.fix
    sonnet = row(checklist, "lifecycle: Anthropic Claude 3 Sonnet")
    assert sonnet.status == FAIL and "claude-sonnet-4-6" in sonnet.fix
    assert "llama3-3-70b" in row(checklist, "lifecycle: Meta Llama 3 70B").fix
    assert "student" not in checklist.resolved_ids  # a retired model is never invoked
    with pytest.raises(preflight.PreflightError, match="Nova Lite"):
        checklist.require()


def test_llama_student_in_us_east_1_reports_region_with_fix(env):
    checklist = run(profile_name="current", region="us-east-1", student="llama3-1-8b")
    region = row(checklist, "region")
    assert region.status == FAIL
    assert "us-east-1" in region.detail
    assert "us-west-2" in region.fix and "WORKSHOP_REGION=us-west-2" in region.fix
    ok = run(profile_name="current", region="us-west-2", student="llama3-1-8b")
    assert row(ok, "region").status == PASS


def test_workshop_region_env_overrides_profile_region(env, monkeypatch):
    monkeypatch.setenv("WORKSHOP_REGION", "us-west-2")
    checklist = run(profile_name="current")
    assert checklist.region == "us-west-2"
    assert row(checklist, "region").status == FAIL  # Nova fine-tuning is us-east-1 only
    assert "us-east-1" in row(checklist, "region").fix


def test_legacy_is_refused_unless_allowed_and_always_near_end_of_life(env):
    fake = env.fake()
    pro = models.get("nova-pro").model_id
    fake.catalog[pro] = _details(pro, status="LEGACY", eol=(TODAY + timedelta(days=200)).isoformat())
    refused = row(run(), "lifecycle: Amazon Nova Pro")
    assert refused.status == FAIL and "allow_legacy=True" in refused.fix
    allowed = run(allow_legacy=True)
    assert row(allowed, "lifecycle: Amazon Nova Pro").status == WARN
    assert "Provisioned Throughput" in row(allowed, "lifecycle: Amazon Nova Pro").detail
    assert allowed.ok
    fake.catalog[pro] = _details(pro, status="LEGACY", eol=(TODAY + timedelta(days=60)).isoformat())
    near = row(run(allow_legacy=True), "lifecycle: Amazon Nova Pro")
    assert near.status == FAIL and "90 days" in near.detail


def test_end_of_life_inside_workshop_window_is_refused_even_when_active(env):
    fake = env.fake()
    lite = models.get("nova-lite").model_id
    fake.catalog[lite] = _details(lite, eol=(TODAY + timedelta(days=5)).isoformat())
    assert row(run(workshop_window_days=10), "lifecycle: Amazon Nova Lite").status == FAIL
    assert row(run(workshop_window_days=3), "lifecycle: Amazon Nova Lite").status == PASS


def test_old_sdk_gets_the_pip_fix():
    checklist = preflight.Checklist("current", "us-east-1")
    preflight.check_versions(checklist, {"boto3": "1.28.57", "botocore": "1.31.57"})
    assert [c.status for c in checklist.checks] == [FAIL, FAIL]
    assert '%pip install --upgrade "boto3>=1.44,<2"' in checklist.checks[0].fix
    assert "restart the kernel" in checklist.checks[0].fix
    ok = preflight.Checklist("current", "us-east-1")
    preflight.check_versions(ok)  # the installed SDK
    assert all(c.status == PASS for c in ok.checks)


def test_access_not_enabled_from_availability(env):
    env.fake().availability[models.get("claude-sonnet-4-6").model_id] = {"entitlementAvailability": "NOT_AVAILABLE"}
    checklist = run(plan=preflight.plan_run(use_judges=True))
    access = row(checklist, "access: Anthropic Claude Sonnet 4.6")
    # Only 06 calls the judges: a warning with the fix, and 01–05 go ahead.
    assert access.status == WARN and "use-case form" in access.fix
    assert "aws-marketplace:Subscribe" in access.fix and "15 minutes" in access.fix
    assert "Only 06 calls it (judge_1)" in access.fix and "use_judges=False" in access.fix
    assert checklist.ok, checklist.render()


def test_a_model_01_to_05_need_still_fails_when_it_is_also_a_judge(env):
    env.fake().availability[models.get("claude-sonnet-4-6").model_id] = {"entitlementAvailability": "NOT_AVAILABLE"}
    checklist = run(plan=preflight.plan_run(use_judges=True, teacher="claude-sonnet-4-6"))
    access = next(c for c in checklist.checks if c.name.startswith("access: Anthropic Claude Sonnet 4.6"))
    assert access.status == FAIL and "Only 06" not in access.fix and not checklist.ok


@pytest.mark.parametrize(("message", "expected"), [
    # Nova is Amazon's: no subscription or form applies, so the fix is IAM / SCP (not the Anthropic form).
    ("You don't have access to the model with the specified model ID.", "not sold through AWS Marketplace"),
    ("User: arn:aws:sts::1:assumed-role/R/s is not authorized to perform: bedrock:InvokeModel", "notebook-caller"),
    ("... with an explicit deny in a service control policy", "administrator"),
])
def test_one_token_probe_maps_access_denied_messages(env, message, expected):
    fake = env.fake()
    fake.denied["GetFoundationModelAvailability"] = "not authorized to perform: bedrock:GetFoundationModelAvailability"
    fake.converse_error = ("AccessDeniedException", message)
    access = row(run(invoke_probe=True), "access: Amazon Nova Lite")
    assert access.status == FAIL and expected in access.fix


def test_probe_success_and_probe_disabled(env):
    fake = env.fake()
    fake.denied["GetFoundationModelAvailability"] = "not authorized"
    assert row(run(invoke_probe=True), "access: Amazon Nova Lite").status == PASS
    assert "Converse" in fake.calls
    calls = len(fake.calls)
    assert row(run(), "access: Amazon Nova Lite").status == WARN  # the default never spends
    assert "Converse" not in fake.calls[calls:]


def test_caller_permissions_denied_or_not_checkable(env):
    env.state["simulate"] = "implicitDeny"
    perms = row(run(), "caller permissions")
    assert perms.status == FAIL and "iam:PassRole" in perms.detail and "notebook-caller" in perms.fix
    env.state["simulate"] = "explicitDeny"
    assert "administrator" in row(run(), "caller permissions").fix
    env.state["simulate"] = "denied-to-simulate"
    perms = row(run(), "caller permissions")
    assert perms.status == WARN and "could not check" in perms.detail


def test_marketplace_actions_only_06_needs_are_a_warning(env):
    env.state["deny"] = set(preflight.MARKETPLACE_ACTIONS)
    perms = row(run(plan=preflight.plan_run(use_judges=True)), "caller permissions")
    assert perms.status == WARN and "aws-marketplace:Subscribe" in perms.detail
    assert "Only 06 calls it (judge_1)" in perms.fix and "use_judges=False" in perms.fix
    # A Claude teacher (03) needs them before 06: then they stop 01.
    perms = row(run(plan=preflight.plan_run(use_judges=True, teacher="claude-sonnet-4-6")), "caller permissions")
    assert perms.status == FAIL and "Only 06" not in perms.fix


def test_quotas_degrade_gracefully_when_denied(env):
    env.state["quotas"] = "denied"
    checklist = run()
    quota = row(checklist, "quotas")
    assert quota.status == WARN and "could not read" in quota.detail
    assert checklist.facts["record_limit"] == preflight.DEFAULT_RECORD_LIMIT
    assert checklist.ok


def test_list_foundation_models_denied_gives_iam_fix(env):
    env.fake().denied["ListFoundationModels"] = "User x is not authorized to perform: bedrock:ListFoundationModels"
    region = row(run(), "region")
    assert region.status == FAIL and "notebook-caller" in region.fix


def test_no_credentials_stops_early(env, monkeypatch):
    from botocore.exceptions import NoCredentialsError

    real = aws.client

    def client(service, region=None, **kwargs):
        c = real(service, region, **kwargs)
        if service == "sts":
            def boom(**_):
                raise NoCredentialsError()
            c.meta.events.register("before-call.sts.GetCallerIdentity", boom)
        return c

    monkeypatch.setattr(aws, "client", client)
    checklist = run()
    identity = row(checklist, "AWS identity")
    assert identity.status == FAIL and "sandbox" in identity.fix
    assert row(checklist, "Bedrock checks").status == WARN


def test_render_frame_and_markdown(env):
    checklist = run(profile_name="seed-2024")
    text = checklist.render()
    assert "✗ lifecycle: Anthropic Claude 3 Haiku" in text and "fix:" in text
    markdown = checklist._repr_markdown_()
    assert markdown.splitlines()[2] == "| | Check | Result | Fix |"
    frame = checklist.frame()
    assert list(frame.columns) == ["status", "check", "detail", "fix"]
    assert set(frame["status"]) <= {PASS, FAIL, WARN}
    assert len(frame) == len(checklist.checks)


def test_progress_callback_sees_every_row(env):
    seen = []
    checklist = run(progress=seen.append)
    assert seen == checklist.checks


def test_check_requires_a_fix_for_failures():
    with pytest.raises(ValueError):
        preflight.Check("x", FAIL, "broken")


def test_helpers():
    assert preflight.geo_prefix("eu-central-1") == "eu"
    assert preflight.geo_prefix("us-west-2") == "us"
    quota_list = [{"QuotaName": "Sum of training and validation records for a Meta Llama 3.1 8B Instruct "
                                "Fine-tuning job", "Value": 10000.0},
                  {"QuotaName": "Sum of training and validation records for a Meta Llama 3.1 70B Instruct "
                                "Fine-tuning job", "Value": 5.0}]
    assert preflight.find_records_quota(quota_list, models.get("llama3-1-70b"))["Value"] == 5.0
    assert preflight.find_records_quota(quota_list, models.get("nova-lite")) is None


# ---- the sandbox's Service Quotas handler ----------------------------------------------------


def _environ(target: str, body: dict, region: str = "us-west-2") -> dict:
    raw = json.dumps(body).encode()
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
            "HTTP_X_AMZ_TARGET": f"ServiceQuotasV20190624.{target}",
            "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=sandbox/20261121/{region}/servicequotas/aws4_request"}


def _parse(operation: str, status: int, headers, body: bytes) -> dict:
    """Parse a handler response exactly as botocore would, and validate it against the output shape."""
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("service-quotas").operation_model(operation)
    return create_parser("json").parse(
        {"status_code": status, "headers": dict(headers), "body": body}, model.output_shape)


def test_quotas_get_service_quota():
    status, headers, body = quotas.handle(_environ("GetServiceQuota", {"ServiceCode": "bedrock",
                                                                        "QuotaCode": "L-0406044C"}))
    assert status == 200
    quota = _parse("GetServiceQuota", status, headers, body)["Quota"]
    assert quota["Value"] == 2.0 and quota["QuotaCode"] == "L-0406044C"
    assert quota["QuotaArn"] == "arn:aws:servicequotas:us-west-2:123456789012:bedrock/L-0406044C"


def test_quotas_default_and_unknown_codes():
    status, _, body = quotas.handle(_environ("GetAWSDefaultServiceQuota",
                                             {"ServiceCode": "bedrock", "QuotaCode": "L-79BA683B"}))
    assert status == 200 and json.loads(body)["Quota"]["Value"] == 10000.0
    for request in ({"ServiceCode": "ec2", "QuotaCode": "L-0406044C"}, {"ServiceCode": "bedrock", "QuotaCode": "L-X"}):
        status, headers, body = quotas.handle(_environ("GetServiceQuota", request))
        assert status == 400
        assert json.loads(body)["__type"] == "NoSuchResourceException"
        assert _parse("GetServiceQuota", status, headers, body)["Error"]["Code"] == "NoSuchResourceException"
    status, _, body = quotas.handle(_environ("ListServiceQuotas", {"ServiceCode": "nope"}))
    assert json.loads(body)["__type"] == "NoSuchResourceException"
    status, _, body = quotas.handle(_environ("DeleteEverything", {}))
    assert status == 400


def test_quotas_list_paginates_and_parses():
    seen, token = [], None
    while True:
        request = {"ServiceCode": "bedrock", "MaxResults": 4, **({"NextToken": token} if token else {})}
        status, headers, body = quotas.handle(_environ("ListServiceQuotas", request))
        page = _parse("ListServiceQuotas", status, headers, body)
        seen += [q["QuotaCode"] for q in page["Quotas"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(quotas.all_quotas("us-west-2")) == len(set(seen))
    assert "L-0406044C" in seen


def test_quotas_through_a_real_boto3_client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    client = boto3.client("service-quotas", region_name="us-east-1")
    client.meta.events.register("before-send.service-quotas.*", _quotas_over_wsgi)
    quota = client.get_service_quota(ServiceCode="bedrock", QuotaCode="L-0406044C")["Quota"]
    assert quota["Value"] == 2.0
    pages = client.get_paginator("list_service_quotas").paginate(ServiceCode="bedrock", PaginationConfig={"PageSize": 3})
    assert sum(len(p["Quotas"]) for p in pages) == len(quotas.all_quotas("us-east-1"))
    with pytest.raises(client.exceptions.NoSuchResourceException):
        client.get_service_quota(ServiceCode="bedrock", QuotaCode="L-NOPE")


# ---- against the real offline sandbox ------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory):
    sandbox = pytest.importorskip("utils.sandbox")
    if not hasattr(sandbox, "start"):
        pytest.skip("utils.sandbox.start not available yet")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKSHOP_SANDBOX_DIR", str(tmp_path_factory.mktemp("sandbox")))
    server = sandbox.start()
    try:
        yield server.url
    finally:
        server.stop()
        mp.undo()


@pytest.fixture
def in_sandbox(sandbox_url, monkeypatch):
    for var in ("AWS_PROFILE", "WORKSHOP_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox_url)
    monkeypatch.setenv("WORKSHOP_BACKEND", "sandbox")
    return sandbox_url


def test_sandbox_preflight_current_profile_passes(in_sandbox):
    checklist = preflight.run_preflight("current", today=TODAY, plan=preflight.plan_run("current", use_judges=True))
    assert checklist.ok, checklist.render()
    assert row(checklist, "caller permissions").status == WARN  # not emulated offline
    assert checklist.facts["concurrent_jobs"] == 2  # answered by utils.sandbox.quotas
    assert checklist.resolved_ids["judge_1"] == "us.anthropic.claude-sonnet-4-6"


def test_sandbox_preflight_wrong_region_and_retired_profile(in_sandbox):
    llama = preflight.run_preflight("current", region="us-east-1", student="llama3-1-8b", today=TODAY)
    assert row(llama, "region").status == FAIL and "us-west-2" in row(llama, "region").fix
    seed = preflight.run_preflight("seed-2024", today=TODAY)
    haiku = row(seed, "lifecycle: Anthropic Claude 3 Haiku")
    assert haiku.status == FAIL and "Nova Lite" in haiku.fix


# ---- the run plan: only what this run uses is checked ---------------------------------------------


def test_default_plan_checks_student_and_teacher_only():
    plan = preflight.plan_run("current")
    assert plan.roles == {"student": "nova-lite", "teacher": "nova-pro"}
    assert set(plan.skipped) == {"judge_1", "judge_2", "comparison_1"}
    assert plan.deployment == "on_demand" and not plan.marketplace
    table = plan.render("markdown")
    assert "| judge_1 | Anthropic Claude Sonnet 4.6 | no | use_judges=False" in table
    assert "| teacher | Amazon Nova Pro | yes |" in table
    no_teacher = preflight.plan_run("current", use_synthetic=False)
    assert "teacher" not in no_teacher.roles and "use_synthetic=False" in no_teacher.skipped["teacher"][1]
    assert preflight.plan_run("current", teacher="claude-sonnet-4-6").marketplace
    # Meta's models are not sold through AWS Marketplace: a Llama teacher needs no aws-marketplace action.
    assert not preflight.plan_run("current", teacher="llama3-3-70b").marketplace


def test_fresh_account_passes_when_only_amazon_models_are_used(env):
    fake = env.fake()
    for key in ("claude-sonnet-4-6", "llama3-3-70b"):  # a fresh account: no Marketplace subscription yet
        fake.availability[models.get(key).model_id] = {"entitlementAvailability": "NOT_AVAILABLE",
                                                       "agreementAvailability": {"status": "NOT_AVAILABLE"}}
    checklist = run()
    assert checklist.ok, checklist.render()
    assert set(checklist.resolved_ids) == {"student", "teacher"}
    assert not [c for c in checklist.checks if "Claude" in c.name or "Llama" in c.name]
    assert checklist.facts["skipped_roles"]["judge_1"][0] == "Anthropic Claude Sonnet 4.6"
    judged = run(plan=preflight.plan_run(use_judges=True))
    claude, llama = row(judged, "access: Anthropic Claude Sonnet 4.6"), row(judged, "access: Meta Llama 3.3 70B")
    assert claude.status == WARN and "use-case form" in claude.fix and "aws-marketplace:Subscribe" in claude.fix
    # Meta's models are not sold through Marketplace: their access problem is IAM or an SCP, not a subscription.
    assert llama.status == WARN and "not sold through AWS Marketplace" in llama.fix and "use-case" not in llama.fix
    assert judged.ok, judged.render()  # only 06 calls the judges: 01–05 go ahead
    assert "aws-marketplace:" not in llama.fix


def test_permission_probes_follow_the_plan():
    nova = preflight.plan_run("current")
    actions = {a for a, _ in preflight.series_action_probes("us-east-1", "123456789012", nova.student, nova)}
    assert "bedrock:CreateCustomModelDeployment" in actions and "bedrock:CreateProvisionedModelThroughput" not in actions
    assert not any(a.startswith("aws-marketplace:") for a in actions)
    assert "bedrock:CreateEvaluationJob" not in actions and "bedrock:CreateModelInvocationJob" not in actions
    llama = preflight.plan_run("current", student="llama3-1-8b", use_judges=True)
    probes = preflight.series_action_probes("us-west-2", "123456789012", llama.student, llama)
    actions = {a for a, _ in probes}
    assert "bedrock:CreateProvisionedModelThroughput" in actions and "bedrock:CreateCustomModelDeployment" not in actions
    assert set(preflight.MARKETPLACE_ACTIONS) <= actions
    assert ("bedrock:InvokeModel", "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.preflight") in probes


@pytest.mark.parametrize(("student", "region", "judges"), [
    ("", "us-east-1", False), ("llama3-1-8b", "us-west-2", True)])
def test_the_caller_policy_allows_every_probe_in_its_request_context(student, region, judges):
    """The simulation sends each probe's condition keys; without them the policy's conditioned
    statements (boundary on CreateRole, tags on stops and deletes) would deny the series' calls."""
    from utils import iam
    from utils.sandbox import conditions
    from utils.sandbox.iam_simulate import decide

    account = "123456789012"
    caller = f"arn:aws:iam::{account}:role/Notebook"
    policy = iam.caller_policy(region, account, caller)
    plan = preflight.plan_run("current", student=student, use_judges=judges)
    for action, resource in preflight.series_action_probes(region, account, plan.student, plan):
        context = conditions.context(preflight.probe_context(action, account, region))
        assert decide([policy], action, resource, context) == "allowed", (action, resource)
    assert decide([policy], "iam:CreateRole", f"arn:aws:iam::{account}:role/{iam.ROLE_NAME_PREFIX}x", {}) != "allowed"


@pytest.mark.parametrize(("message", "provider", "present", "absent"), [
    ("Model access is denied due to IAM user or service role is not authorized to perform the required AWS "
     "Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable access to this "
     "model. Your AWS Marketplace subscription for this model cannot be completed at this time. If you recently "
     "fixed this issue, try again after 2 minutes.", "Meta",
     ["aws-marketplace:Subscribe", "aws-marketplace:Unsubscribe", "payment method", "15 minutes"], ["use-case form"]),
    ("Model access is denied due to IAM user or service role is not authorized to perform the required AWS "
     "Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe).", "Anthropic",
     ["aws-marketplace:ViewSubscriptions", "use-case form", "PutUseCaseForModelAccess"], []),
    ("Model use case details have not been submitted for this account. Fill out the Anthropic use case details "
     "form before using the model.", "Anthropic", ["use-case form", "PutUseCaseForModelAccess"], ["notebook-caller"]),
    ("You don't have access to the model with the specified model ID.", "Anthropic",
     ["aws-marketplace:Subscribe", "use-case form"], []),
])
def test_access_denied_messages_name_the_real_fix(message, provider, present, absent):
    fix = preflight.explain_access_denied(message, provider)
    assert all(p in fix for p in present), fix
    assert not any(a in fix for a in absent), fix
    assert "not authorized to perform: bedrock" not in fix


def test_plan_must_match_an_explicit_student(env):
    with pytest.raises(ValueError, match="differs from the plan"):
        run(student="llama3-1-8b", plan=preflight.plan_run("current"))

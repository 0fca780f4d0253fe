"""Benchmark: teacher calls at the account's quota ceiling, and nothing lost under faults.

Usage: ``.venv/bin/python benchmarks/generation.py [--calls 400] [--sequential 20]``

Runs against an in-process sandbox (``utils.sandbox.start``) and the default teacher
(Nova Pro, native InvokeModel body asking for 3 JSON Q&A records per original sample's
documents, from ``data/aws_docs_qa.csv``).

(a) Throughput: 1 s latency per call, RPM limit 1,200, buckets that start empty (burst 0).
    The seed-style loop (one ``invoke_model`` after another, default boto3 client) runs on a
    subset; then :func:`utils.engine.run_calls` with its defaults, told only which model it
    calls (so it can read the quota), runs all calls; then once more without even the model
    (it must learn the ceiling from throttling). ``speedup`` = engine calls/s / sequential
    calls/s; ``ceiling_pct`` = the engine's steady-state requests per minute (completions
    between the 10th and 90th percentile of the run) as a share of the RPM limit.
(b) Faults: 10 % random throttling, 3 % ServiceUnavailable (5xx), 3 % malformed replies
    (the call raises ``RetryableOutput`` when the reply is not a JSON array of 3 complete
    records). A worker subprocess runs the engine and is killed (SIGKILL) twice mid-run;
    a third run resumes to the end. From the checkpoint: ``lost`` = items with neither a
    result nor a reported failure; ``duplicates`` = samples (item, record) stored more than
    once in the final set (every success row of the checkpoint); ``malformed_accepted`` =
    success rows whose stored reply does not parse.

Prints a table, then exactly one line:
``ceiling_pct=<float> speedup=<float> lost=<int> duplicates=<int> malformed_accepted=<int>``.
Goals: ceiling_pct >= 90, speedup >= 15, lost = 0, duplicates = 0, malformed_accepted = 0.
Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "amazon.nova-pro-v1:0"  # utils.models.profile().teacher
REGION = "us-east-1"
RPM_LIMIT = 1200
LATENCY_MS = 1000
MAX_TOKENS = 800
RECORDS = 3
KEYS = ("question", "answer", "topic")


def build_items(count: int) -> list[dict]:
    """``count`` teacher requests: each original sample's documents, cycled, with a variant number."""
    from utils.engine import item_id

    with (ROOT / "data" / "aws_docs_qa.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    items = []
    for index in range(count):
        row = rows[index % len(rows)]
        variant = index // len(rows)
        prompt = (
            f"Documents:\n{row['document']}\n\nThe original question was: {row['question']}\n"
            f"Write {RECORDS} new question-and-answer pairs about other parts and topics of the documents "
            f"(set {variant + 1}). Answer from the documents only. Return a JSON array of {RECORDS} objects "
            'with the keys "question", "answer" and "topic".'
        )
        items.append({"id": item_id(MODEL, prompt, MAX_TOKENS), "prompt": prompt})
    return items


def parse_records(text: str) -> list[dict]:
    """The reply's records, or :class:`RetryableOutput` if it is not a JSON array of complete records."""
    from utils.engine import RetryableOutput

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RetryableOutput("unparseable", f"reply is not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(data, list):
        raise RetryableOutput("not_an_array", f"reply is a JSON {type(data).__name__}, not an array")
    records = [r for r in data if isinstance(r, dict) and all(isinstance(r.get(k), str) and r[k] for k in KEYS)]
    if len(records) < RECORDS:
        raise RetryableOutput("too_few_records", f"{len(records)} complete records, {RECORDS} asked")
    return records[:RECORDS]


def invoke(client, prompt: str) -> tuple[str, dict]:
    body = {"messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": MAX_TOKENS}}
    response = client.invoke_model(modelId=MODEL, body=json.dumps(body))
    payload = json.loads(response["body"].read())
    return payload["output"]["message"]["content"][0]["text"], response


def make_call(client, stamps: list[float] | None = None):
    from utils.engine import usage_from_response

    def call(item: dict) -> dict:
        text, response = invoke(client, item["prompt"])
        records = parse_records(text)
        if stamps is not None:
            stamps.append(time.monotonic())
        input_tokens, output_tokens = usage_from_response(response)
        return {"raw": text, "records": records, "input_tokens": input_tokens, "output_tokens": output_tokens}

    return call


def steady_rpm(stamps: list[float]) -> float:
    """Completions per minute between the 10th and 90th percentile completion."""
    stamps = sorted(stamps)
    if len(stamps) < 10:
        return 0.0
    lo, hi = len(stamps) // 10, len(stamps) * 9 // 10
    span = stamps[hi] - stamps[lo]
    return 60.0 * (hi - lo) / span if span > 0 else 0.0


def runtime_client():
    from utils import aws

    return aws.client("bedrock-runtime", REGION)


# ---- (a) throughput -------------------------------------------------------------------------------


def throughput(url: str, calls: int, sequential: int, workdir: Path) -> dict:
    import boto3

    from utils import engine
    from utils import sandbox as admin

    fault_knobs = {"profile": "off", "rpm": RPM_LIMIT, "burst": 0.0, "latency_ms": LATENCY_MS, "latency_jitter": 0.0}
    items = build_items(calls)
    table = []

    # The seed's loop: a default boto3 client, one call after another.
    admin.configure(url, faults=fault_knobs)
    seed_client = boto3.client("bedrock-runtime", region_name=REGION, endpoint_url=url,
                               aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    started, done = time.monotonic(), 0
    for item in items[:sequential]:
        try:
            parse_records(invoke(seed_client, item["prompt"])[0])
            done += 1
        except Exception as exc:  # noqa: BLE001 - the seed printed and moved on
            print(f"  sequential: {type(exc).__name__}: {exc}")
    seq_seconds = time.monotonic() - started
    seq_rate = done / seq_seconds
    table.append(("seed-style sequential loop", done, seq_seconds, 60 * seq_rate, 0, "-"))

    results = {}
    for label, kwargs in (("engine defaults (model_id given)", {"model_id": MODEL}),
                          ("engine defaults (no model_id)", {})):
        admin.configure(url, faults=fault_knobs)  # fresh, empty buckets
        stamps: list[float] = []
        stats = engine.RunStats()
        client = runtime_client()  # the series' runtime client, as notebook 03 builds it
        started = time.monotonic()
        rows = engine.run_calls(items, make_call(client, stamps), workdir / f"{len(results)}.jsonl", desc=label,
                                max_tokens=MAX_TOKENS, stats=stats, **kwargs)
        seconds = time.monotonic() - started
        ok = sum("error" not in r for r in rows)
        rate = ok / seconds
        results[label] = {"rate": rate, "steady_rpm": steady_rpm(stamps), "stats": stats}
        table.append((label, ok, seconds, steady_rpm(stamps), stats.throttles, stats.peak_concurrency))

    print(f"\n(a) throughput: {calls} calls, {LATENCY_MS} ms latency, RPM limit {RPM_LIMIT}, burst 0")
    print(f"{'run':<36}{'calls ok':>9}{'seconds':>9}{'steady RPM':>12}{'throttled':>11}{'peak in flight':>16}")
    for label, ok, seconds, rpm, throttled, peak in table:
        print(f"{label:<36}{ok:>9}{seconds:>9.1f}{rpm:>12.0f}{throttled:>11}{peak!s:>16}")
    main = results["engine defaults (model_id given)"]
    print(f"  limits read: {main['stats'].limits.source}")
    learned = results["engine defaults (no model_id)"]
    print(f"  without model_id: {100 * learned['steady_rpm'] / RPM_LIMIT:.1f} % of the limit, "
          f"speedup {learned['rate'] / seq_rate:.1f}")
    return {"ceiling_pct": 100.0 * main["steady_rpm"] / RPM_LIMIT, "speedup": main["rate"] / seq_rate}


# ---- (b) faults, kills and resume ------------------------------------------------------------------


def worker(checkpoint: str, calls: int) -> None:
    """One engine run in this process (the parent kills it to simulate a crash)."""
    from utils import engine

    client = runtime_client()
    engine.run_calls(build_items(calls), make_call(client), checkpoint, model_id=MODEL, max_tokens=MAX_TOKENS,
                     progress=False)


def count_rows(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return 0


def faults(url: str, calls: int, workdir: Path) -> dict:
    from utils import sandbox as admin

    admin.configure(url, faults={"profile": "off", "rpm": RPM_LIMIT, "burst": 0.0, "latency_ms": LATENCY_MS // 2,
                                 "throttling_rate": 0.10, "service_unavailable_rate": 0.03,
                                 "malformed_output_rate": 0.03, "seed": 11})
    checkpoint = workdir / "faults.jsonl"
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "WORKSHOP_BACKEND": "sandbox", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(checkpoint), "--calls", str(calls)]
    kills = []
    for stop_at in (calls // 4, calls // 2):
        process = subprocess.Popen(command, cwd=ROOT, env=env)
        while process.poll() is None and count_rows(checkpoint) < stop_at:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills.append(count_rows(checkpoint))
        process.wait()
    final = subprocess.run(command, cwd=ROOT, env=env, check=False)

    ids = [item["id"] for item in build_items(calls)]
    rows = []
    for line in checkpoint.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line the kill cut in half
    successes = [r for r in rows if "error" not in r]
    failed = {r["id"] for r in rows if "error" in r}
    done = {r["id"] for r in successes}
    samples = [(r["id"], i) for r in successes for i, _ in enumerate(r.get("records") or [])]
    malformed = 0
    for row in successes:
        try:
            parse_records(row["raw"])
        except Exception:  # noqa: BLE001 - any failure to parse means it should never have been stored
            malformed += 1
    kinds: dict[str, int] = {}
    for row in rows:
        if "error" in row:
            kinds[row.get("error_kind", "?")] = kinds.get(row.get("error_kind", "?"), 0) + 1
    result = {
        "lost": sum(1 for i in ids if i not in done and i not in failed),
        "duplicates": len(samples) - len(set(samples)),
        "malformed_accepted": malformed,
    }
    print(f"\n(b) faults: {calls} calls; 10 % throttling, 3 % 5xx, 3 % malformed; killed at {kills} rows; "
          f"final run exit code {final.returncode}")
    print(f"{'items':<28}{len(ids):>8}")
    print(f"{'  with a result':<28}{len(done):>8}")
    print(f"{'  reported failed only':<28}{len(failed - done):>8}  {kinds or ''}")
    print(f"{'  lost':<28}{result['lost']:>8}")
    print(f"{'success rows':<28}{len(successes):>8}")
    print(f"{'  duplicate samples':<28}{result['duplicates']:>8}")
    print(f"{'  malformed accepted':<28}{result['malformed_accepted']:>8}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--sequential", type=int, default=20, help="calls in the seed-style loop")
    parser.add_argument("--skip-faults", action="store_true", help="only part (a)")
    parser.add_argument("--worker", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.calls)
        return 0

    from utils.sandbox import start

    os.environ.setdefault("WORKSHOP_BACKEND", "sandbox")
    with tempfile.TemporaryDirectory() as tmp, start() as sandbox:
        os.environ["AWS_ENDPOINT_URL"] = sandbox.url
        a = throughput(sandbox.url, args.calls, args.sequential, Path(tmp))
        b = {"lost": -1, "duplicates": -1, "malformed_accepted": -1} if args.skip_faults else faults(
            sandbox.url, args.calls, Path(tmp))
    print(f"ceiling_pct={a['ceiling_pct']:.1f} speedup={a['speedup']:.1f} lost={b['lost']} "
          f"duplicates={b['duplicates']} malformed_accepted={b['malformed_accepted']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

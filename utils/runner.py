"""Run the notebook series with papermill: ``python -m utils.runner`` (``make workshop``).

* the notebooks' own kernelspec ``conda_python3`` (the SageMaker notebook-instance kernel
  name; ``make setup`` registers it for the local virtualenv) and ``cwd=notebooks/``,
  a per-cell timeout, stop at the first failure;
* on the sandbox backend (the default) a sandbox is started in-process for the run
  and stopped afterwards, and the spend opt-ins are switched on: the sandbox bills
  nothing;
* writes ``runs/<run-id>/`` (executed notebooks, ``results.json``, ``report.html``, and
  ``<notebook>.kernel.log`` when a kernel process printed anything of its own) and points
  ``runs/latest`` at it.

Extra parameters: ``--params "epochs=1 workshop_id=team-a"`` (or ``make workshop
PARAMS=...``) sets a parameter in every notebook that declares it, and
``-p NAME VALUE`` does the same for one value. A value is a Python or JSON literal
(``price_overrides={"k": 0}``, ``confirm_spend=true``) or else a bare word
(``workshop_id=team-a``). Before any notebook runs, every value is checked against the
type its notebook declares (``epochs: int = 2`` refuses ``epochs=3.7``), and unknown names
are an error, since papermill itself only warns about them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils import costs, report
from utils.state import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RUNS_DIR = REPO_ROOT / "runs"
KERNEL = "conda_python3"  # the committed kernelspec of every notebook
CELL_TIMEOUT_S = 300  # sandbox cells finish in seconds; on AWS a job waits for hours, so no limit there

# A sandbox rehearsal bills nothing, so it switches every spend opt-in on, and its jobs
# finish in seconds, so it polls often. Explicit --params still win.
SANDBOX_DEFAULTS: dict[str, Any] = {"confirm_spend": True, "poll_seconds": 0.5}


def series(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks 01..07 in order."""
    return sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(notebook: Path) -> dict[str, Any]:
    import papermill as pm

    return pm.inspect_notebook(str(notebook))


def _split_assignments(text: str) -> list[str]:
    """Split ``a=1 b={"k": 2} c='x y'`` on spaces outside quotes and brackets, keeping quotes."""
    tokens, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
            continue
        current += char
    if quote or depth:
        raise SystemExit(f"Unbalanced quotes or brackets in parameters: {text!r}")
    return tokens + ([current] if current else [])


def _literal(raw: str) -> Any:
    """A Python literal, else a JSON value (``true``, ``null``), else the text itself."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a bare word is a string: workshop_id=team-a


def parse_params(
    text: str | None, pairs: Iterable[list[str]] = (), declared_types: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``"a=1 b=text"`` plus ``[["c", "2"]]`` -> ``{"a": 1, "b": "text", "c": 2}``.

    A name declared ``str`` keeps its text as written (``workshop_id=2024`` is ``"2024"``).
    """
    params: dict[str, Any] = {}
    items = [tuple(token.split("=", 1)) for token in _split_assignments(text or "")]
    items += [tuple(pair) for pair in pairs]
    for item in items:
        if len(item) != 2 or not item[0]:
            raise SystemExit(f"Bad parameter {'='.join(item)!r}: use NAME=VALUE")
        name, raw = item
        value = _literal(raw)
        if (declared_types or {}).get(name) == "str" and not isinstance(value, str):
            value = raw
        params[name] = value
    return params


def _type_name(spec: dict[str, Any]) -> str:
    """``int``, ``dict``, ... as papermill infers it from the annotation (``list[str]`` -> ``list``)."""
    return str(spec.get("inferred_type_name") or "").split("[", 1)[0].strip().lower()


def _matches(value: Any, type_name: str) -> bool:
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"str": str, "dict": dict, "list": list}.get(type_name)
    return expected is None or isinstance(value, expected)  # an annotation papermill cannot name is not checked


def declared_types(declared_by_nb: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Parameter name -> declared type name, over every notebook."""
    return {name: _type_name(spec) for declared in declared_by_nb.values() for name, spec in declared.items()}


def check_types(overrides: dict[str, Any], declared_by_nb: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every override must have the type each notebook declaring it gives it.

    Returns the overrides with whole numbers widened where ``float`` is declared; raises
    ``SystemExit`` naming every mismatch (value, notebook, declaration, fix) otherwise.
    """
    problems: dict[str, str] = {}  # one line per parameter, naming the first notebook that declares it
    checked = dict(overrides)
    for notebook, declared in declared_by_nb.items():
        for name, value in overrides.items():
            if name not in declared or name in problems:
                continue
            type_name = _type_name(declared[name])
            if not _matches(value, type_name):
                problems[name] = (f"{name}={value!r} is {type(value).__name__}, but {notebook} declares "
                                  f"`{name}: {type_name} = {declared[name].get('default')}`"
                                  f" ({declared[name].get('help') or 'no description'})")
            elif type_name == "float" and isinstance(value, int):
                checked[name] = float(value)
    if problems:
        raise SystemExit("Parameter type mismatch; nothing was run:\n  " + "\n  ".join(problems.values())
                         + "\nFix: pass a value of the declared type (e.g. epochs=3, confirm_spend=True, "
                         "price_overrides={\"key\": 0.5}).")
    return checked


def parameters_for(overrides: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """The overrides a notebook declares."""
    return {name: value for name, value in overrides.items() if name in declared}


def check_declared(overrides: dict[str, Any], declared_by_nb: dict[str, dict[str, Any]]) -> None:
    """Every override must be a parameter of at least one notebook."""
    known = set().union(*declared_by_nb.values()) if declared_by_nb else set()
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(
            f"Unknown parameter(s) {unknown}. Declared parameters: {sorted(known)}"
        )


def kernel_config():
    """Kernel-manager settings for every notebook this package executes (papermill, nbclient).

    ipykernel 7 warns on every start that plain TCP carries code and outputs unencrypted.
    With CurveZMQ available, jupyter_client provisions keys for kernelspecs that declare
    ``supported_encryption: curve`` (ipykernel's do); otherwise local IPC sockets replace TCP.
    (jupyter_client/manager.py ``transport_encryption``, ipykernel/kernelapp.py ``init_sockets``
    in github.com/jupyter/jupyter_client and github.com/ipython/ipykernel).
    """
    import zmq
    from traitlets.config import Config

    if zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config({"KernelManager": {"transport": "ipc"}})


def kernel_manager_with_log(log_path: Path):
    """A kernel-manager class whose kernel writes its own process output to ``log_path``.

    Cell outputs still go to the notebook; what the kernel process itself prints (ipykernel's
    log lines, e.g. the "KeyboardInterrupt caught in kernel." that jupyter_client's shutdown
    interrupt can provoke when papermill's final kernel_info request is still finishing) goes
    to the run folder, next to the executed notebook, not to the series' console.
    """
    from jupyter_client.manager import AsyncKernelManager

    class KernelManagerWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            with open(log_path, "ab") as log:  # the kernel keeps its own copy of the descriptor
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super().start_kernel(**kw)

    return KernelManagerWithLog


def sandbox_environment(url: str, state_dir: Path) -> dict[str, str]:
    """Environment for kernels that must reach the sandbox and nothing else."""
    return {
        "WORKSHOP_BACKEND": "sandbox",
        costs.UNBILLED_ENV: "1",  # the sandbox bills nothing: prices the dated table lacks count as $0
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "WORKSHOP_STATE_DIR": str(state_dir),
    }


def run_series(
    overrides: dict[str, Any],
    *,
    backend: str = "sandbox",
    run_id: str | None = None,
    runs_dir: Path = RUNS_DIR,
    notebooks: list[Path] | None = None,
    cell_timeout: int | None = CELL_TIMEOUT_S,
    log=print,
) -> dict[str, Any]:
    """Execute the series and write the run folder. Returns the results dict."""
    import papermill as pm

    notebooks = notebooks or series()
    run_id = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = runs_dir / run_id
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    check_declared(overrides, declared)
    overrides = check_types(overrides, declared)  # before anything runs or is written
    run_dir.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "run_id": run_id, "backend": backend, "notebooks": [], "metrics": {},
        "cleanup": {"remaining": []},
    }
    saved_env = dict(os.environ)
    with ExitStack() as stack:
        if backend == "sandbox":
            from utils import sandbox

            server = stack.enter_context(sandbox.start())
            os.environ.update(sandbox_environment(server.url, run_dir / "state"))
            overrides = {**SANDBOX_DEFAULTS, **overrides}
            log(f"sandbox listening on {server.url}")
        else:
            os.environ["WORKSHOP_BACKEND"] = "aws"
            os.environ.pop(costs.UNBILLED_ENV, None)  # on AWS every price gap must be filled by the user
            cell_timeout = None  # 04 waits for a real training job
        try:
            for notebook in notebooks:
                params = parameters_for(overrides, declared[notebook.stem])
                output = run_dir / notebook.name
                kernel_log = run_dir / f"{notebook.stem}.kernel.log"
                start = time.perf_counter()
                status = "ok"
                try:
                    pm.execute_notebook(
                        str(notebook), str(output), parameters=params, kernel_name=KERNEL,
                        cwd=str(notebook.parent), execution_timeout=cell_timeout,
                        progress_bar=False, log_output=False, config=kernel_config(),
                        kernel_manager_class=kernel_manager_with_log(kernel_log),
                    )
                except Exception as exc:  # noqa: BLE001 - report, then stop the series
                    status = "failed"
                    log(f"{notebook.name} failed: {type(exc).__name__}: {str(exc)[:2000]}")
                    log(f"  executed notebook: {output}; the kernel's own log: {kernel_log}")
                if kernel_log.exists() and not kernel_log.stat().st_size:
                    kernel_log.unlink()  # keep only logs with something in them
                seconds = round(time.perf_counter() - start, 2)
                results["notebooks"].append({"name": notebook.stem, "status": status, "seconds": seconds})
                if output.exists():
                    results["metrics"].update(report.collect(output))
                log(f"  {notebook.stem:<24} {status:<7} {seconds:6.1f} s")
                if status != "ok":
                    break
        finally:
            os.environ.clear()
            os.environ.update(saved_env)

    results["cleanup"]["remaining"] = results["metrics"].pop("cleanup_remaining", [])
    results["seconds_total"] = round(sum(nb["seconds"] for nb in results["notebooks"]), 2)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (run_dir / "report.html").write_text(report.render_html(results))
    latest = runs_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_id)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="", help='e.g. "epochs=1 workshop_id=team-a"')
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--backend", choices=("sandbox", "aws"), default=os.environ.get("WORKSHOP_BACKEND", "sandbox"))
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT_S)
    args = parser.parse_args(argv)

    types = declared_types({nb.stem: declared_parameters(nb) for nb in series()})
    overrides = parse_params(args.params, args.p, types)
    started = time.perf_counter()
    results = run_series(overrides, backend=args.backend, run_id=args.run_id, cell_timeout=args.cell_timeout)
    wall = time.perf_counter() - started
    ok = all(nb["status"] == "ok" for nb in results["notebooks"]) and len(results["notebooks"]) == len(series())
    print(f"series: {'ok' if ok else 'FAILED'} in {wall:.1f} s wall ({results['seconds_total']:.1f} s in notebooks)")
    print(f"report: {RUNS_DIR / results['run_id'] / 'report.html'}  (runs/latest -> {results['run_id']})")
    if results["cleanup"]["remaining"]:
        print(f"cleanup: {len(results['cleanup']['remaining'])} resource(s) remain: {results['cleanup']['remaining']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

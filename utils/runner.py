"""Run the notebook series with papermill: ``python -m utils.runner`` (``make workshop``).

* the notebooks' own kernelspec ``conda_python3`` (the SageMaker notebook-instance kernel
  name; ``make setup`` registers it for the local virtualenv) and ``cwd=notebooks/``,
  a per-cell timeout, stop at the first failure;
* on the sandbox backend (the default) a sandbox is started in-process for the run
  and stopped afterwards, and the spend opt-ins are switched on: the sandbox bills
  nothing; its jobs and deployments run at :data:`SANDBOX_TIME_SCALE` of their sandbox
  durations (the log line and ``results.json`` say so), and each notebook's kernel starts
  while the previous notebook runs (:class:`KernelsAhead`; not while one installs
  packages, :func:`installs_packages`);
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

Hyperparameter sweep: ``--sweep 'learning_rate=1e-5,2e-5 epochs=1,2'`` runs 01-03 once,
then 04_fine_tuning once per point of the grid (the product of the comma-separated values,
at most :data:`MAX_SWEEP_POINTS`), then 07_cleanup. The points run one after another and
each 04 run submits its arms within the account's concurrent job quota, so the sweep never
has more jobs in progress than the quota allows. Unless ``--params`` names them, the sweep
trains only the FT-N arm (``arms=ft_n use_synthetic=False``): one job per point. The run
report gets a comparison table and a plot of each point's best validation loss.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils import costs, report
from utils.state import REPO_ROOT, StateFileError, WorkshopState, validate_workshop_id

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RUNS_DIR = REPO_ROOT / "runs"
KERNEL = "conda_python3"  # the committed kernelspec of every notebook
CELL_TIMEOUT_S = 300  # sandbox cells finish in seconds; on AWS a job waits for hours, so no limit there

# A sandbox rehearsal bills nothing, so it switches every spend opt-in on, and its jobs
# finish in seconds, so it polls often. Explicit --params still win.
SANDBOX_DEFAULTS: dict[str, Any] = {"confirm_spend": True, "poll_seconds": 0.1}
# The rehearsal's sandbox runs every lifecycle (jobs, deployments, deletions) at this multiple of
# its durations (utils/sandbox/bedrock/lifecycle.py); $WORKSHOP_SANDBOX_TIME_SCALE overrides it.
# Polls every poll_seconds stay shorter than the shortest phase a monitor reports (a customization
# job's validation and data processing: 0.3 s x the scale), so each status change is still shown.
SANDBOX_TIME_SCALE = 0.5
TIME_SCALE_ENV = "WORKSHOP_SANDBOX_TIME_SCALE"


def series(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks 01..07 in order."""
    return sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def _papermill():
    """``papermill``, imported without building jsonschema's optional IRI checker.

    papermill imports nbformat, which imports jsonschema; jsonschema's ``_format`` module imports
    ``rfc3987_syntax`` when it is installed (the ``format-nongpl`` extra that jupyter-events asks
    for), and that module compiles about 40 Lark grammars at import: a second or more of CPU
    before the first notebook starts (github.com/python-jsonschema/jsonschema, jsonschema/_format.py,
    ``with suppress(ImportError): from rfc3987_syntax import ...``). nbformat validates notebooks
    with ``Draft4Validator`` and no format checker (nbformat/json_compat.py), so nothing it checks
    changes. A ``None`` entry in ``sys.modules`` makes that one import raise ``ImportError``
    (docs.python.org/3/reference/import.html#the-module-cache); it is removed again at once, so
    a later ``import rfc3987_syntax`` in this process still works.
    """
    if "papermill" in sys.modules:
        return sys.modules["papermill"]
    blocked = "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        import papermill
    finally:
        if blocked:
            sys.modules.pop("rfc3987_syntax", None)
    return papermill


def declared_parameters(notebook: Path) -> dict[str, Any]:
    return _papermill().inspect_notebook(str(notebook))


def _split_assignments(text: str, comma: bool = False) -> list[str]:
    """Split ``a=1 b={"k": 2} c='x y'`` on spaces outside quotes and brackets, keeping quotes.

    With ``comma``, split on commas instead and keep empty pieces (``1,,2`` -> ["1", "", "2"]).
    """
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
        elif depth == 0 and (char == "," if comma else char.isspace()):
            if current or comma:
                tokens.append(current.strip())
            current = ""
            continue
        current += char
    if quote or depth:
        raise SystemExit(f"Unbalanced quotes or brackets in parameters: {text!r}")
    return tokens + ([current.strip()] if current or comma else [])


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
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SystemExit(
            f"Unknown parameter(s) {', '.join(hints)}; nothing was run. Declared parameters: {sorted(known)}"
        )
    if "workshop_id" in overrides:
        try:
            validate_workshop_id(str(overrides["workshop_id"]))
        except ValueError as err:
            raise SystemExit(f"{err} Nothing was run.") from None


def check_experiment(overrides: dict[str, Any], declared: dict[str, dict[str, Any]],
                     points: list[dict[str, Any]]) -> None:
    """04's parameters (arms, customization type, hyperparameters) refused before 01 runs, per sweep point."""
    from utils import arms
    from utils.jobspec import JobSpecError

    if SWEEP_NOTEBOOK not in declared:
        return
    effective = effective_parameters(overrides, declared)
    for point in points:
        try:
            arms.check_parameters({**effective, **point}, notebook_dir=str(NOTEBOOK_DIR))
        except JobSpecError as err:
            where = f" (sweep point {point_label(point)})" if point else ""
            raise SystemExit(f"{SWEEP_NOTEBOOK} would refuse its parameters{where}: {err} Nothing was run.") from None


STEP_PREFIX = "step_"  # notebooks record {"asked", "done", "detail"} under step_<name>
EXIT_CODES = {"ok": 0, "failed": 1, "skipped-step": 2, "incomplete": 1}


def skipped_steps(recorded: dict[str, Any]) -> list[str]:
    """Details of the steps a notebook was asked to do but did not (``step_*`` records)."""
    return [f"{key[len(STEP_PREFIX):]}: {value.get('detail') or 'did nothing'}"
            for key, value in sorted(recorded.items())
            if key.startswith(STEP_PREFIX) and isinstance(value, dict) and value.get("asked") and not value.get("done")]


def error_line(exc: BaseException) -> str:
    """The last line of a notebook's error as Python prints it: ``Name: message`` (first line of the message)."""
    name = getattr(exc, "ename", None) or type(exc).__name__
    value = str(getattr(exc, "evalue", None) if getattr(exc, "ename", None) else exc).strip()
    return f"{name}: {value.splitlines()[0] if value else ''}"[:500]


def series_status(notebooks: list[dict[str, Any]], expected: int) -> str:
    """``ok`` only when every notebook ran and is ok; else ``failed``, ``skipped-step`` or ``incomplete``."""
    statuses = [nb["status"] for nb in notebooks]
    if "failed" in statuses:
        return "failed"
    if "skipped-step" in statuses:
        return "skipped-step"
    return "ok" if len(statuses) == expected else "incomplete"


def _declared_default(declared: dict[str, dict[str, Any]], name: str) -> Any:
    for params in declared.values():
        if name in params:
            return _literal(str(params[name].get("default")))
    return None


def effective_parameters(overrides: dict[str, Any], declared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every declared parameter with the value this run used (the report's parameter table)."""
    names = dict.fromkeys(name for params in declared.values() for name in params)
    return {name: overrides.get(name, _declared_default(declared, name)) for name in names}


def cleanup_truth(metrics: dict[str, Any], overrides: dict[str, Any],
                  declared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What remains of the run's workshop: 07's own audit, or else a read-only audit run here.

    Runs with the run's environment still in place (sandbox endpoint or AWS credentials).
    """
    if "cleanup_remaining" in metrics:
        return {"audited": True, "by": "07_cleanup", "remaining": list(metrics["cleanup_remaining"]),
                "status": metrics.get("cleanup_status", "")}
    from utils import aws, cleanup, models

    workshop_id = str(overrides.get("workshop_id") or _declared_default(declared, "workshop_id") or "demo")
    try:
        try:
            state = WorkshopState.load(workshop_id)
        except StateFileError:
            state = WorkshopState(workshop_id=workshop_id)
        region = state.region or aws.configured_region(models.profile(state.profile or models.DEFAULT_PROFILE).region)
        remaining = cleanup.audit(workshop_id, region, stopping_timeout_s=0, log=lambda _: None)
    except Exception as exc:  # noqa: BLE001 - an audit that cannot run is reported, never hidden
        return {"audited": False, "by": "runner", "remaining": [], "error": error_line(exc)}
    return {"audited": True, "by": "runner (read-only audit; 07_cleanup did not run)", "remaining": remaining}


MAX_SWEEP_POINTS = 12  # our choice: a sweep is a lesson in reading curves, not a tuning service
SWEEP_NOTEBOOK = "04_fine_tuning"
SWEEP_DEFAULTS: dict[str, Any] = {"arms": "ft_n", "use_synthetic": False}  # one job per point


def parse_sweep(text: str, declared: dict[str, Any]) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """``"learning_rate=1e-5,2e-5 epochs=1,2"`` -> (grid, points), every value checked against 04's declaration."""
    grid: dict[str, list[Any]] = {}
    for token in _split_assignments(text or ""):
        name, _, raw = token.partition("=")
        if not name or not raw:
            raise SystemExit(f"Bad sweep axis {token!r}: use NAME=V1,V2 (e.g. --sweep 'learning_rate=1e-5,2e-5 epochs=1,2').")
        if name not in declared:
            raise SystemExit(f"--sweep: {name} is not a parameter of {SWEEP_NOTEBOOK}; choose from {sorted(declared)}.")
        if name in grid:
            raise SystemExit(f"--sweep: {name} is given twice; list all its values once: {name}=V1,V2.")
        kind = _type_name(declared[name])
        grid[name] = [raw_value if kind == "str" else _literal(raw_value) for raw_value in _split_commas(raw)]
    if not grid:
        raise SystemExit("--sweep needs at least one axis, e.g. --sweep 'learning_rate=1e-5,2e-5 epochs=1,2'.")
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    if len(points) > MAX_SWEEP_POINTS:
        raise SystemExit(f"--sweep: {len(points)} points is more than {MAX_SWEEP_POINTS}; each point is a training "
                         "job (hours and money on AWS). Use fewer values.")
    points = [check_types(point, {SWEEP_NOTEBOOK: declared}) for point in points]
    return grid, points


def _split_commas(raw: str) -> list[str]:
    """``1e-5,2e-5`` -> ["1e-5", "2e-5"]; commas inside quotes or brackets stay (``{"a": 1, "b": 2}``)."""
    values = _split_assignments(raw, comma=True)
    if any(not v for v in values):
        raise SystemExit(f"--sweep: empty value in {raw!r}; separate values with single commas.")
    return values


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


def sweep_rows(point: dict[str, Any], arms: dict[str, Any], status: str) -> list[dict[str, Any]]:
    """One comparison row per trained arm of one grid point (a failed run: one row saying so)."""
    trained = {a: r for a, r in (arms or {}).items() if a != "base"}
    if not trained:
        return [{**point, "arm": "-", "status": "04 failed" if status != "ok" else "no job",
                 "records": None, "final_training_loss": None, "best_validation_loss": None}]
    return [{**point, "arm": arm, "status": r.get("status"), "records": r.get("records"),
             "final_training_loss": r.get("final_training_loss"), "best_validation_loss": r.get("best_validation_loss")}
            for arm, r in trained.items()]


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    scored = [r for r in rows if isinstance(r.get("best_validation_loss"), int | float)]
    return min(scored, key=lambda r: r["best_validation_loss"]) if scored else None


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


def _code_sources(notebook: Path) -> list[str]:
    """The source of each code cell of ``notebook``, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return ["".join(cell.get("source", "")) for cell in cells if cell.get("cell_type") == "code"]


def notebook_imports(notebook: Path) -> list[str]:
    """The top-level import statements of a notebook's code cells, as written.

    A cell that is not plain Python (an IPython magic such as 01's ``%pip``) is skipped.
    """
    import ast

    statements = []
    for source in _code_sources(notebook):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        statements += [ast.get_source_segment(source, node) or "" for node in tree.body
                       if isinstance(node, ast.Import | ast.ImportFrom)]
    return [statement for statement in statements if statement]


def installs_packages(notebook: Path) -> bool:
    """Whether a code cell of ``notebook`` installs packages (``%pip install``, ``!pip install``, ``%conda install``).

    01 installs the requirements into the kernel's environment on a SageMaker notebook instance; a kernel
    started meanwhile would import the packages being replaced (old versions, or a half-written mix), so
    the next kernel starts only after such a notebook has run.
    """
    pattern = re.compile(r"^\s*[%!](pip|pip3|conda|mamba)\s+install\b", re.MULTILINE)
    return any(pattern.search(source) for source in _code_sources(notebook))


def warm_up_code(imports: list[str]) -> str:
    """A one-line statement that runs ``imports`` in a throwaway namespace, ignoring any error.

    It only fills the kernel's module cache: the notebook's user namespace stays empty, its
    execution count stays at 0 (IPython runs ``code_to_run`` with ``store_history=False``), and
    the notebook's own import cell then runs as written, failing there if an import is broken.
    """
    body = "".join(f"    {line}\n" for statement in imports for line in statement.splitlines())
    source = f"try:\n{body}except Exception:\n    pass\n"
    return f"exec(compile({source!r}, '<warm-up>', 'exec'), {{}})"


class StartedKernel:
    """A notebook's kernel, started before its turn and stopped without waiting for it to exit.

    The kernel is the one papermill would start: the notebook's kernelspec, its folder as working
    directory, this process's environment at start, ``kernel_config()``, the in-memory IPython
    history nbclient asks for (``NotebookClient.ipython_hist_file``) and the kernel's own output in
    ``log_path``. With ``warm_up`` it also runs the notebook's import statements at start-up
    (IPython's ``code_to_run``; :func:`warm_up_code`). papermill gets the manager as ``km``;
    nbclient then neither starts nor stops the kernel (``NotebookClient.owns_km``), so
    :meth:`stop` and :meth:`reap` do, and close the channels of the client nbclient made.
    """

    def __init__(self, notebook: Path, log_path: Path, *, warm_up: bool = True) -> None:
        from jupyter_core.utils import run_sync

        clients: list[Any] = []

        class Manager(kernel_manager_with_log(log_path)):  # type: ignore[misc, valid-type]
            def client(self, **kw: Any) -> Any:
                kc = super().client(**kw)
                clients.append(kc)
                return kc

        self.notebook, self.log_path, self.clients = notebook, log_path, clients
        self.used = False  # True once a notebook runs on it (KernelsAhead.kernel_for)
        self.km = Manager(kernel_name=KERNEL, config=kernel_config())
        arguments = ["--HistoryManager.hist_file=:memory:"]
        imports = notebook_imports(notebook) if warm_up else []
        if imports:
            arguments.append(f"--IPKernelApp.code_to_run={warm_up_code(imports)}")
        run_sync(self.km.start_kernel)(cwd=str(notebook.parent), extra_arguments=arguments)

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return bool(run_sync(self.km.is_alive)())

    def stop(self, interrupt: bool = False) -> None:
        """Send the kernel a ``shutdown_request`` and return at once (:meth:`reap` waits for it).

        A kernel with many modules loaded takes up to a second to exit; nothing needs to wait for
        that once its notebook is written. ``interrupt`` first stops a cell that is still running
        (a timeout), as jupyter_client's ``shutdown_kernel`` does.
        """
        from jupyter_core.utils import run_sync

        for kc in self.clients:
            kc.stop_channels()
        self.clients.clear()
        if self.alive():
            if interrupt:
                run_sync(self.km.interrupt_kernel)()
            run_sync(self.km.request_shutdown)()

    def reap(self) -> None:
        """Wait for the process to exit, then release its sockets and files.

        jupyter_client's ``finish_shutdown`` terminates, then kills, a kernel that is still running
        after its ``shutdown_wait_time``. An empty kernel log is removed, and so is the log of a
        kernel no notebook ran on (started ahead for a step that never came: it holds only the
        noise of a boot cut short).
        """
        from jupyter_core.utils import run_sync

        try:
            if self.alive():
                run_sync(self.km.finish_shutdown)()
        finally:
            run_sync(self.km.cleanup_resources)()
        if self.log_path.exists() and (not self.used or not self.log_path.stat().st_size):
            self.log_path.unlink()  # keep only logs with something in them, of kernels that ran a notebook


class KernelsAhead:
    """The kernels of a series, one step ahead.

    On the sandbox a notebook runs for seconds, so starting its kernel (a new Python process,
    IPython, ipykernel), its imports (boto3, pandas, matplotlib) and the kernel's exit are a
    large share of the series. Here the next step's kernel boots while the current notebook
    runs, mostly waiting on the sandbox, and each kernel exits while the next notebook runs.
    """

    def __init__(self, warm_up: bool = True) -> None:
        self.warm_up = warm_up
        self.current: StartedKernel | None = None  # the running step's, until retired
        self.ahead: StartedKernel | None = None
        self.stopping: list[StartedKernel] = []

    def kernel_for(self, notebook: Path, log_path: Path, following: tuple[Path, Path] | None) -> StartedKernel:
        """The kernel of this step (started ahead, or now), after starting the following step's."""
        kernel, self.ahead = self.ahead, None
        if kernel is not None and (kernel.notebook != notebook or kernel.log_path != log_path or not kernel.alive()):
            self.retire(kernel)  # not this step's kernel, or it died while waiting: start afresh
            kernel = None
        self.current = kernel or StartedKernel(notebook, log_path, warm_up=self.warm_up)
        self.current.used = True
        if following is not None:
            self.ahead = StartedKernel(*following, warm_up=self.warm_up)
        return self.current

    def retire(self, kernel: StartedKernel, interrupt: bool = False) -> None:
        """Stop ``kernel`` without waiting; reap the kernels stopped before it (exited by now)."""
        if kernel is self.current:
            self.current = None
        kernel.stop(interrupt)
        earlier, self.stopping = self.stopping, [kernel]
        for old in earlier:
            old.reap()

    def close(self) -> None:
        """Stop and reap every kernel, the running and the one started ahead included."""
        for kernel in (self.current, self.ahead):
            if kernel is not None:
                kernel.stop(interrupt=kernel is self.current)
                self.stopping.append(kernel)
        self.current = self.ahead = None
        stopping, self.stopping = self.stopping, []
        for kernel in stopping:
            kernel.reap()


SAVE_EVERY_S = 2.0  # papermill writes the output notebook at most this often while it runs, and always at the end
ENGINE = "workshop"  # the papermill engine the runner registers: nbclient's, with SAVE_EVERY_S


def register_engine() -> str:
    """Register the runner's papermill engine and return its name.

    papermill's own engine writes the whole output notebook (JSON, schema-validated) before and
    after every cell, twice per cell on the critical path: over a hundred writes for a notebook
    that runs for seconds on the sandbox. This one is nbclient's engine with writes at most every
    :data:`SAVE_EVERY_S` while the notebook runs (a long AWS wait still shows its progress) and
    always at the start and the end, failures included. ``execute_notebook`` below is papermill's
    ``Engine.execute_notebook`` (github.com/nteract/papermill, papermill/engines.py) with the
    manager swapped.
    """
    _papermill()
    from papermill.engines import (
        NBClientEngine,
        NotebookExecutionManager,
        catch_nb_assignment,
        papermill_engines,
    )

    class ThrottledSaves(NotebookExecutionManager):
        written_at: float | None = None

        @catch_nb_assignment
        def save(self, **kwargs: Any) -> None:
            now = time.monotonic()
            if self.written_at is None or self.end_time is not None or now - self.written_at >= SAVE_EVERY_S:
                super().save()
                self.written_at = now

    class ThrottledEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                             progress_bar: bool = True, log_output: bool = False, autosave_cell_every: int = 30,
                             **kwargs: Any) -> Any:
            nb_man = ThrottledSaves(nb, output_path=output_path, progress_bar=progress_bar,
                                    log_output=log_output, autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE, ThrottledEngine)
    return ENGINE


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
    sweep: str | None = None,
    kernels_ahead: bool = True,
    warm_up: bool = True,
) -> dict[str, Any]:
    """Execute the series (or a sweep, see the module docstring) and write the run folder.

    ``kernels_ahead`` (on by default, on either backend) starts each notebook's kernel while the previous
    notebook runs (:class:`StartedKernel`; ``warm_up``: with the notebook's imports done).
    Returns the results dict.
    """
    pm = _papermill()
    notebooks = notebooks or series()
    run_id = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = runs_dir / run_id
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    check_declared(overrides, declared)
    overrides = check_types(overrides, declared)  # before anything runs or is written
    # (notebook, extra parameters, label): the series, or 01-03, 04 per grid point, 07
    steps: list[tuple[Path, dict[str, Any], str]] = [(nb, {}, nb.stem) for nb in notebooks]
    if sweep is not None:
        by_stem = {nb.stem: nb for nb in notebooks}
        if SWEEP_NOTEBOOK not in by_stem:
            raise SystemExit(f"--sweep reruns {SWEEP_NOTEBOOK}, which is not in this series.")
        grid, points = parse_sweep(sweep, declared[SWEEP_NOTEBOOK])
        overrides = {**SWEEP_DEFAULTS, **overrides}
        before = [nb for nb in notebooks if nb.stem < SWEEP_NOTEBOOK]
        after = [by_stem[s] for s in by_stem if s.startswith("07")]
        steps = [(nb, {}, nb.stem) for nb in before]
        steps += [(by_stem[SWEEP_NOTEBOOK], point, f"{SWEEP_NOTEBOOK}.sweep-{i}") for i, point in enumerate(points, 1)]
        steps += [(nb, {}, nb.stem) for nb in after]
        log(f"sweep over {point_label({k: '|'.join(map(str, v)) for k, v in grid.items()})}: {len(points)} runs of "
            f"{SWEEP_NOTEBOOK} ({overrides['arms']})")
    check_experiment(overrides, declared, points if sweep is not None else [{}])
    run_dir.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "run_id": run_id, "backend": backend, "notebooks": [], "metrics": {},
        "cleanup": {"audited": False, "remaining": []},
    }
    if sweep is not None:
        results["sweep"] = {"command": sweep, "grid": grid, "arms": overrides["arms"], "rows": []}
    kernels = KernelsAhead(warm_up) if kernels_ahead else None
    try:
        saved_env = dict(os.environ)
        with ExitStack() as stack:
            if backend == "sandbox":
                from utils import sandbox

                knobs = {} if os.environ.get(TIME_SCALE_ENV) else {"time_scale": SANDBOX_TIME_SCALE}
                server = stack.enter_context(sandbox.start(**knobs))
                os.environ.update(sandbox_environment(server.url, run_dir / "state"))
                overrides = {**SANDBOX_DEFAULTS, **overrides}
                scale = server.bedrock.settings()["time_scale"]
                results["sandbox"] = {"time_scale": scale}
                log(f"sandbox listening on {server.url} (job, deployment and deletion times x {scale:g}: "
                    f"sandbox timings are scaled)")
            else:
                os.environ["WORKSHOP_BACKEND"] = "aws"
                os.environ.pop(costs.UNBILLED_ENV, None)  # on AWS every price gap must be filled by the user
                cell_timeout = None  # 04 waits for a real training job
            results["parameters"] = effective_parameters(overrides, declared)
            engine = register_engine()
            try:
                for index, (notebook, point, label) in enumerate(steps):
                    params = {**parameters_for(overrides, declared[notebook.stem]), **point}
                    output = run_dir / f"{label}.ipynb"
                    kernel_log = run_dir / f"{label}.kernel.log"
                    start = time.perf_counter()
                    status, detail = "ok", ""
                    kernel = None
                    if kernels is not None:
                        following = None
                        if index + 1 < len(steps) and not installs_packages(notebook):
                            next_notebook, _, next_label = steps[index + 1]
                            following = (next_notebook, run_dir / f"{next_label}.kernel.log")
                        kernel = kernels.kernel_for(notebook, kernel_log, following)
                    manager = {"km": kernel.km} if kernel else {"kernel_manager_class": kernel_manager_with_log(kernel_log)}
                    returned = False  # not after Ctrl-C (KeyboardInterrupt): the kernel's cell may still be running
                    try:
                        pm.execute_notebook(
                            str(notebook), str(output), parameters=params, kernel_name=KERNEL,
                            cwd=str(notebook.parent), execution_timeout=cell_timeout, engine_name=engine,
                            progress_bar=False, log_output=False, config=kernel_config(), **manager,
                        )
                        returned = True
                    except Exception as exc:  # noqa: BLE001 - report, then stop the series
                        status, detail = "failed", error_line(exc)
                        log(f"{notebook.name} failed: {type(exc).__name__}: {str(exc)[:2000]}")
                        log(f"  executed notebook: {output}; the kernel's own log: {kernel_log}")
                    finally:
                        if kernels is not None and kernel is not None:
                            # A cell still running (a failure, or Ctrl-C, which reaches only this process: the
                            # kernel runs in its own session) is interrupted first, as jupyter_client's
                            # shutdown_kernel does; else it would go on (e.g. submitting jobs) until reaped.
                            kernels.retire(kernel, interrupt=status == "failed" or not returned)  # log tidied when reaped
                    if kernel is None and kernel_log.exists() and not kernel_log.stat().st_size:
                        kernel_log.unlink()  # keep only logs with something in them
                    seconds = round(time.perf_counter() - start, 2)
                    recorded = report.collect(output) if output.exists() else {}
                    skipped = skipped_steps(recorded)
                    if status == "ok" and skipped:
                        status, detail = "skipped-step", "; ".join(skipped)
                    results["notebooks"].append({"name": label, "status": status, "seconds": seconds, "detail": detail})
                    results["metrics"].update({k: v for k, v in recorded.items() if not k.startswith(STEP_PREFIX)})
                    where = f"  {point_label(point)}" if point else ""
                    log(f"  {label:<24} {status:<12} {seconds:6.1f} s{where}  {detail}".rstrip())
                    if point:  # a sweep point: its arms go to the comparison; the other points still run
                        results["sweep"]["rows"] += sweep_rows(point, recorded.get("arms", {}), status)
                        continue
                    if status == "failed":
                        break
                results["cleanup"] = cleanup_truth(results["metrics"], overrides, declared)
            finally:
                os.environ.clear()
                os.environ.update(saved_env)

        if sweep is not None:
            results["sweep"]["best"] = best_row(results["sweep"]["rows"])
        results["metrics"].pop("cleanup_remaining", None)
        results["status"] = series_status(results["notebooks"], len(steps))
        results["seconds_total"] = round(sum(nb["seconds"] for nb in results["notebooks"]), 2)
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        (run_dir / "report.html").write_text(report.render_html(results))
        latest = runs_dir / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_id)
        (runs_dir / "index.html").write_text(report.render_index(runs_dir))  # the comparison across runs
    finally:
        if kernels is not None:
            kernels.close()  # the last kernels exit while the report is written
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="", help='e.g. "epochs=1 workshop_id=team-a"')
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--backend", choices=("sandbox", "aws"), default=os.environ.get("WORKSHOP_BACKEND", "sandbox"))
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT_S)
    parser.add_argument("--sweep", default=None, metavar="GRID",
                        help="rerun 04 over a grid, e.g. 'learning_rate=1e-5,2e-5 epochs=1,2'")
    args = parser.parse_args(argv)

    types = declared_types({nb.stem: declared_parameters(nb) for nb in series()})
    overrides = parse_params(args.params, args.p, types)
    started = time.perf_counter()
    results = run_series(overrides, backend=args.backend, run_id=args.run_id, cell_timeout=args.cell_timeout,
                         sweep=args.sweep)
    wall = time.perf_counter() - started
    if args.sweep is not None:
        print(report.sweep_text(results["sweep"]))
    status = results["status"]
    print(f"series: {status} in {wall:.1f} s wall ({results['seconds_total']:.1f} s in notebooks)")
    for nb in results["notebooks"]:
        if nb["status"] != "ok":
            print(f"  {nb['name']}: {nb['status']}: {nb['detail']}")
    print(f"report: {RUNS_DIR / results['run_id'] / 'report.html'}  (runs/latest -> {results['run_id']})")
    truth = results["cleanup"]
    if not truth["audited"]:
        print(f"cleanup: NOT AUDITED ({truth.get('error', 'unknown reason')}); run 07_cleanup")
    elif truth["remaining"]:
        print(f"cleanup: {len(truth['remaining'])} resource(s) remain: {truth['remaining']}; run 07_cleanup")
    return EXIT_CODES[status]


if __name__ == "__main__":
    sys.exit(main())

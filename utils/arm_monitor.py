"""Watching the arms' jobs: a live ipywidgets panel in Jupyter, one log line per change elsewhere.

:func:`watch` runs :func:`utils.arms.run_arms`. Without a front-end (papermill, nbclient, a
script) it prints one line per status or sub-status change, never one per poll. With a
front-end it shows one row per arm: status, the sub-statuses of ``statusDetails`` when
Bedrock reports them, elapsed time, the latest training and validation loss, and a Stop
button that calls ``StopModelCustomizationJob``
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_StopModelCustomizationJob.html).

A kernel handles widget events (a click) only while no cell runs, so the panel watches from
a background thread and the cell waits for it. To stop a job while the cell waits, interrupt
the kernel: the panel keeps updating, its buttons work, and rerunning the cell adopts the
same jobs (nothing is created twice).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from utils import arms as experiment
from utils import aws
from utils.jobspec import JobSpecError

LIVE_PANEL_CHOICES = ("auto", "on", "off")


def front_end_present(live_panel: str = "auto") -> bool:
    """Whether to draw the live panel: ``"on"``/``"off"`` force it; ``"auto"`` detects a front-end.

    ``"auto"`` needs an IPython kernel (not a terminal IPython), ipywidgets, and a cell run by a
    front-end. Front-ends (JupyterLab, Notebook 7, VS Code) put a ``cellId`` in the metadata of
    their ``execute_request``; nbclient, and so papermill, send none
    (nbclient.client.NotebookClient.async_execute_cell calls ``kc.execute`` without metadata).
    Our assumption: a front-end that sends no ``cellId`` (classic Notebook 6) gets the log
    lines; set ``live_panel="on"`` there.
    """
    if live_panel not in LIVE_PANEL_CHOICES:
        raise JobSpecError(f"live_panel must be one of {', '.join(LIVE_PANEL_CHOICES)}, got {live_panel!r}.")
    if live_panel != "auto":
        return live_panel == "on"
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return False
    try:
        parent = kernel.get_parent() or {}
    except Exception:  # noqa: BLE001 - any doubt means no front-end: the log lines always work
        return False
    return bool((parent.get("metadata") or {}).get("cellId"))


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _loss(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


class ArmPanel:
    """One row per arm, updated from :func:`utils.arms.run_arms`'s ``on_poll`` and ``log`` hooks."""

    COLUMNS = ("arm", "status", "sub-statuses", "elapsed", "training loss", "validation loss", "")

    def __init__(self, jobs: Sequence[experiment.ArmJob], *, region: str | None = None, client: Any = None,
                 clock: Callable[[], float] = time.monotonic, metrics_every_s: float = 300,
                 read_metrics: Callable[[experiment.ArmJob], dict[str, Any]] | None = None) -> None:
        import ipywidgets as widgets

        self.jobs = list(jobs)
        self.region, self._client, self.clock = region, client, clock
        # Bedrock writes the metric CSVs while a job runs (model-customization-analyze); reading
        # them costs an S3 listing, so at most once per metrics_every_s per arm, and once at the end.
        self.metrics_every_s = metrics_every_s
        self.read_metrics = read_metrics or self._read_metrics
        self._metrics_read: dict[str, float] = {}
        self.losses: dict[str, tuple[Any, Any]] = {}
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.cells: dict[str, dict[str, Any]] = {}
        header = [widgets.HTML(f"<b>{name}</b>") for name in self.COLUMNS]
        body: list[Any] = []
        for job in self.jobs:
            button = widgets.Button(description="Stop", button_style="danger", disabled=True,
                                    tooltip=f"StopModelCustomizationJob for {job.plan.job_name}")
            button.on_click(lambda _button, job=job: self.stop(job))
            row = {"status": widgets.HTML(), "details": widgets.HTML(), "elapsed": widgets.HTML(),
                   "training": widgets.HTML(), "validation": widgets.HTML(), "button": button}
            self.cells[job.arm] = row
            body += [widgets.HTML(experiment.LABELS.get(job.arm, job.arm)), row["status"], row["details"],
                     row["elapsed"], row["training"], row["validation"], button]
        self.table = widgets.GridBox(header + body, layout=widgets.Layout(
            grid_template_columns="repeat(6, max-content) auto", grid_gap="2px 16px"))
        self.log_box = widgets.HTML()
        self.widget = widgets.VBox([self.table, self.log_box])
        self.refresh()

    @property
    def bedrock(self) -> Any:
        if self._client is None:
            self._client = aws.client("bedrock", self.region)
        return self._client

    # ---- hooks for run_arms --------------------------------------------------------------
    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            self.log_box.value = "<pre style='margin:0'>" + html.escape("\n".join(self.lines[-12:])) + "</pre>"

    def polled(self, job: experiment.ArmJob, described: dict[str, Any]) -> None:
        """Latest losses: the metric CSVs' last rows (throttled), else GetModelCustomizationJob's
        ``trainingMetrics``/``validationMetrics`` of a completed job."""
        now = self.clock()
        last = self._metrics_read.get(job.arm)
        if job.status == "InProgress" and (last is None or now - last >= self.metrics_every_s) or (
                job.status == "Completed" and last != -1.0):
            self._metrics_read[job.arm] = -1.0 if job.status == "Completed" else now
            frames = self.read_metrics(job)
            training, validation = frames.get("training"), frames.get("validation")
            latest_t = float(training["training_loss"].iloc[-1]) if training is not None and not training.empty else None
            latest_v = float(validation["validation_loss"].iloc[-1]) if validation is not None and not validation.empty else None
            if latest_t is not None or latest_v is not None:
                self.losses[job.arm] = (latest_t, latest_v)
        if job.arm not in self.losses:
            training = (described.get("trainingMetrics") or {}).get("trainingLoss")
            validation = [v.get("validationLoss") for v in described.get("validationMetrics") or []
                          if v.get("validationLoss") is not None]
            if training is not None or validation:
                self.losses[job.arm] = (training, validation[-1] if validation else None)
        self.refresh()

    def _read_metrics(self, job: experiment.ArmJob) -> dict[str, Any]:
        from utils import customization

        try:
            return customization.read_metrics(job.plan.output_uri, job.job_arn, region=self.region)
        except Exception:  # noqa: BLE001 - not written yet or unreadable: the panel shows the last known, watching goes on
            return {}

    def set_losses(self, arm: str, training: Any, validation: Any) -> None:
        """Losses read from the metric CSVs (latest step), e.g. by :func:`utils.customization.read_metrics`."""
        self.losses[arm] = (training, validation)
        self.refresh()

    # ---- rendering and the Stop button ---------------------------------------------------
    def refresh(self) -> None:
        now = self.clock()
        for job in self.jobs:
            row = self.cells[job.arm]
            status = job.status
            if status in ("Failed", "Stopped") and job.failure_message:
                fix = experiment.likely_fix(job.failure_message)
                status += f"<br><small>{html.escape(job.failure_message)}<br>Likely fix: {html.escape(fix)}</small>"
            row["status"].value = status
            row["details"].value = ", ".join(f"{phase.replace('Details', '')}: {s}" for phase, s in job.details.items()) or "-"
            end = job.ended if job.ended is not None else (None if job.status in experiment.ACTIVE + ("Queued",) else now)
            row["elapsed"].value = _clock((end or now) - job.started) if job.started is not None else "-"
            training, validation = self.losses.get(job.arm, (None, None))
            row["training"].value, row["validation"].value = _loss(training), _loss(validation)
            row["button"].disabled = not (job.job_arn and job.status == "InProgress")

    def stop(self, job: experiment.ArmJob) -> None:
        """The Stop button: ask Bedrock to stop the job; the watcher shows Stopping, then Stopped."""
        try:
            self.bedrock.stop_model_customization_job(jobIdentifier=job.job_arn)
            self.log(f"{job.arm:<8} stop requested for {job.plan.job_name}")
        except ClientError as err:
            self.log(f"{job.arm:<8} could not stop: {err.response['Error'].get('Message', err)}")
        self.cells[job.arm]["button"].disabled = True

    def sleep(self, seconds: float) -> None:
        """Sleep between polls, ticking the elapsed column every second."""
        end = self.clock() + seconds
        while (left := end - self.clock()) > 0:
            time.sleep(min(1.0, left))
            self.refresh()


def watch(jobs: Sequence[experiment.ArmJob], *, quota: int, live_panel: str = "auto", poll_s: float = 60,
          timeout_s: float = 6 * 3600, region: str | None = None,
          on_submit: Callable[[experiment.ArmJob], None] | None = None) -> list[experiment.ArmJob]:
    """Submit and watch the arms: the live panel when a front-end is present, else log lines."""
    if not front_end_present(live_panel):
        return experiment.run_arms(jobs, quota=quota, poll_s=poll_s, timeout_s=timeout_s, region=region,
                                   on_submit=on_submit)
    from IPython.display import display

    panel = ArmPanel(jobs, region=region)
    display(panel.widget)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["jobs"] = experiment.run_arms(
                jobs, quota=quota, poll_s=poll_s, timeout_s=timeout_s, region=region, log=panel.log,
                on_submit=on_submit, on_poll=panel.polled, sleep=panel.sleep)
        except Exception as err:  # noqa: BLE001 - shown in the cell by the waiting thread
            outcome["error"] = err
        finally:
            panel.refresh()

    thread = threading.Thread(target=run, name="arm-watcher", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        print("The panel keeps watching in the background and its Stop buttons work now. "
              "Rerun this cell to wait again (it adopts the same jobs).")
        return list(jobs)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["jobs"]

"""The arms' monitor: front-end detection, the live panel's rows and Stop button, log lines without a front-end."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.test_arms import FakeBedrock, three_jobs
from utils import arm_monitor, arms
from utils.jobspec import JobSpecError


class FakeKernel:
    def __init__(self, metadata):
        self.metadata = metadata

    def get_parent(self):
        return {"header": {"msg_type": "execute_request"}, "metadata": self.metadata}


class FakeShell:
    def __init__(self, metadata):
        self.kernel = FakeKernel(metadata)


def test_front_end_detection(monkeypatch):
    import IPython

    assert arm_monitor.front_end_present("on") and not arm_monitor.front_end_present("off")
    with pytest.raises(JobSpecError, match="live_panel must be one of auto, on, off"):
        arm_monitor.front_end_present("yes")
    assert not arm_monitor.front_end_present("auto")  # plain Python: no kernel
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell({}))  # nbclient / papermill: no cellId
    assert not arm_monitor.front_end_present("auto")
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell({"cellId": "c1", "recordTiming": False}))
    assert arm_monitor.front_end_present("auto")


def test_without_a_front_end_watch_prints_one_line_per_change(monkeypatch, capsys):
    bedrock = FakeBedrock(limit=2, polls=5)
    monkeypatch.setattr(arms.aws, "client", lambda *a, **k: bedrock)
    monkeypatch.setattr(arms.time, "sleep", lambda s: None)
    done = arm_monitor.watch(three_jobs(), quota=2, live_panel="auto", poll_s=0)
    assert [j.status for j in done] == ["Completed"] * 3
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 + 1 + 3 * 3  # submitted x3, queued, then per arm: InProgress, Completed, trainingDetails


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class StoppingBedrock(FakeBedrock):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.stopped = []

    def stop_model_customization_job(self, jobIdentifier):
        self.stopped.append(jobIdentifier)
        self.jobs[jobIdentifier.rsplit("/", 1)[-1]]["status"] = "Stopped"
        return {}


def test_panel_rows_losses_and_stop_button():
    bedrock, clock = StoppingBedrock(limit=3, polls=10**6), Clock()
    jobs = three_jobs()
    reads = []

    def read_metrics(job):
        reads.append((job.arm, clock.now))
        return {"training": pd.DataFrame({"training_loss": [2.0, 1.4]}),
                "validation": pd.DataFrame({"validation_loss": [2.2, 2.1]})}

    panel = arm_monitor.ArmPanel(jobs, client=bedrock, clock=clock, read_metrics=read_metrics, metrics_every_s=300)
    assert panel.cells["ft_n"]["status"].value == "Queued" and panel.cells["ft_n"]["button"].disabled
    polls = []

    def sleep(seconds):
        clock.now += 60
        polls.append(seconds)
        if len(polls) == 2:
            panel.cells["ft_4n"]["button"].click()  # what a click in the front-end does
        if len(polls) == 4:
            raise StopIteration

    with pytest.raises(StopIteration):
        arms.run_arms(jobs, quota=3, poll_s=60, client=bedrock, log=panel.log, on_poll=panel.polled, sleep=sleep,
                      clock=clock)
    assert bedrock.stopped == ["arn:job/job-ft_4n"]
    assert panel.cells["ft_4n"]["status"].value.startswith("Stopped")
    assert "Likely fix" in panel.cells["ft_4n"]["status"].value  # Stopped shows failureMessage (or its absence) and a fix
    row = panel.cells["ft_n"]
    assert row["status"].value == "InProgress" and not row["button"].disabled
    assert row["details"].value == "training: InProgress"
    assert (row["training"].value, row["validation"].value) == ("1.400", "2.100")
    assert row["elapsed"].value == "0:03:00"  # the last poll
    panel.refresh()
    assert row["elapsed"].value == "0:04:00"  # ticks without a poll
    assert [t for arm, t in reads if arm == "ft_n"] == [100.0]  # throttled: once per 300 s, not once per poll
    assert any("stop requested" in line for line in panel.lines)
    assert "ft_4n" in panel.log_box.value and "Stopped" in panel.log_box.value


def test_later_notebooks_refuse_an_arm_that_did_not_complete():
    from utils.customization import JobFailed

    failed = {"arm": "ft_n_3n", "status": "Failed", "model_arn": None,
              "failure_message": "Unable to parse Amazon S3 file: t.jsonl. Data files must conform to JSONL format."}
    results = {"base": {"status": "NoJob"}, "ft_n": {"status": "Completed", "model_arn": "arn:m"}, "ft_n_3n": failed}
    assert arms.completed_arm(results, "ft_n", "05_deployment")["model_arn"] == "arn:m"
    assert arms.completed_arm({}, None, "05_deployment") is None  # 04 trained nothing
    with pytest.raises(JobFailed) as err:
        arms.completed_arm(results, "ft_n_3n", "06_evaluation")
    assert "06_evaluation: arm ft_n_3n" in str(err.value) and "Failed" in str(err.value) and "rerun 02" in str(err.value)
    with pytest.raises(JobFailed, match="arm ft_4n .* InProgress"):
        arms.completed_arm({"ft_4n": {"status": "InProgress"}}, "ft_4n", "05_deployment")
    with pytest.raises(JobFailed, match="no arm 'ft_4n'"):
        arms.completed_arm(results, "ft_4n", "05_deployment")


def test_panel_mode_watches_from_a_thread_and_returns_the_jobs(monkeypatch, capsys):
    bedrock = FakeBedrock(limit=2, polls=2)
    monkeypatch.setattr(arms.aws, "client", lambda *a, **k: bedrock)
    done = arm_monitor.watch(three_jobs(), quota=2, live_panel="on", poll_s=0)
    assert [j.status for j in done] == ["Completed"] * 3 and bedrock.creates == ["job-ft_n", "job-ft_4n", "job-ft_n_3n"]
    assert "Completed (" not in capsys.readouterr().out  # the status lines went to the panel, not to the cell

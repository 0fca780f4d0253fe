"""The by-hand path (README §5, `make lab`): the committed notebooks, run the way a learner runs them.

nbclient (not papermill, not the runner) executes 01 -> 07 in order, each by its own committed
kernelspec (``conda_python3``) and with its committed parameters, in the environment `make lab`
gives Jupyter (:func:`utils.lab.environment`): the detached sandbox that `make lab` starts and
every kernel finds again, and the spend opt-in. So the series must run end to end without an
edit: every billable step runs, the fine-tuned model answers and is scored, cleanup leaves
nothing, and no cell shows a traceback or a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

from utils import lab, report, runner, sandbox

NOTEBOOKS = runner.series()
KERNELSPEC = "conda_python3"
CELL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def byhand(tmp_path_factory):
    """`make lab`'s environment, with the sandbox record and the state file in a temporary folder."""
    base = tmp_path_factory.mktemp("byhand")
    saved = dict(os.environ)
    env = lab.environment()
    env.pop("AWS_ENDPOINT_URL", None)  # by hand, kernels find the detached sandbox through its record
    env.pop("WORKSHOP_REGION", None)
    env.update(WORKSHOP_SANDBOX_DIR=str(base / "sandbox"), WORKSHOP_STATE_DIR=str(base / "state"))
    os.environ.clear()
    os.environ.update(env)  # kernels inherit this process's environment, as they inherit Jupyter's
    try:
        sandbox.ensure_running()  # what `make lab` does before it starts Jupyter
        yield base
    finally:
        sandbox.stop_detached()
        os.environ.clear()
        os.environ.update(saved)


def execute(notebook: Path, out_dir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    # No kernel_name: nbclient starts the notebook's own kernelspec, as Jupyter does.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(notebook.parent)}},
                            config=runner.kernel_config())  # the kernel transport `make lab` configures
    client.execute()
    nbformat.write(nb, out_dir / notebook.name)
    return nb


def noise(nb: nbformat.NotebookNode) -> list[str]:
    """Tracebacks, warnings and stderr text in the outputs: a learner should see none."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if output.get("output_type") == "error" or "Traceback" in text or "Warning" in text:
                found.append(f"cell {index}: {text[:300] or output.get('ename')}")
            elif output.get("name") == "stderr" and text.strip():
                found.append(f"cell {index} stderr: {text[:300]}")
    return found


def test_every_notebook_declares_the_registered_kernelspec():
    assert {nbformat.read(nb, as_version=4).metadata.kernelspec.name for nb in NOTEBOOKS} == {KERNELSPEC}
    try:
        KernelSpecManager().get_kernel_spec(KERNELSPEC)
    except NoSuchKernel:
        pytest.fail(f"No '{KERNELSPEC}' kernel is registered: run `make setup` (it registers .venv under that name).")


def test_the_environment_switches_the_opt_in_on_and_no_account_in():
    env = lab.environment({"AWS_PROFILE": "prod", "AWS_ACCESS_KEY_ID": "AKIA...", "PATH": "/bin"})
    assert env["WORKSHOP_BACKEND"] == "sandbox" and env["WORKSHOP_CONFIRM_SPEND"] == "1"
    assert "AWS_PROFILE" not in env and "AWS_ACCESS_KEY_ID" not in env and env["PATH"] == "/bin"


def scored_models(recorded: dict) -> list[str]:
    """The models 06 scored, in order: the base model, the served arm(s), the comparison model."""
    return [row["model"] for row in report.rows(recorded["evaluation_scores"])]


CHECKS = {
    "01_permissions": lambda r: r["backend"] == "sandbox",
    "02_data_preparation": lambda r: r["train_records"] > 0,
    "03_synthetic_data": lambda r: r["synthetic_pairs"] > 0,
    "04_fine_tuning": lambda r: len(r["loss_curve"]["training_loss"]) > 1,
    "05_deployment": lambda r: r["deployment_output_tokens"] > 0,
    "06_evaluation": lambda r: scored_models(r)[0].endswith("(base model)") and any("(FT-" in m for m in scored_models(r)),
    "07_cleanup": lambda r: r["cleanup_remaining"] == [],
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_by_hand_with_its_committed_parameters(notebook, byhand):
    nb = execute(notebook, byhand)
    recorded = report.collect(byhand / notebook.name)
    assert CHECKS[notebook.stem](recorded), {k: v for k, v in recorded.items() if k != "evaluation_scores"}
    assert noise(nb) == []

"""Installing on a SageMaker notebook instance: 01's first cell and the on-start lifecycle script.

Neither can reach a real instance here, so the script runs with stand-ins for what only an
instance has (`sudo -u ec2-user -i`, the conda installation under /home/ec2-user/anaconda3):
it must find the clone, install requirements.txt into the `python3` environment as ec2-user,
and set the backend for every kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from utils.state import REPO_ROOT

SCRIPT = REPO_ROOT / "notebooks" / "lifecycle" / "on-start.sh"


def first_code_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_01_installs_the_requirements_into_the_kernel_only_on_a_notebook_instance():
    source = first_code_cell(REPO_ROOT / "notebooks" / "01_permissions.ipynb")
    guard, install = source.strip().splitlines()[-2:]
    assert guard.startswith('if os.path.exists("/opt/ml/metadata/resource-metadata.json")')
    assert install.startswith("    %pip install") and install.endswith("-r ../requirements.txt")
    assert (REPO_ROOT / "notebooks" / "../requirements.txt").resolve() == REPO_ROOT / "requirements.txt"


def run_script(tmp_path: Path, with_clone: bool = True) -> tuple[subprocess.CompletedProcess, Path, Path]:
    sagemaker = tmp_path / "SageMaker"
    (sagemaker / "other-project").mkdir(parents=True)
    clone = sagemaker / "bedrock-finetuning-workshop"
    if with_clone:
        (clone / "notebooks").mkdir(parents=True)
        (clone / "requirements.txt").write_text("boto3>=1.44,<2\n")
        (clone / "notebooks" / "01_permissions.ipynb").write_text("{}")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    # `sudo -u ec2-user -i` reads the commands from stdin in a login shell.
    (stubs / "sudo").write_text("#!/bin/bash\nexec bash -s\n")
    (stubs / "sudo").chmod(0o755)
    conda = tmp_path / "anaconda3"
    (conda / "bin").mkdir(parents=True)
    # `source activate python3` records the environment; pip records its arguments.
    (conda / "bin" / "activate").write_text(
        'echo "activate $1" >> "$CALLS"\npip() { echo "pip $*" >> "$CALLS"; }\n')
    calls = tmp_path / "calls.txt"
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(home), "SAGEMAKER_DIR": str(sagemaker),
           "CONDA_DIR": str(conda), "CALLS": str(calls)}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    return result, calls, home


def wait_for(path: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


def test_on_start_installs_the_requirements_into_python3_and_sets_the_backend(tmp_path):
    result, calls, home = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "installing" in result.stdout and "bedrock-finetuning-workshop/requirements.txt" in result.stdout
    recorded = wait_for(calls, "pip ")
    clone = tmp_path / "SageMaker" / "bedrock-finetuning-workshop"
    assert recorded.splitlines() == [
        "activate python3",
        f"pip install --quiet --disable-pip-version-check -r {clone}/requirements.txt",
    ]
    log = tmp_path / "SageMaker" / ".workshop-install.log"
    assert "requirements installed into python3" in wait_for(log, "installed")
    startup = home / ".ipython" / "profile_default" / "startup" / "00-bedrock-workshop.py"
    namespace: dict = {}
    saved = os.environ.pop("WORKSHOP_BACKEND", None)
    try:
        exec(startup.read_text(), namespace)  # what IPython runs at every kernel start
        assert os.environ["WORKSHOP_BACKEND"] == "aws"
    finally:
        os.environ.pop("WORKSHOP_BACKEND", None)
        if saved is not None:
            os.environ["WORKSHOP_BACKEND"] = saved


def test_on_start_without_a_clone_installs_nothing_and_lets_the_instance_start(tmp_path):
    result, calls, _ = run_script(tmp_path, with_clone=False)
    assert result.returncode == 0 and "nothing installed" in result.stdout
    time.sleep(0.2)
    assert not calls.exists()

"""JupyterLab on the offline sandbox, to step through the notebooks by hand: ``make lab``.

* starts (or reuses) the detached sandbox (:func:`utils.sandbox.ensure_running`); every
  notebook's kernel finds it again through ``.sandbox/sandbox.json``, and restarts it if
  it was stopped;
* runs JupyterLab on ``notebooks/`` in :func:`environment`: the sandbox backend, no AWS
  profile or credentials files, and the spend opt-in ``WORKSHOP_CONFIRM_SPEND=1``, so
  every billable step runs (against the sandbox, which bills nothing) without editing a
  parameter. The notebooks' committed defaults still spend nothing anywhere the opt-in
  is unset (the nbval pass checks that);
* ``make sandbox-stop`` (or ``make clean``) stops the sandbox afterwards.

The switch is this environment, not a backend test in ``utils``: the money guard
(:func:`utils.costs.guard`) reads the opt-in the same way on AWS and on the sandbox.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from utils import costs
from utils.state import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# What `make lab` adds to the environment of Jupyter and of every kernel it starts.
BYHAND_ENVIRONMENT: dict[str, str] = {
    "WORKSHOP_BACKEND": "sandbox",
    costs.CONFIRM_SPEND_ENV: "1",  # the sandbox bills nothing: see every billable step run
    costs.UNBILLED_ENV: "1",  # and prices the dated table lacks count as $0 there
    "AWS_CONFIG_FILE": os.devnull,  # never read a real profile, whatever a cell calls
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# Removed so that nothing in a by-hand session can pick a real account.
DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) as `make lab` gives it to Jupyter."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in DROPPED}
    env.update(BYHAND_ENVIRONMENT)
    return env


def lab_command(argv: list[str] | None = None, euid: int | None = None) -> list[str]:
    """The ``jupyter lab`` command line `make lab` runs (extra arguments last)."""
    from utils.runner import kernel_config

    # The kernels' transport as the runner sets it (encrypted, so no plain-TCP warning per kernel).
    kernels = [f"--{section}.{name}={value}" for section, values in kernel_config().items()
               for name, value in values.items()]
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOK_DIR}", *kernels]
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    if euid == 0:
        # Jupyter refuses to start as root without it (containers and dev boxes often run as root);
        # the server still listens on localhost only.
        command.append("--allow-root")
    return command + list(argv or [])


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox, then JupyterLab (extra arguments go to ``jupyter lab``)."""
    from utils import sandbox

    env = environment()
    url = env.get("AWS_ENDPOINT_URL") or sandbox.ensure_running()
    print(f"sandbox: {url}  (it keeps running after Lab stops; `make sandbox-stop` stops it)")
    print(f"{costs.CONFIRM_SPEND_ENV}=1: the billable steps run against the sandbox, which bills nothing.")
    command = lab_command(argv)
    os.chdir(REPO_ROOT)
    # Jupyter replaces this process, so Ctrl-C and signals reach it (and its kernels) directly.
    os.execve(sys.executable, command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

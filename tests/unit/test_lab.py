"""utils.lab: the command line `make lab` runs."""

from __future__ import annotations

from utils import lab


def test_lab_starts_as_root_too():
    """Jupyter exits at once as root unless told --allow-root (a container or dev box run as root)."""
    assert "--allow-root" in lab.lab_command(euid=0)
    assert "--allow-root" not in lab.lab_command(euid=1000)


def test_extra_arguments_come_last():
    command = lab.lab_command(["--no-browser"], euid=1000)
    assert command[-1] == "--no-browser" and "--ServerApp.root_dir=" + str(lab.NOTEBOOK_DIR) in command

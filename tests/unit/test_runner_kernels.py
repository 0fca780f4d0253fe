"""The runner's kernels started one notebook ahead, their warm-up imports, and the engine's throttled writes."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest

from utils import runner


def notebook_file(tmp_path, cells, name="nb.ipynb"):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": runner.KERNEL, "display_name": runner.KERNEL, "language": "python"}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_notebook_imports_are_the_top_level_import_statements_of_plain_python_cells(tmp_path):
    path = notebook_file(tmp_path, [
        nbformat.v4.new_code_cell("import os\nif os.sep:\n    %pip install nothing"),  # a magic: not Python
        nbformat.v4.new_markdown_cell("import markdown_is_not_code"),
        nbformat.v4.new_code_cell("import json\nfrom xml.dom import (\n    minidom,\n)\nx = 1\nif x:\n    import csv"),
    ])
    assert runner.notebook_imports(path) == ["import json", "from xml.dom import (\n    minidom,\n)"]


def test_warm_up_fills_the_module_cache_only_and_ignores_a_broken_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    namespace: dict = {}
    exec(runner.warm_up_code(["import colorsys", "from xml.dom import (\n    minidom,\n)",  # noqa: S102
                              "import no_such_module_for_this_test", "import this_is_never_reached"]), namespace)
    assert "colorsys" in sys.modules and "xml.dom.minidom" in sys.modules
    assert set(namespace) == {"__builtins__"}  # nothing bound where the code ran


def test_a_kernel_started_ahead_runs_its_notebook_with_a_fresh_namespace_and_exits(tmp_path, monkeypatch):
    import papermill as pm
    import papermill.engines

    path = notebook_file(tmp_path, [
        nbformat.v4.new_code_cell("import sys\nwarm = 'xml.dom.minidom' in sys.modules\n"
                                  "fresh = 'minidom' not in dir() and 'json' not in dir()"),
        nbformat.v4.new_code_cell("from xml.dom import minidom\nimport json\nprint(json.dumps([warm, fresh]))"),
        *[nbformat.v4.new_code_cell("pass") for _ in range(4)],
    ])
    writes = []
    real_write = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, out: (writes.append(out), real_write(nb, out)))
    kernels = runner.KernelsAhead()
    log = tmp_path / "nb.kernel.log"
    kernel = kernels.kernel_for(path, log, following=(path, tmp_path / "next.kernel.log"))
    assert kernels.ahead is not None and kernels.ahead.alive()  # the following step's kernel is booting
    try:
        output = tmp_path / "out.ipynb"
        pm.execute_notebook(str(path), str(output), kernel_name=runner.KERNEL, cwd=str(tmp_path), progress_bar=False,
                            engine_name=runner.register_engine(), km=kernel.km, config=runner.kernel_config())
        kernels.retire(kernel)
    finally:
        kernels.close()
    executed = json.loads(output.read_text())
    assert "".join(executed["cells"][1]["outputs"][0]["text"]) == "[true, true]\n"
    assert [c["execution_count"] for c in executed["cells"]] == [1, 2, 3, 4, 5, 6]  # the warm-up counts for nothing
    assert 2 <= len(writes) < 2 * 6  # start and end (and at most every SAVE_EVERY_S), not before and after each cell
    assert not kernel.alive() and not kernel.km.has_kernel
    assert not log.exists() and not (tmp_path / "next.kernel.log").exists()  # empty kernel logs are removed


def test_a_dead_kernel_started_ahead_is_replaced(tmp_path):
    path = notebook_file(tmp_path, [nbformat.v4.new_code_cell("pass")])
    kernels = runner.KernelsAhead(warm_up=False)
    try:
        kernels.kernel_for(path, tmp_path / "a.kernel.log", following=(path, tmp_path / "b.kernel.log"))
        doomed = kernels.ahead
        doomed.km.provisioner.process.kill()
        doomed.km.provisioner.process.wait()
        replacement = kernels.kernel_for(path, tmp_path / "b.kernel.log", following=None)
        assert replacement is not doomed and replacement.alive()
    finally:
        kernels.close()
    assert not replacement.alive()


@pytest.mark.parametrize("scale_env", ["", "2"])
def test_the_runner_scales_sandbox_times_unless_the_environment_does(scale_env, tmp_path, monkeypatch):
    monkeypatch.setenv(runner.TIME_SCALE_ENV, scale_env)
    seen = {}

    def execute(source, output, **kw):  # stands in for papermill: asks the sandbox the kernel would reach
        from utils import sandbox

        seen["scale"] = sandbox.configure(os.environ["AWS_ENDPOINT_URL"])["time_scale"]
        raise RuntimeError("stop here")

    monkeypatch.setattr(runner._papermill(), "execute_notebook", execute)
    results = runner.run_series({}, runs_dir=tmp_path, run_id="s", log=lambda _: None,
                                notebooks=[runner.series()[0]], kernels_ahead=False)
    expected = float(scale_env) if scale_env else runner.SANDBOX_TIME_SCALE
    assert seen["scale"] == expected and results["sandbox"] == {"time_scale": expected}


def test_ctrl_c_interrupts_the_running_cell_of_a_kernel_started_ahead(tmp_path, monkeypatch):
    retired = []

    class Kernels:  # records what the runner asks of its kernels
        def __init__(self, warm_up):
            pass

        def kernel_for(self, notebook, log_path, following):
            return type("Kernel", (), {"km": object()})()

        def retire(self, kernel, interrupt=False):
            retired.append(interrupt)

        def close(self):
            pass

    def execute(source, output, **kw):  # Ctrl-C while a cell runs
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "KernelsAhead", Kernels)
    monkeypatch.setattr(runner._papermill(), "execute_notebook", execute)
    with pytest.raises(KeyboardInterrupt):
        runner.run_series({}, backend="aws", runs_dir=tmp_path, run_id="c", log=lambda _: None,
                          notebooks=[runner.series()[0]])
    assert retired == [True]


def test_no_kernel_starts_ahead_while_a_notebook_installs_packages(tmp_path, monkeypatch):
    installs = notebook_file(tmp_path, [nbformat.v4.new_code_cell("import os\nif os.sep:\n    %pip install -r x")],
                             name="01_installs.ipynb")
    plain = notebook_file(tmp_path, [nbformat.v4.new_code_cell("import json")], name="02_plain.ipynb")
    third = notebook_file(tmp_path, [nbformat.v4.new_code_cell("pass")], name="03_third.ipynb")
    assert runner.installs_packages(installs) and not runner.installs_packages(plain)
    following = {}

    class Kernels:
        def __init__(self, warm_up):
            pass

        def kernel_for(self, notebook, log_path, after):
            following[notebook.stem] = after and after[0].stem
            return type("Kernel", (), {"km": object()})()

        def retire(self, kernel, interrupt=False):
            pass

        def close(self):
            pass

    def execute(source, output, **kw):
        if "03_" in source:
            raise KeyboardInterrupt  # ends the run before any audit

    monkeypatch.setattr(runner, "KernelsAhead", Kernels)
    monkeypatch.setattr(runner._papermill(), "execute_notebook", execute)
    with pytest.raises(KeyboardInterrupt):
        runner.run_series({}, backend="aws", runs_dir=tmp_path / "runs", run_id="p", log=lambda _: None,
                          notebooks=[installs, plain, third])
    assert following == {"01_installs": None, "02_plain": "03_third", "03_third": None}


def test_the_log_of_a_kernel_no_notebook_ran_on_is_removed_even_with_boot_noise(tmp_path):
    path = notebook_file(tmp_path, [nbformat.v4.new_code_cell("pass")])
    kernels = runner.KernelsAhead(warm_up=False)
    ahead_log = tmp_path / "never.kernel.log"
    try:
        kernels.kernel_for(path, tmp_path / "a.kernel.log", following=(path, ahead_log))
        with ahead_log.open("a") as log:  # what a boot cut short by the series' end leaves behind
            log.write("Traceback (most recent call last): KeyboardInterrupt\n")
    finally:
        kernels.close()
    assert not ahead_log.exists()

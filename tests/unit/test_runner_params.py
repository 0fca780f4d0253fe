"""utils.runner: parameters pass through intact and are type-checked before any notebook runs."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from utils import runner

# What papermill.inspect_notebook reports for a few of the series' parameters.
DECLARED = {
    "03_synthetic_data": {
        "workshop_id": {"inferred_type_name": "str", "default": '"demo"', "help": "the workshop id"},
        "confirm_spend": {"inferred_type_name": "bool", "default": "False", "help": "set True to call the teacher"},
        "max_spend_usd": {"inferred_type_name": "float", "default": "1.0", "help": "refuse above this"},
        "price_overrides": {"inferred_type_name": "dict", "default": "{}", "help": "prices the table lacks"},
    },
    "04_fine_tuning": {
        "epochs": {"inferred_type_name": "int", "default": "2", "help": "epochCount; Nova accepts 1-5"},
        "confirm_spend": {"inferred_type_name": "bool", "default": "False", "help": "set True to train"},
        "price_overrides": {"inferred_type_name": "dict", "default": "{}", "help": "prices the table lacks"},
    },
}


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_replay_command() -> tuple[dict[str, str], str]:
    """The README's seed-2024 replay command: its environment assignments and its PARAMS text."""
    line = next(x for x in README.read_text().splitlines() if "profile_name=seed-2024" in x and "make workshop" in x)
    prefix, params = line.split(" make workshop PARAMS=", 1)
    assert params.startswith("'") and params.endswith("'"), line
    env = dict(word.split("=", 1) for word in shlex.split(prefix))
    return env, params[1:-1]


def test_the_readme_replay_parameters_arrive_intact():
    env, text = readme_replay_command()
    assert env == {"WORKSHOP_SANDBOX_CATALOG": "2024"}
    assert runner.parse_params(text) == {
        "profile_name": "seed-2024", "arms": "base,ft_n", "n_originals": 32, "use_synthetic": False,
        "price_overrides": {"train_per_1k:claude-3-haiku": 0, "storage_month:claude-3-haiku": 0,
                            "pt_hour_nocommit:claude-3-haiku": 0},
    }


def test_json_literals_and_bare_words():
    assert runner.parse_params('confirm_spend=true ids=["a", "b"] x=null name=team-a') == {
        "confirm_spend": True, "ids": ["a", "b"], "x": None, "name": "team-a"}


def test_a_name_declared_str_keeps_its_text():
    assert runner.parse_params("workshop_id=2024 epochs=3", declared_types={"workshop_id": "str"}) == {
        "workshop_id": "2024", "epochs": 3}


@pytest.mark.parametrize(
    "overrides",
    [{"epochs": 3}, {"confirm_spend": True}, {"max_spend_usd": 2}, {"max_spend_usd": 2.5},
     {"price_overrides": {"k": 0}}, {"workshop_id": "team-a"}],
)
def test_values_of_the_declared_type_pass(overrides):
    checked = runner.check_types(overrides, DECLARED)
    assert checked == overrides
    if "max_spend_usd" in overrides:
        assert isinstance(checked["max_spend_usd"], float)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"epochs": 3.7}, "epochs=3.7 is float, but 04_fine_tuning declares `epochs: int = 2`"),
        ({"epochs": True}, "epochs=True is bool"),
        ({"epochs": "three"}, "epochs='three' is str"),
        ({"confirm_spend": 1}, "confirm_spend=1 is int, but 03_synthetic_data declares `confirm_spend: bool"),
        ({"confirm_spend": "yes"}, "confirm_spend='yes' is str"),
        ({"max_spend_usd": False}, "max_spend_usd=False is bool"),
        ({"price_overrides": "k=0"}, "price_overrides='k=0' is str"),
        ({"workshop_id": 7}, "workshop_id=7 is int"),
    ],
)
def test_a_value_of_another_type_is_refused_with_the_declaration(overrides, expected):
    with pytest.raises(SystemExit) as refused:
        runner.check_types(overrides, DECLARED)
    message = str(refused.value)
    assert expected in message and "nothing was run" in message and "Fix:" in message


def test_every_mismatch_is_named_once():
    with pytest.raises(SystemExit) as refused:
        runner.check_types({"epochs": 3.7, "confirm_spend": "yes"}, DECLARED)
    message = str(refused.value)
    assert message.count("epochs=3.7") == 1 and message.count("confirm_spend='yes'") == 1


def test_run_series_refuses_before_running_or_writing_anything(tmp_path):
    with pytest.raises(SystemExit, match="epochs=3.7 is float"):
        runner.run_series({"epochs": 3.7}, runs_dir=tmp_path, run_id="x", log=lambda *_: None)
    assert not list(tmp_path.iterdir())


def test_the_series_declares_each_name_with_one_type():
    """A parameter shared by several notebooks has the same type in all of them."""
    seen: dict[str, set[str]] = {}
    for notebook in runner.series():
        for name, spec in runner.declared_parameters(notebook).items():
            seen.setdefault(name, set()).add(spec["inferred_type_name"])
    assert {name: types for name, types in seen.items() if len(types) > 1} == {}
    assert seen["epochs"] == {"int"} and seen["price_overrides"] == {"dict"}


def test_a_kernels_own_output_goes_to_its_log_not_the_console(tmp_path, capfd):
    """What the kernel process prints outside any cell (ipykernel's log lines) lands in the run folder."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys\nprint('kernel process line', file=sys.__stderr__, flush=True)\nprint('cell output')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    log = tmp_path / "nb.kernel.log"
    NotebookClient(nb, timeout=60, kernel_name="python3", config=runner.kernel_config(),
                   kernel_manager_class=runner.kernel_manager_with_log(log)).execute()
    assert nb.cells[0].outputs[0]["text"] == "cell output\n"
    assert "kernel process line" in log.read_text()
    err = capfd.readouterr().err
    assert "kernel process line" not in err and "without encryption" not in err


def test_sweep_grid_is_checked_and_runs_04_once_per_point(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    import papermill as pm

    from utils import report

    declared = runner.declared_parameters(runner.NOTEBOOK_DIR / "04_fine_tuning.ipynb")
    grid, points = runner.parse_sweep("learning_rate=1e-5,2e-5 epochs=1,2", declared)
    assert grid == {"learning_rate": [1e-5, 2e-5], "epochs": [1, 2]} and len(points) == 4
    assert points[1] == {"learning_rate": 1e-5, "epochs": 2}
    for bad, message in (("epochs=1.5", "epochs: int"), ("colour=1,2", "not a parameter of 04"),
                         ("epochs=1,,2", "empty value"), ("epochs=" + ",".join("12345") + " batch_size=1,2,4", "more than 12")):
        with pytest.raises(SystemExit, match=message):
            runner.parse_sweep(bad, declared)

    calls = []

    def execute(source, output, parameters, **kw):  # stands in for papermill: records what each run gets
        calls.append((Path(source).stem, Path(output).name, parameters))
        loss = 3 - parameters.get("learning_rate", 0) * 1e5 - parameters.get("epochs", 0) * 0.1
        arms = {"ft_n": {"status": "Completed", "records": 25, "final_training_loss": loss - 1, "best_validation_loss": loss}}
        outputs = [{"output_type": "display_data", "data": {report.RECORD_MIME: {"name": "arms", "value": arms}}}]
        Path(output).write_text(json.dumps({"cells": [{"outputs": outputs if "04_" in source else []}]}))

    monkeypatch.setattr(pm, "execute_notebook", execute)
    results = runner.run_series({}, backend="aws", runs_dir=tmp_path, run_id="s", log=lambda _: None,
                                sweep="learning_rate=1e-5,2e-5 epochs=1,2")
    assert [c[0] for c in calls] == ["01_permissions", "02_data_preparation", "03_synthetic_data"] + ["04_fine_tuning"] * 4 + ["07_cleanup"]
    assert [c[2]["epochs"] for c in calls if c[0] == "04_fine_tuning"] == [1, 2, 1, 2]
    assert all(c[2]["arms"] == "ft_n" and c[2]["use_synthetic"] is False for c in calls if c[0] == "04_fine_tuning")
    assert calls[3][1] == "04_fine_tuning.sweep-1.ipynb"
    sweep = json.loads((tmp_path / "s" / "results.json").read_text())["sweep"]
    assert len(sweep["rows"]) == 4 and sweep["best"] == {**points[3], "arm": "ft_n", "status": "Completed", "records": 25,
                                                         "final_training_loss": pytest.approx(-0.2), "best_validation_loss": pytest.approx(0.8)}
    html = (tmp_path / "s" / "report.html").read_text()
    assert "Hyperparameter sweep" in html and 'alt="sweep: best validation loss"' in html and "★" in html
    assert "best validation loss: 0.8 at learning_rate=2e-05 epochs=2 (ft_n)" in report.sweep_text(results["sweep"])
def test_unknown_names_get_a_suggestion_and_no_run_folder(tmp_path):
    with pytest.raises(SystemExit, match=r"'epoch' \(did you mean 'epochs'\?\)"):
        runner.check_declared({"epoch": 1}, DECLARED)
    with pytest.raises(SystemExit, match="workshop_id 'Team A' is not valid"):
        runner.check_declared({"workshop_id": "Team A"}, DECLARED)
    with pytest.raises(SystemExit, match="did you mean 'epochs'"):
        runner.run_series({"epoch": 1}, runs_dir=tmp_path, run_id="x", log=lambda *_: None)
    assert not list(tmp_path.iterdir())


def test_statuses_tell_the_truth():
    recorded = {"step_training": {"asked": True, "done": False, "detail": "no customization job created"},
                "step_deployment": {"asked": False, "done": False, "detail": "not asked"},
                "step_synthetic": {"asked": True, "done": True, "detail": "12 pairs"}}
    assert runner.skipped_steps(recorded) == ["training: no customization job created"]
    ok, skipped, failed = ({"status": s} for s in ("ok", "skipped-step", "failed"))
    assert runner.series_status([ok] * 7, 7) == "ok"
    assert runner.series_status([ok, skipped, ok], 3) == "skipped-step"
    assert runner.series_status([ok, failed], 7) == "failed"
    assert runner.series_status([ok] * 3, 7) == "incomplete"
    assert {runner.EXIT_CODES[s] for s in ("skipped-step", "failed", "incomplete")}.isdisjoint({0})


def test_error_line_is_the_exception_line():
    class Papermill(Exception):
        ename, evalue = "StateFileError", "Workshop state file /x.json is unusable: empty.\nmore"

    assert runner.error_line(Papermill("long traceback")) == "StateFileError: Workshop state file /x.json is unusable: empty."
    assert runner.error_line(ValueError("bad")) == "ValueError: bad"


def test_the_report_claims_a_clean_account_only_after_an_audit():
    from utils import report

    def cleanup_html(truth):
        page = report.render_html({"run_id": "r", "backend": "sandbox", "notebooks": [], "cleanup": truth})
        return page.split("<h2>Cleanup</h2>", 1)[1]

    assert "Nothing billable remains" in cleanup_html({"audited": True, "by": "07_cleanup", "remaining": []})
    not_run = cleanup_html({"audited": False, "remaining": []})
    assert "Nothing billable remains" not in not_run and "Not audited" in not_run
    left = cleanup_html({"audited": True, "by": "runner", "remaining": ["s3-bucket: b"]})
    assert "1 resource(s) remain" in left and "s3-bucket: b" in left


@pytest.mark.parametrize("overrides, sweep, fragment", [
    ({"epochs": 9}, None, "epochCount: whole number 1..5"),
    ({"customization_type": "CONTINUED_PRE_TRAINING"}, None, "Titan Text"),
    ({"deploy_arm": "base"}, None, "no custom model"),
    ({}, "learning_rate=1e-5,1e-3", "sweep point learning_rate=0.001"),
])
def test_04s_parameters_are_refused_before_01_runs(tmp_path, monkeypatch, overrides, sweep, fragment):
    import papermill as pm

    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    with pytest.raises(SystemExit) as refused:
        runner.run_series(overrides, backend="aws", runs_dir=tmp_path, run_id="x", log=lambda *_: None, sweep=sweep)
    assert fragment in str(refused.value) and "04_fine_tuning" in str(refused.value)
    assert "Nothing was run" in str(refused.value) and not list(tmp_path.iterdir())

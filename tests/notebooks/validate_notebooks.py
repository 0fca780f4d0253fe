"""Structural validator for the workshop notebooks (house skeleton, rule 6).

Usage: ``python -m tests.notebooks.validate_notebooks notebooks/`` (exit 1 on problems).
Checks: H1 title first; overview, objectives, prerequisites, time and cost, numbered
sections, a checkpoint per section and next steps; exactly one ``parameters`` cell
with typed, commented literals; no outputs or execution counts; kernelspec
``conda_python3``; no hard-coded account IDs or access keys; no moto/%store.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

REQUIRED_HEADINGS = ("overview", "objectives", "prerequisites", "time and cost", "next steps")
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    "12-digit account id": re.compile(r"(?<![\d.])\d{12}(?![\d.])"),
    "secret key assignment": re.compile(r"aws_secret_access_key\s*=\s*['\"][^'\"]+['\"]", re.I),
}
FORBIDDEN_CODE = {
    "moto": re.compile(r"^\s*(import moto|from moto)", re.M),
    "%store": re.compile(r"^\s*%store", re.M),
    "patching boto3": re.compile(r"(mock\.patch|monkeypatch).*boto", re.M),
}
PARAM_LINE = re.compile(r"^(\w+)\s*:\s*([\w\[\], |]+?)\s*=\s*(.+?)\s+#\s*\S.*$")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check_parameters(source: str) -> list[str]:
    problems = []
    for number, line in enumerate(source.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PARAM_LINE.match(line)
        if line.count("=") > 1:
            # papermill's inspector skips any line with two "=" (it warns and drops the parameter).
            problems.append(f"parameters line {number} has more than one '=' (papermill cannot read it): {line!r}")
            continue
        if not match:
            problems.append(f"parameters line {number} is not `name: type = literal  # help`: {line!r}")
            continue
        try:
            ast.literal_eval(match.group(3))
        except (ValueError, SyntaxError):
            problems.append(f"parameters line {number}: default is not a literal: {match.group(3)!r}")
    return problems


def validate(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    problems: list[str] = []
    cells = notebook.get("cells", [])
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "conda_python3":
        problems.append(f"kernelspec is {kernel!r}, expected 'conda_python3'")
    if not cells or cells[0]["cell_type"] != "markdown" or not _source(cells[0]).startswith("# "):
        problems.append("first cell must be a markdown H1 title")
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown").lower()
    for heading in REQUIRED_HEADINGS:
        if not re.search(rf"^#+ .*{heading}", markdown, re.M):
            problems.append(f"missing a '{heading}' heading")
    sections = re.findall(r"^## (\d+)\. ", markdown, re.M)
    if not sections:
        problems.append("no numbered sections ('## 1. ...')")
    elif [int(s) for s in sections] != list(range(1, len(sections) + 1)):
        problems.append(f"sections are not numbered 1..n: {sections}")
    checkpoints = len(re.findall(r"^#+ .*checkpoint", markdown, re.M))
    if checkpoints < len(sections):
        problems.append(f"{len(sections)} numbered sections but only {checkpoints} checkpoints")
    parameter_cells = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(parameter_cells) != 1:
        problems.append(f"expected exactly one 'parameters' cell, found {len(parameter_cells)}")
    else:
        problems += check_parameters(_source(parameter_cells[0]))
    for index, cell in enumerate(cells):
        source = _source(cell)
        if not source.strip():
            problems.append(f"cell {index} is empty")
        if cell["cell_type"] == "code":
            if cell.get("outputs") or cell.get("execution_count") is not None:
                problems.append(f"cell {index} has outputs or an execution count (run nbstripout)")
            for what, pattern in FORBIDDEN_CODE.items():
                if pattern.search(source):
                    problems.append(f"cell {index} uses {what}")
        for what, pattern in SECRET_PATTERNS.items():
            if pattern.search(source):
                problems.append(f"cell {index} contains a hard-coded {what}")
    return problems


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "notebooks")
    failed = False
    notebooks = sorted(folder.glob("*.ipynb"))
    for path in notebooks:
        for problem in validate(path):
            failed = True
            print(f"{path}: {problem}")
    print(f"validated {len(notebooks)} notebooks: {'problems found' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

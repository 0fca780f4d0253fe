"""01's kms_key_arn reaches every service role that reads or writes the bucket it encrypts."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ROLE_MAKERS = {"ensure_customization_role", "ensure_batch_role"}


def role_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            # IPython magics (01's %pip) are not Python: read them as a no-op statement
            source = "\n".join(line.split("%")[0] + "pass" if line.lstrip().startswith("%") else line
                               for line in cell.source.splitlines())
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ROLE_MAKERS:
                    calls.append((path.stem, node))
    return calls


def test_every_service_role_gets_the_workshop_key():
    """With SSE-KMS on the bucket, a role without kms:Decrypt/GenerateDataKey cannot read or write it."""
    calls = role_calls()
    assert {node.func.attr for _, node in calls} == ROLE_MAKERS
    missing = [f"{stem}: {node.func.attr}" for stem, node in calls
               if "kms_key_arn" not in {k.arg for k in node.keywords}]
    assert missing == []

"""IAM policy ``Condition`` blocks, evaluated against a request context.

Semantics follow the IAM User Guide, "IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
and "Multivalued context keys"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):

* every operator of a block, and every key under an operator, must match (AND); the
  values listed for one key are alternatives (OR);
* condition key names are case-insensitive, values are compared as the operator says;
* a key absent from the request context makes a positive operator false and a negated one
  (``StringNotEquals``, ``ArnNotLike``, ...) true; ``...IfExists`` makes an absent key true;
  ``Null`` tests presence;
* ``ForAnyValue:`` needs one context value to match (false when the key is absent),
  ``ForAllValues:`` needs every context value to match (true when the key is absent);
* ``StringLike`` takes ``*`` and ``?``; ``ArnEquals`` and ``ArnLike`` are the same operator:
  each of the six colon-separated ARN parts is matched separately and may hold ``*``/``?``
  (so ``ArnEquals`` on ``...:model-customization-job/*`` matches, as AWS's samples rely on),
  while ``StringEquals`` on a wildcard value only matches that literal text.

An unknown operator never matches (our choice: IAM rejects such a policy when it is written).
A request context is ``{key: [values]}``; :func:`context` builds one from loose values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

Context = dict[str, list[str]]


def context(values: Mapping[str, Any]) -> Context:
    """A request context from ``{key: value or [values]}``; keys lower-cased, ``None`` dropped."""
    out: Context = {}
    for key, value in values.items():
        if value is None:
            continue
        items = value if isinstance(value, list | tuple | set) else [value]
        out[key.lower()] = [_text(v) for v in items]
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, fold: bool) -> re.Pattern[str]:
    regex = ".*".join(".".join(re.escape(part) for part in chunk.split("?")) for chunk in pattern.split("*"))
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if fold else 0))


def glob(pattern: str, value: str, *, fold: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run, ``?`` one character, everything else literal."""
    return _wildcard(pattern, fold).fullmatch(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    want, got = pattern.split(":", 5), value.split(":", 5)
    if len(want) != 6 or len(got) != 6:
        return False
    return all(glob(w, g) for w, g in zip(want, got, strict=True))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(op: str) -> Any:
    def compare(pattern: str, value: str) -> bool:
        a, b = _number(value), _number(pattern)
        if a is None or b is None:
            return False
        return {"Equals": a == b, "LessThan": a < b, "LessThanEquals": a <= b,
                "GreaterThan": a > b, "GreaterThanEquals": a >= b}[op]

    return compare


# base operator -> (value matcher, negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "stringequals": (lambda p, v: p == v, False),
    "stringnotequals": (lambda p, v: p == v, True),
    "stringequalsignorecase": (lambda p, v: p.lower() == v.lower(), False),
    "stringnotequalsignorecase": (lambda p, v: p.lower() == v.lower(), True),
    "stringlike": (glob, False),
    "stringnotlike": (glob, True),
    "arnequals": (_arn_match, False),
    "arnlike": (_arn_match, False),
    "arnnotequals": (_arn_match, True),
    "arnnotlike": (_arn_match, True),
    "bool": (lambda p, v: p.lower() == v.lower(), False),
    "numericequals": (_numeric("Equals"), False),
    "numericnotequals": (_numeric("Equals"), True),
    "numericlessthan": (_numeric("LessThan"), False),
    "numericlessthanequals": (_numeric("LessThanEquals"), False),
    "numericgreaterthan": (_numeric("GreaterThan"), False),
    "numericgreaterthanequals": (_numeric("GreaterThanEquals"), False),
}


def _listed(value: Any) -> list[str]:
    return [_text(v) for v in (value if isinstance(value, list) else [value])]


def _key_matches(operator: str, key: str, wanted: list[str], ctx: Context) -> bool:
    qualifier = ""
    op = operator
    for prefix in ("forallvalues:", "foranyvalue:"):
        if op.lower().startswith(prefix):
            qualifier, op = prefix[:-1], op[len(prefix):]
    op = op.lower()
    if_exists = op.endswith("ifexists") and op != "ifexists"
    if if_exists:
        op = op[: -len("ifexists")]
    present = ctx.get(key.lower())
    if op == "null":
        # "true": the key must be absent; "false": present.
        return any((p.lower() == "true") == (not present) for p in wanted)
    if op not in _OPERATORS:
        return False
    match, negated = _OPERATORS[op]
    if not present:
        if if_exists or qualifier == "forallvalues":
            return True
        return negated and qualifier != "foranyvalue"

    def hit(value: str) -> bool:
        return any(match(p, value) for p in wanted)

    if qualifier == "forallvalues":
        return all((not hit(v)) if negated else hit(v) for v in present)
    if qualifier == "foranyvalue":
        return any((not hit(v)) if negated else hit(v) for v in present)
    return not any(hit(v) for v in present) if negated else any(hit(v) for v in present)


def matches(condition: Mapping[str, Any] | None, ctx: Context) -> bool:
    """Whether a statement's ``Condition`` block holds for the request context ``ctx``."""
    if not condition:
        return True
    if not isinstance(condition, Mapping):
        return False
    for operator, block in condition.items():
        if not isinstance(block, Mapping):
            return False
        for key, wanted in block.items():
            if not _key_matches(str(operator), str(key), _listed(wanted), ctx):
                return False
    return True


def keys(condition: Mapping[str, Any] | None) -> Iterable[str]:
    """The condition keys a block names (for ``MissingContextValues``)."""
    if isinstance(condition, Mapping):
        for block in condition.values():
            if isinstance(block, Mapping):
                yield from (str(k) for k in block)

"""Cost estimates for every billable step, and the money guard that gates them.

Prices are transcribed from the Amazon Bedrock pricing page and AWS's published examples
(https://aws.amazon.com/bedrock/pricing/, researched 2026-11-21). Prices change, so every row carries its source, source date and
status, and every estimate prints the region, tier and dates it assumes. Prices the research
did not find are **gaps** (``value=None``): an estimate containing a gap has no total, and
:func:`guard` refuses to proceed until the user supplies the price::

    est = estimate_training("claude-3-haiku", train_tokens=1_600_000, epochs=2,
                            price_overrides={"train_per_1k:claude-3-haiku": 0.004})

Price keys are ``"<kind>:<price-table model>"``, e.g. ``"od_in_per_1k:nova-lite"``;
``Estimate.gaps`` lists exactly the keys to supply. This module never invents a price.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from utils import models

PRICING_RESEARCHED_ON = "2026-11-21"
PRICING_SOURCE = "https://aws.amazon.com/bedrock/pricing/"
DEFAULT_REGION = "us-east-1"
DEFAULT_TIER = "Standard on-demand, in-region model IDs"
GAP_MESSAGE = "price unknown — supply it via price_overrides"
HOURS_PER_MONTH = 730  # AWS billing convention for a month of hourly charges

# Rows are us-east-1 unless stated; the pricing page showed us-west-2 at the same price.
_US = ("us-east-1", "us-west-2")


@dataclass(frozen=True)
class PriceRow:
    """One dated price from the pricing page. ``value`` is ``None`` for a gap."""

    kind: str  # train_per_1k | storage_month | pt_hour_<term> | od_in_per_1k | od_out_per_1k | ...
    model: str  # price-table model name; "*" = any custom model of the listed families
    value: float | None
    unit: str
    source: str
    source_date: str
    status: str  # ok | derived | legacy | CONFLICT | n/a | GAP
    regions: tuple[str, ...] = _US
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.model}"


def _rows() -> tuple[PriceRow, ...]:
    rows: list[PriceRow] = []
    add = rows.append

    # --- training, USD per 1K training tokens (tokens × epochs) ------------------------
    t_unit = "USD/1K training tokens"
    for model, value, src, date, status in (
        ("nova-micro", 0.001, "S3", "2026-03", "ok"),
        ("nova-lite", 0.002, "S4 (derived: ~$0.02 per 10K tokens)", "2026-01-07", "derived"),
        ("nova-pro", None, "not found", "", "GAP"),
        ("titan-text-lite", 0.0004, "S2", "2025-03", "ok"),
        ("titan-text-express", 0.008, "S2", "2025-03", "ok"),
        ("cohere-command", 0.004, "S5", "2024-03-13", "legacy"),
        ("cohere-command-light", 0.001, "S5", "2024-03-13", "legacy"),
        ("llama2-13b", 0.00149, "S5", "2024-03-13", "legacy"),
        ("llama2-70b", 0.00799, "S5", "2024-03-13", "legacy"),
        ("claude-3-haiku", None, "not found", "", "GAP"),
        ("llama3.1-8b", None, "not found", "", "GAP"),
        ("llama3.1-70b", None, "not found", "", "GAP"),
        ("llama3.2-1b", None, "not found", "", "GAP"),
        ("llama3.2-3b", None, "not found", "", "GAP"),
        ("llama3.2-11b", None, "not found", "", "GAP"),
        ("llama3.2-90b", None, "not found", "", "GAP"),
    ):
        add(PriceRow("train_per_1k", model, value, t_unit, src, date, status))

    # --- custom model storage ---------------------------------------------------------
    add(PriceRow("storage_month", "*", 1.95, "USD/model/month", "S2;S3;S4;S5", "2024-2026", "ok",
                 note="any custom model (Nova/Titan/Cohere/Llama)"))

    # --- Provisioned Throughput, USD per model unit per hour -----------------------------
    for model, values, src, date, status in (
        ("titan-text-lite", (7.10, 6.40, 5.10), "S2", "2025-03", "ok"),
        ("titan-text-express", (20.50, 18.40, 14.80), "S2", "2025-03", "ok"),
        ("cohere-command", (49.50, 39.60, 23.77), "S5;S6", "2024", "legacy"),
        ("cohere-command-light", (8.56, 6.85, 4.11), "S5;S6", "2024", "legacy"),
        ("llama2-70b", (23.50, 21.18, 13.08), "S5;S9", "2024-2026", "legacy"),
        ("claude-3-sonnet", (88.0, None, None), "S7", "<=2025-01", "ok"),
    ):
        for term, value in zip(("nocommit", "1mo", "6mo"), values, strict=True):
            add(PriceRow(f"pt_hour_{term}", model, value, "USD/MU/hour", src if value else "not found",
                         date if value else "", status if value else "GAP"))
    for model in ("claude-3-haiku", "llama3.1-8b", "llama3.1-70b", "llama3.3-70b", "llama3.2-1b",
                  "llama3.2-3b", "llama3.2-11b", "llama3.2-90b", "nova-micro", "nova-lite", "nova-pro"):
        for term in ("nocommit", "1mo", "6mo"):
            add(PriceRow(f"pt_hour_{term}", model, None, "USD/MU/hour", "not found", "", "GAP"))

    # --- on-demand tokens, USD per 1K (in, out) ----------------------------------------
    for model, p_in, p_out, src, date, status in (
        ("claude-3-haiku", 0.00025, 0.00125, "S1;S7", "2025-07-20", "ok"),
        ("claude-3-sonnet", 0.003, 0.015, "S7", "<=2025-01", "legacy"),
        ("claude-3.5-sonnet", 0.003, 0.015, "S1", "2025-07-20", "ok"),
        ("claude-3.7-sonnet", 0.003, 0.015, "S1", "2025-07-20", "ok"),
        ("claude-sonnet-4", 0.003, 0.015, "S1", "2025-07-20", "ok"),
        ("llama3-70b-instruct", 0.00265, 0.0035, "S1;S7", "2025-07-20", "CONFLICT"),
        ("llama3.1-70b", 0.00072, 0.00072, "S1;S7", "2025-07-20", "CONFLICT"),
        ("llama3.3-70b", 0.00072, 0.00072, "S1", "2025-07-20", "ok"),
        ("llama3.1-8b", 0.00022, 0.00022, "S1", "2025-07-20", "ok"),
        ("llama3.2-1b", 0.0001, 0.0001, "S1", "2025-07-20", "ok"),
        ("llama3.2-3b", 0.00015, 0.00015, "S1", "2025-07-20", "ok"),
        ("llama3.2-11b", 0.00016, 0.00016, "S1", "2025-07-20", "ok"),
        ("llama3.2-90b", 0.00072, 0.00072, "S1", "2025-07-20", "ok"),
        ("nova-micro", 0.000035, 0.00014, "S1;S3", "2025-07/2026-03", "ok"),
        ("nova-lite", 0.00006, 0.00024, "S1", "2025-07-20", "ok"),
        ("nova-pro", 0.0008, 0.0032, "S1", "2025-07-20", "ok"),
        ("titan-text-lite", 0.00015, 0.0002, "S2;S7", "2025-03", "ok"),
        ("titan-text-express", 0.0002, 0.0006, "S2;S7", "2025-03", "ok"),
    ):
        add(PriceRow("od_in_per_1k", model, p_in, "USD/1K input tokens", src, date, status))
        add(PriceRow("od_out_per_1k", model, p_out, "USD/1K output tokens", src, date, status))

    # --- batch inference: 50% of on-demand for models listed with a batch price ----------
    add(PriceRow("batch_factor", "claude-3-haiku", 0.5, "x on-demand", "S1", "2025-07-20", "ok",
                 note="e.g. Haiku 0.000125|0.000625"))
    for model in ("claude-3.7-sonnet", "claude-sonnet-4"):
        add(PriceRow("batch_factor", model, None, "x on-demand", "S1 (batch N/A)", "2025-07-20", "n/a"))

    # --- Custom Model Import --------------------------------------------------------------
    add(PriceRow("cmi_cmu_min", "*", 0.05718, "USD/CMU/minute", "S8 (implied);S9", "2026-01", "ok"))
    add(PriceRow("cmi_cmu_min", "*", 0.07144, "USD/CMU/minute", "S9", "2026", "ok",
                 regions=("eu-central-1",)))
    add(PriceRow("cmi_storage_month", "*", 1.95, "USD/CMU/month", "S8;S9", "2026-01", "ok"))

    # --- evaluation -------------------------------------------------------------------------
    add(PriceRow("eval_human_task", "*", 0.21, "USD/completed task", "pricing page via S9", "2026", "ok",
                 regions=("*",)))
    return tuple(rows)


PRICE_TABLE: tuple[PriceRow, ...] = _rows()

# Registry price keys / loose names whose pricing row is spelled differently.
PRICE_ALIASES: dict[str, str] = {
    "llama3-70b": "llama3-70b-instruct",
    "llama3-1-8b": "llama3.1-8b",
    "llama3-1-70b": "llama3.1-70b",
    "llama3-3-70b": "llama3.3-70b",
    "claude-3-5-sonnet": "claude-3.5-sonnet",
    "claude-3-7-sonnet": "claude-3.7-sonnet",
}

# Families whose custom models the storage_month row covers (pricing page: Nova/Titan/Cohere/Llama).
_STORAGE_FAMILIES = ("nova", "titan", "cohere", "llama")

# Custom Model Import: model units needed per imported model
# (https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-import-model.html).
CMI_UNITS: dict[str, int] = {"llama3.1-8b": 2, "llama3.1-70b": 8}

_COMMITMENTS: dict[str | None, str] = {
    None: "nocommit", "none": "nocommit", "nocommit": "nocommit",
    "1mo": "1mo", "1month": "1mo", "one_month": "1mo", "onemonth": "1mo",  # API: OneMonth
    "6mo": "6mo", "6months": "6mo", "six_months": "6mo", "sixmonths": "6mo",  # API: SixMonths
}
_TERM_HOURS = {"nocommit": 0, "1mo": HOURS_PER_MONTH, "6mo": 6 * HOURS_PER_MONTH}


def price_model(model_key: str) -> str:
    """The pricing-table model name for a registry key, model ID or pricing name.

    Uses ``utils.models.get(key).price_key`` (falling back to the registry key), then
    :data:`PRICE_ALIASES`. Names outside the registry pass through, so pricing rows such as
    ``"titan-text-lite"`` can be used directly.
    """
    try:
        spec = models.get(model_key)
    except KeyError:
        name = model_key
    else:
        name = spec.price_key or spec.key
    return PRICE_ALIASES.get(name, name)


def find_row(kind: str, model: str, region: str = DEFAULT_REGION) -> PriceRow | None:
    """The table row for (kind, model) that applies in ``region``; ``None`` if there is none."""
    for wanted in (model, "*"):
        for row in PRICE_TABLE:
            if row.kind == kind and row.model == wanted and (region in row.regions or "*" in row.regions):
                return row
    return None


# --------------------------------------------------------------------------------------
# Estimate
# --------------------------------------------------------------------------------------


@dataclass
class LineItem:
    """One priced quantity. ``unit_price`` is ``None`` for a gap."""

    description: str
    quantity: float
    unit: str
    unit_price: float | None
    price_key: str
    source: str = ""

    @property
    def subtotal(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price


@dataclass
class Estimate:
    """An itemised estimate. ``total`` is ``None`` while any item's price is unknown."""

    title: str
    items: list[LineItem] = field(default_factory=list)
    region: str = DEFAULT_REGION
    tier: str = DEFAULT_TIER
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float | None:
        subtotals = [item.subtotal for item in self.items]
        if any(s is None for s in subtotals):
            return None
        return float(sum(subtotals))  # type: ignore[arg-type]

    @property
    def gaps(self) -> list[str]:
        """Price keys with no known price: pass them in ``price_overrides``."""
        seen: list[str] = []
        for item in self.items:
            if item.unit_price is None and item.price_key not in seen:
                seen.append(item.price_key)
        return seen

    def __add__(self, other: Estimate) -> Estimate:
        return combine([self, other])

    def render(self) -> str:
        """A small markdown table with the assumptions (region, tier, price dates) under it."""
        lines = [
            f"**{self.title}**",
            "",
            "| Item | Quantity | Unit | Unit price (USD) | Subtotal (USD) |",
            "|---|---:|---|---:|---:|",
        ]
        for item in self.items:
            if item.unit_price is None:
                price = f"{GAP_MESSAGE} (`{item.price_key}`)"
                subtotal = "unknown"
            else:
                price = f"{item.unit_price:.6g}"
                subtotal = _usd(item.subtotal)  # type: ignore[arg-type]
            lines.append(f"| {item.description} | {item.quantity:,.6g} | {item.unit} | {price} | {subtotal} |")
        total = self.total
        if total is None:
            lines.append(f"| **Total** | | | | **unknown**: missing {', '.join(self.gaps)} |")
        else:
            lines.append(f"| **Total** | | | | **{_usd(total)}** |")
        sources = sorted({item.source for item in self.items if item.source})
        lines += [
            "",
            f"Assumes region {self.region}, tier: {self.tier}. Prices are dated defaults from "
            f"{PRICING_SOURCE} as transcribed on {PRICING_RESEARCHED_ON}; check the live page before spending"
            + (f"; rows used: {'; '.join(sources)}." if sources else "."),
        ]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.render()

    def __str__(self) -> str:
        return self.render()


def combine(estimates: Iterable[Estimate], title: str | None = None) -> Estimate:
    """Several estimates as one (e.g. data generation + training + evaluation)."""
    parts = list(estimates)
    if not parts:
        raise ValueError("combine needs at least one estimate")
    notes: list[str] = []
    for part in parts:
        notes += [n for n in part.notes if n not in notes]
    regions = sorted({p.region for p in parts})
    return Estimate(
        title=title or " + ".join(p.title for p in parts),
        items=[item for p in parts for item in p.items],
        region=", ".join(regions),
        tier=parts[0].tier,
        notes=notes,
    )


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


class _Pricer:
    """Looks prices up for one estimate, applying overrides and collecting notes."""

    def __init__(self, region: str, overrides: Mapping[str, float] | None):
        self.region = region
        self.overrides = dict(overrides or {})
        for key, value in self.overrides.items():
            if value is None or not isinstance(value, int | float) or value < 0 or math.isnan(value):
                raise ValueError(f"price_overrides[{key!r}] must be a non-negative number, got {value!r}")
        self.notes: list[str] = []

    def get(self, kind: str, model: str) -> tuple[float | None, str, str]:
        """(value or None, price key, source label)."""
        key = f"{kind}:{model}"
        if key in self.overrides:
            return float(self.overrides[key]), key, f"{key}: price_overrides"
        row = find_row(kind, model, self.region)
        if row is None or row.value is None:
            if row is None:
                self.note(f"No price row for `{key}` in {self.region}.")
            if unbilled_endpoint():
                self.note(f"`{key}` has no sourced price; it counts as $0 because {UNBILLED_ENV}=1 says this "
                          "endpoint bills nothing (the offline sandbox). On AWS, pass it in price_overrides.")
                return 0.0, key, f"{key}: $0 ({UNBILLED_ENV}=1)"
            return None, key, ""
        if row.status in ("legacy", "CONFLICT", "derived"):
            self.note(f"`{key}` = {row.value:g} is {row.status} ({row.source}, {row.source_date}); "
                       "check it on https://aws.amazon.com/bedrock/pricing/.")
        return row.value, key, f"{key}: {row.source} {row.source_date} [{row.status}]"

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _storage(pricer: _Pricer, model: str, months: float) -> LineItem:
    """Monthly storage of a custom model; the table's row covers Nova/Titan/Cohere/Llama only."""
    key = f"storage_month:{model}"
    if key in pricer.overrides:
        value: float | None = float(pricer.overrides[key])
        source = f"{key}: price_overrides"
    elif model.startswith(_STORAGE_FAMILIES):
        value, _, source = pricer.get("storage_month", "*")
    else:
        value, source = None, ""
        pricer.note(f"The storage price covers Nova/Titan/Cohere/Llama custom models; `{key}` is a gap.")
        if unbilled_endpoint():
            value, source = 0.0, f"{key}: $0 ({UNBILLED_ENV}=1)"
    return LineItem("Custom model storage", months, "model-month", value, key, source)


# --------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------


def estimate_training(
    base_model_key: str,
    train_tokens: int,
    epochs: int | None = None,
    months_stored: float = 1,
    price_overrides: Mapping[str, float] | None = None,
    region: str = DEFAULT_REGION,
) -> Estimate:
    """Fine-tuning cost: ``train_tokens × epochs / 1000 × train_per_1k`` + storage per month.

    ``train_tokens`` are the tokens in the training file (one pass). ``epochs=None`` uses the
    registry's default ``epochCount`` for the model family. Example (the pricing page's): 2,000
    examples × 800 tokens × 5 epochs at $0.001/1K = $8.00 (+ $1.95 per month stored).
    """
    if train_tokens < 0 or months_stored < 0:
        raise ValueError("train_tokens and months_stored must be non-negative")
    notes: list[str] = []
    if epochs is None:
        epochs = int(float(models.default_hyperparameters(base_model_key)["epochCount"]))
        notes.append(f"epochs={epochs} is the registry default epochCount for {base_model_key}.")
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    model = price_model(base_model_key)
    pricer = _Pricer(region, price_overrides)
    value, key, source = pricer.get("train_per_1k", model)
    items = [LineItem(f"Training {model}: {train_tokens:,} tokens × {epochs} epochs",
                      train_tokens * epochs / 1000, "1K training tokens", value, key, source)]
    if months_stored:
        items.append(_storage(pricer, model, months_stored))
    notes += pricer.notes + [
        "Unverified: whether validation-set tokens are billed, and whether storage is prorated.",
    ]
    return Estimate(f"Fine-tuning {model}", items, region, "model customization (training)", notes)


def estimate_inference(
    model_key: str,
    input_tokens: int,
    output_tokens: int,
    batch: bool = False,
    price_overrides: Mapping[str, float] | None = None,
    region: str = DEFAULT_REGION,
    description: str = "",
) -> Estimate:
    """Token cost of on-demand (or batch) inference with a base model.

    Batch is priced at the table's batch factor × on-demand, and only for models the table
    lists with a batch price; otherwise the batch price keys are gaps.
    """
    model = price_model(model_key)
    pricer = _Pricer(region, price_overrides)
    p_in, k_in, s_in = pricer.get("od_in_per_1k", model)
    p_out, k_out, s_out = pricer.get("od_out_per_1k", model)
    tier = DEFAULT_TIER
    if batch:
        tier = "Batch inference"
        factor, _, s_factor = pricer.get("batch_factor", model)

        def batch_price(key: str, on_demand: float | None, source: str) -> tuple[float | None, str]:
            if key in pricer.overrides:
                return float(pricer.overrides[key]), f"{key}: price_overrides"
            if on_demand is None or factor is None:
                return None, ""
            return on_demand * factor, f"{source} × {s_factor}"

        k_in, k_out = f"batch_in_per_1k:{model}", f"batch_out_per_1k:{model}"
        p_in, s_in = batch_price(k_in, p_in, s_in)
        p_out, s_out = batch_price(k_out, p_out, s_out)
    label = description or model
    items = [
        LineItem(f"{label} input tokens", input_tokens / 1000, "1K input tokens", p_in, k_in, s_in),
        LineItem(f"{label} output tokens", output_tokens / 1000, "1K output tokens", p_out, k_out, s_out),
    ]
    notes = pricer.notes + [
        "Cross-region (`us.`/`global.`) inference profiles and the Flex/Priority tiers may be "
        "priced differently from the in-region Standard prices above.",
    ]
    title = f"{'Batch' if batch else 'On-demand'} inference: {label}"
    return Estimate(title, items, region, tier, notes)


def estimate_provisioned_throughput(
    model_key: str,
    hours: float,
    commitment: str | None = None,
    model_units: int = 1,
    price_overrides: Mapping[str, float] | None = None,
    region: str = DEFAULT_REGION,
) -> Estimate:
    """Provisioned Throughput: hourly rate per model unit × units × hours billed.

    A custom model is priced like its base model. ``commitment`` is ``None`` (no commitment),
    ``"1mo"`` or ``"6mo"`` (also the API's ``commitmentDuration`` values ``"OneMonth"``/``"SixMonths"``); a commitment is billed for
    the whole term (730 h per month) even if you delete it earlier. Rates for Nova, Llama 3.x
    and Claude 3 Haiku are gaps in the table.
    """
    norm = None if commitment is None else commitment.lower().replace("-", "_").replace(" ", "")
    if norm not in _COMMITMENTS:
        raise ValueError(f"commitment must be None, '1mo' or '6mo', got {commitment!r}")
    term = _COMMITMENTS[norm]
    if hours < 0 or model_units < 1:
        raise ValueError("hours must be >= 0 and model_units >= 1")
    model = price_model(model_key)
    pricer = _Pricer(region, price_overrides)
    value, key, source = pricer.get(f"pt_hour_{term}", model)
    billed = max(hours, _TERM_HOURS[term])
    notes = list(pricer.notes)
    if billed > hours:
        notes.append(f"A {term} commitment is billed for the full term ({billed:g} h), not {hours:g} h.")
    if term == "nocommit" and model_units > 1:
        notes.append("Without a commitment a custom model is limited to 1 model unit.")
    notes.append("Billed hourly until the Provisioned Throughput is deleted: delete it when done.")
    items = [LineItem(f"Provisioned Throughput {model} ({term})", billed * model_units,
                      "model-unit hour", value, key, source)]
    return Estimate(f"Provisioned Throughput: {model}", items, region, f"Provisioned Throughput, {term}",
                    notes)


def estimate_on_demand_deployment(
    base_model_key: str,
    input_tokens: int,
    output_tokens: int,
    months_stored: float = 1,
    price_overrides: Mapping[str, float] | None = None,
    region: str = DEFAULT_REGION,
) -> Estimate:
    """On-demand deployment of a custom model: base-model token prices + monthly storage.

    Documented for Nova Micro/Lite/Pro customized on or after 2025-07-16 (us-east-1/us-west-2).
    """
    tokens = estimate_inference(base_model_key, input_tokens, output_tokens,
                                price_overrides=price_overrides, region=region,
                                description=f"custom {price_model(base_model_key)}")
    pricer = _Pricer(region, price_overrides)
    model = price_model(base_model_key)
    items = list(tokens.items)
    if months_stored:
        items.append(_storage(pricer, model, months_stored))
    notes = tokens.notes + pricer.notes
    try:
        deployment = models.get(base_model_key).deployment
    except KeyError:
        deployment = None
    if deployment != "on_demand":
        notes.append(f"The registry does not list on-demand deployment for {base_model_key}; "
                     "it may need Provisioned Throughput instead.")
    return Estimate(f"On-demand deployment: custom {model}", items, region,
                    "custom model on-demand (base-model token prices)", notes)


def estimate_import(
    model_key: str | None = None,
    active_minutes: float = 0,
    cmus: int | None = None,
    months_stored: float = 1,
    price_overrides: Mapping[str, float] | None = None,
    region: str = DEFAULT_REGION,
) -> Estimate:
    """Custom Model Import: CMUs × billed minutes × rate + CMUs × months × storage.

    Billing runs in 5-minute windows, so ``active_minutes`` is rounded up to a multiple of 5
    (the docs formula's "/60" does not give minutes; our reading of the pricing page's example). ``cmus`` defaults to
    the known count for the model (Llama 3.1 8B: 2, 70B: 8).
    """
    model = price_model(model_key) if model_key else "imported model"
    if cmus is None:
        if model not in CMI_UNITS:
            raise ValueError(f"Pass cmus=: the number of Custom Model Units for {model} is not known")
        cmus = CMI_UNITS[model]
    if cmus < 1 or active_minutes < 0 or months_stored < 0:
        raise ValueError("cmus must be >= 1, active_minutes and months_stored >= 0")
    pricer = _Pricer(region, price_overrides)
    windows = math.ceil(active_minutes / 5)
    rate, rate_key, rate_src = pricer.get("cmi_cmu_min", "*")
    items = [LineItem(f"Imported {model}: {cmus} CMU × {windows} five-minute windows",
                      cmus * windows * 5, "CMU-minute", rate, rate_key, rate_src)]
    if months_stored:
        storage, s_key, s_src = pricer.get("cmi_storage_month", "*")
        items.append(LineItem("Imported model storage", cmus * months_stored, "CMU-month", storage,
                              s_key, s_src))
    notes = pricer.notes + ["A copy scales to zero after 5 idle minutes; billing starts at the first call."]
    return Estimate(f"Custom Model Import: {model}", items, region, "Custom Model Import", notes)


# --------------------------------------------------------------------------------------
# The money guard
# --------------------------------------------------------------------------------------


# The environment's spend opt-in. `make lab` sets it for the sandbox (which bills nothing), so a
# learner stepping through the notebooks by hand sees every billable step run without editing
# parameters; the committed defaults (confirm_spend=False) still spend nothing wherever it is unset.
CONFIRM_SPEND_ENV = "WORKSHOP_CONFIRM_SPEND"
# Set by the environment of an endpoint that bills nothing (`make lab`, the runner on the sandbox): a
# price the dated table lacks then counts as $0, labelled as such, instead of blocking the step.
UNBILLED_ENV = "WORKSHOP_UNBILLED_ENDPOINT"


def unbilled_endpoint() -> bool:
    """True when the environment says the endpoint bills nothing (``$WORKSHOP_UNBILLED_ENDPOINT=1``)."""
    return os.environ.get(UNBILLED_ENV, "").strip().lower() in ("1", "true", "yes")


def spend_confirmed_by_environment() -> bool:
    """True when ``$WORKSHOP_CONFIRM_SPEND`` is ``1``/``true``/``yes``."""
    return os.environ.get(CONFIRM_SPEND_ENV, "").strip().lower() in ("1", "true", "yes")


def show(estimate: Estimate) -> None:
    """The estimate as a rendered Markdown table in a Jupyter kernel, as its Markdown text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None  # type: ignore[assignment]
    shell = get_ipython() if get_ipython else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display(Markdown(estimate.render()))
    else:
        print(estimate.render())
        print()


def guard(estimate: Estimate, confirm_spend: bool, max_usd: float | None = None) -> bool:
    """Show the estimate, then say whether the billable step may run.

    Returns True only if the spend is confirmed (``confirm_spend`` is True, or
    ``$WORKSHOP_CONFIRM_SPEND=1`` in the environment), the total is known (every gap filled
    via ``price_overrides``) and ``max_usd`` is None or the total is at most ``max_usd``.
    Otherwise prints why nothing was created and which parameter to set, and returns False.
    """
    show(estimate)
    if not confirm_spend and spend_confirmed_by_environment():
        confirm_spend = True
        print(f"confirm_spend: switched on by {CONFIRM_SPEND_ENV}=1 in this kernel's environment "
              "(`make lab` sets it for the offline sandbox, which bills nothing).")
    total = estimate.total
    reasons: list[str] = []
    if total is None:
        fill = ", ".join(f"'{key}': <USD>" for key in estimate.gaps)
        reasons.append(f"the price of {', '.join(estimate.gaps)} is unknown: look it up on the "
                       f"Amazon Bedrock pricing page and pass price_overrides={{{fill}}}.")
    if not confirm_spend:
        reasons.append("confirm_spend is False: set confirm_spend=True to allow this spend.")
    if total is not None and max_usd is not None and total > max_usd:
        reasons.append(f"the estimated total {_usd(total)} exceeds max_usd={max_usd:g}: "
                       "raise max_usd (or reduce the job) to proceed.")
    if reasons:
        print("Nothing was created, because:")
        for reason in reasons:
            print(f"  - {reason}")
        return False
    limit = "" if max_usd is None else f" (within max_usd={max_usd:g})"
    print(f"Proceeding: confirm_spend=True, estimated total {_usd(total)}{limit}.")  # type: ignore[arg-type]
    return True

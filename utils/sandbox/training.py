"""Loss curves for the sandbox's fine-tuning jobs, computed from the job's real inputs.

Nothing here trains a model. :func:`simulate` turns what a job actually received
(its records and their token lengths, the words of its training text, and its
hyperparameters) into the step-wise training and validation losses Bedrock would
write, so that a learner who changes the data or the hyperparameters sees the
curves move in the direction a real job would. The model (all symbols are per job):

* ``N`` training records, batch size ``B`` (1 for families without ``batchSize``),
  ``E`` epochs; ``S = ceil(N / B)`` steps per epoch and ``T = S * E`` steps.
* ``H``: unigram entropy (nats per word) of the training text. A pretrained model
  starts at ``L0 = 0.4 * H`` (it already predicts much better than word frequencies).
* Learning-rate ratio ``rho = lr / default_lr`` (Claude: ``learningRateMultiplier``),
  ramped linearly over ``learningRateWarmupSteps``: ``rho_t = rho * min(1, (t+1)/(W+1))``.
* Progress ``P(t) = sum_{i<=t} rho_i * B * sqrt(B0 / B) / Rp`` with ``Rp = 50`` records:
  every record seen teaches a little, larger batches than the family default ``B0``
  make fewer, less efficient updates.
* Generalisation floor ``Lg = L0 * (0.35 + 0.45 / sqrt(1 + N / R))`` with ``R = 200``: more data, lower
  floor. Memorisation ``M(t) = 1 - exp(-epochs_seen(t) * rho * R / (2N))``: small data
  sets are memorised fast.
* Training loss ``Lt = Lg * (1 - 0.5 M) + (L0 - Lg) * exp(-P)`` plus batch noise with
  standard deviation ``Lt * (0.02 + 0.1 * CV / sqrt(B))`` (``CV``: coefficient of
  variation of the records' token lengths, so uneven records give noisier batches).
* Validation loss (evaluated four times per epoch, on the validation records)
  ``Lv = Lg * (1 + 0.3 M) + (L0 - Lg) * exp(-P)`` plus noise ``Lv * 0.02 / sqrt(n_val / 10)``:
  it falls, then rises again as the model memorises.
* Instability: ``s = rho / 10`` (an order of magnitude above the default). Noise is
  multiplied by ``1 + min(s, 3)``; above ``s = 1`` progress is divided by ``s`` and the
  loss grows by ``L0 * ln(s) * t / T`` (the run diverges). No loss exceeds
  ``ln(128000)``, the loss of a uniform guess over a Llama-3-sized vocabulary.
* Early stopping (families with ``earlyStoppingThreshold``/``earlyStoppingPatience``,
  i.e. Claude and Cohere; the family's defaults unless set): at each epoch's end, that
  epoch's validation loss (its last evaluation) is judged as
  :func:`utils.customization.early_stopping` does; after ``patience`` epochs in a row
  without an improvement larger than the threshold, training stops there.

All noise comes from ``random.Random(seed)``, the seed being a hash of the job's
data and hyperparameters, so the same job always gives the same curves.
The constants are modelling assumptions, documented in ``utils/sandbox/README.md``.
"""

from __future__ import annotations

import io
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from utils.models import HYPERPARAMETERS

PROGRESS_RECORDS = 50  # Rp: records seen for one e-fold of progress at the default LR
REFERENCE_RECORDS = 200  # R: data-set size scale of generalisation and memorisation
MAX_LOSS = math.log(128_000)  # uniform guess over a 128k-token vocabulary
INSTABILITY_RATIO = 10.0  # rho at which training becomes unstable
EVALUATIONS_PER_EPOCH = 4
_WORD = re.compile(r"[A-Za-z0-9']+|[^\sA-Za-z0-9]")


@dataclass
class TrainingInputs:
    """What a job really received."""

    family: str
    train_lengths: list[int]  # tokens per training record
    validation_lengths: list[int]  # tokens per validation record (may be empty)
    text: str  # training text (prompts and answers), for the entropy estimate
    hyperparameters: dict[str, str]  # as passed to the job (strings)
    seed: int


@dataclass
class TrainingResult:
    """Step-wise metrics, in the column order of Bedrock's CSV files."""

    training_rows: list[tuple[int, int, float, float]] = field(default_factory=list)
    validation_rows: list[tuple[int, int, float, float]] = field(default_factory=list)
    planned_steps: int = 0
    stopped_early: bool = False
    # What the run was, for the custom model's stand-in (``outcome``).
    planned_epochs: int = 0
    records: int = 0
    initial_loss: float = 0.0
    learning_rate_factor: float = 1.0
    diverged: bool = False

    @property
    def steps(self) -> int:
        return len(self.training_rows)

    @property
    def final_training_loss(self) -> float:
        return self.training_rows[-1][2] if self.training_rows else 0.0

    @property
    def final_validation_loss(self) -> float | None:
        return self.validation_rows[-1][2] if self.validation_rows else None

    @property
    def loss_ratio(self) -> float:
        """Final training loss (mean of the last 5 steps, to damp noise) over the starting loss."""
        if not self.training_rows or self.initial_loss <= 0:
            return 1.0
        tail = [row[2] for row in self.training_rows[-5:]]
        return sum(tail) / len(tail) / self.initial_loss

    def outcome(self) -> dict[str, float | int | bool]:
        """What training did, stored on the custom model: steps run vs planned (early stopping),
        epochs, records, the learning-rate factor, final/initial loss and whether it diverged."""
        return {
            "steps_run": self.steps, "steps_planned": self.planned_steps, "epochs_planned": self.planned_epochs,
            "records": self.records, "learning_rate_factor": self.learning_rate_factor,
            "loss_ratio": round(self.loss_ratio, 6), "diverged": self.diverged,
        }

    def training_csv(self) -> bytes:
        return _csv(("step_number", "epoch_number", "training_loss", "perplexity"), self.training_rows)

    def validation_csv(self) -> bytes:
        return _csv(("step_number", "epoch_number", "validation_loss", "perplexity"), self.validation_rows)


def _csv(header: tuple[str, ...], rows: list[tuple[int, int, float, float]]) -> bytes:
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for step, epoch, loss, ppl in rows:
        out.write(f"{step},{epoch},{loss:.6f},{ppl:.6f}\n")
    return out.getvalue().encode()


def effective_hyperparameters(family: str, given: dict[str, str]) -> dict[str, float]:
    """The family's defaults overridden by the (already validated) given values."""
    values = {hp.name: float(hp.default) for hp in HYPERPARAMETERS.get(family, ())}
    values.update({k: float(v) for k, v in given.items()})
    return values


def unigram_entropy(text: str) -> float:
    """Entropy in nats per word of the word distribution of ``text`` (0 for empty text)."""
    counts = Counter(w.lower() for w in _WORD.findall(text))
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return -sum(c / total * math.log(c / total) for c in counts.values())


def planned_steps(family: str, records: int, hyperparameters: dict[str, str]) -> int:
    """``ceil(records / batch) * epochs``: the steps a job will run without early stopping."""
    hp = effective_hyperparameters(family, hyperparameters)
    batch = max(1, int(hp.get("batchSize", 1)))
    epochs = max(1, int(hp.get("epochCount", 1)))
    return math.ceil(max(1, records) / batch) * epochs


def patience_exhausted(epoch_losses: list[float], threshold: float, patience: int) -> bool:
    """Whether the last ``patience`` epochs all failed to improve: the rule of
    :func:`utils.customization.early_stopping` (an epoch improves when the lowest loss of all
    earlier epochs minus its loss exceeds ``threshold``; the first epoch always improves),
    checked once per epoch so training stops at the first epoch it holds."""
    if len(epoch_losses) <= patience:
        return False
    for k in range(len(epoch_losses) - patience, len(epoch_losses)):
        if round(min(epoch_losses[:k]) - epoch_losses[k], 12) > threshold:
            return False
    return True


def simulate(inputs: TrainingInputs) -> TrainingResult:
    """The training and validation curves of one job (see the module docstring)."""
    hp = effective_hyperparameters(inputs.family, inputs.hyperparameters)
    defaults = {h.name: float(h.default) for h in HYPERPARAMETERS.get(inputs.family, ())}
    n = max(1, len(inputs.train_lengths))
    batch = max(1, int(hp.get("batchSize", 1)))
    default_batch = max(1.0, defaults.get("batchSize", 1.0))
    epochs = max(1, int(hp.get("epochCount", 1)))
    warmup = max(0, int(hp.get("learningRateWarmupSteps", 0)))
    if "learningRateMultiplier" in hp:
        rho = hp["learningRateMultiplier"]
    elif "learningRate" in hp and defaults.get("learningRate"):
        rho = hp["learningRate"] / defaults["learningRate"]
    else:
        rho = 1.0
    steps_per_epoch = math.ceil(n / batch)
    total = steps_per_epoch * epochs

    entropy = unigram_entropy(inputs.text) or 5.0
    l0 = 0.4 * entropy
    l_gen = l0 * (0.35 + 0.45 / math.sqrt(1 + n / REFERENCE_RECORDS))
    mean_len = sum(inputs.train_lengths) / n if inputs.train_lengths else 1.0
    var = sum((x - mean_len) ** 2 for x in inputs.train_lengths) / n if inputs.train_lengths else 0.0
    cv = math.sqrt(var) / mean_len if mean_len > 0 else 0.0
    instability = rho / INSTABILITY_RATIO
    noise_gain = 1.0 + min(instability, 3.0)
    batch_efficiency = batch * math.sqrt(default_batch / batch) / PROGRESS_RECORDS
    n_val = len(inputs.validation_lengths)

    threshold = hp.get("earlyStoppingThreshold")
    patience = int(hp["earlyStoppingPatience"]) if "earlyStoppingPatience" in hp else None
    epoch_losses: list[float] = []
    eval_every = max(1, math.ceil(steps_per_epoch / EVALUATIONS_PER_EPOCH))

    rng = random.Random(inputs.seed)
    result = TrainingResult(
        planned_steps=total, planned_epochs=epochs, records=len(inputs.train_lengths), initial_loss=l0,
        learning_rate_factor=rho, diverged=instability > 1,
    )
    progress = 0.0
    for step in range(total):
        epoch = step // steps_per_epoch
        rho_t = rho * min(1.0, (step + 1) / (warmup + 1))
        gain = rho_t * batch_efficiency
        if instability > 1:
            gain /= instability
        progress += gain
        epochs_seen = (step + 1) / steps_per_epoch
        memorised = 1.0 - math.exp(-epochs_seen * rho * REFERENCE_RECORDS / (2.0 * n))
        divergence = l0 * math.log(instability) * (step + 1) / total if instability > 1 else 0.0
        excess = (l0 - l_gen) * math.exp(-progress)
        train_loss = l_gen * (1.0 - 0.5 * memorised) + excess + divergence
        sigma = train_loss * (0.02 + 0.1 * cv / math.sqrt(batch)) * noise_gain
        train_loss = min(MAX_LOSS, max(0.01, train_loss + rng.gauss(0.0, sigma)))
        result.training_rows.append((step, epoch, round(train_loss, 6), round(math.exp(train_loss), 6)))

        last = step == total - 1
        if n_val and ((step + 1) % eval_every == 0 or last):
            val_loss = l_gen * (1.0 + 0.3 * memorised) + excess + divergence
            val_sigma = val_loss * 0.02 / math.sqrt(max(1.0, n_val / 10.0)) * noise_gain
            val_loss = min(MAX_LOSS, max(0.01, val_loss + rng.gauss(0.0, val_sigma)))
            result.validation_rows.append((step, epoch, round(val_loss, 6), round(math.exp(val_loss), 6)))
        epoch_end = (step + 1) % steps_per_epoch == 0
        if n_val and epoch_end and threshold is not None and patience is not None:
            loss = result.validation_rows[-1][2]  # the epoch's last evaluation, as written to the CSV
            epoch_losses.append(loss)
            if not last and patience_exhausted(epoch_losses, threshold, patience):
                result.stopped_early = True
                break
    return result

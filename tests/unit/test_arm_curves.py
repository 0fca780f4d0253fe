"""Loss curves per arm: per-epoch losses, best checkpoint and early-stopping marks, labelled plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from utils import arms  # noqa: E402

NOVA = "amazon.nova-lite-v1:0:300k"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"


def frames(validation_per_epoch, evals_per_epoch=2, steps_per_epoch=4, first_epoch=0):
    epochs = len(validation_per_epoch)
    training = pd.DataFrame({
        "step_number": range(epochs * steps_per_epoch),
        "epoch_number": [first_epoch + i // steps_per_epoch for i in range(epochs * steps_per_epoch)],
        "training_loss": [3.0 - 0.1 * i for i in range(epochs * steps_per_epoch)],
    })
    rows = []
    for e, loss in enumerate(validation_per_epoch):
        for k in range(evals_per_epoch):  # earlier evaluations of the epoch are higher; the last one counts
            rows.append({"step_number": e * steps_per_epoch + (k + 1) * steps_per_epoch // evals_per_epoch - 1,
                         "epoch_number": first_epoch + e, "validation_loss": loss + 0.5 * (evals_per_epoch - 1 - k)})
    return {"training": training, "validation": pd.DataFrame(rows)}


def test_epoch_curves_take_the_last_evaluation_of_each_epoch_and_number_from_one():
    for first in (0, 1):
        per_epoch = arms.epoch_curves(frames([0.9, 0.8, 0.7], first_epoch=first))
        assert per_epoch["epoch"].tolist() == [1, 2, 3]
        assert per_epoch["validation_loss"].tolist() == [0.9, 0.8, 0.7]
        assert per_epoch["training_loss"].round(6).tolist() == [2.85, 2.45, 2.05]


def test_marks_follow_the_seed_table_with_early_stopping():
    seed = [0.9, 0.8, 0.7, 0.66, 0.64, 0.65, 0.65]
    marks = arms.curve_marks(frames(seed), HAIKU, {"epochCount": "7", "earlyStoppingThreshold": "0", "earlyStoppingPatience": "2"})
    assert (marks["stopped_epoch"], marks["best_epoch"]) == (7, 5) and "did not stop early" in marks["note"]
    stopped = frames(seed[:4])  # the job stopped after epoch 4 (threshold 0.05, patience 1)
    marks = arms.curve_marks(stopped, HAIKU, {"epochCount": "7", "earlyStoppingThreshold": "0.05", "earlyStoppingPatience": "1"})
    assert (marks["stopped_epoch"], marks["best_epoch"]) == (4, 4)
    assert "stopped training after epoch 4 of 7" in marks["note"]


def test_marks_without_early_stopping_name_the_best_validation_epoch():
    marks = arms.curve_marks(frames([2.5, 2.2, 2.4]), NOVA, {"epochCount": "3"})
    assert marks["best_epoch"] == 2 and marks["stopped_epoch"] is None and not marks["early_stopping"]
    assert "epoch 2 of 3" in marks["note"]
    no_validation = {"training": frames([1.0])["training"], "validation": pd.DataFrame()}
    assert arms.curve_marks(no_validation, NOVA, {})["best_epoch"] is None


def test_plot_has_step_and_epoch_axes_with_the_marks():
    data = frames([0.9, 0.8, 0.7, 0.66])
    marks = arms.curve_marks(data, HAIKU, {"epochCount": "7", "earlyStoppingThreshold": "0.05", "earlyStoppingPatience": "1"})
    fig = arms.plot_curves(data, marks, title="FT-N")
    by_step, by_epoch = fig.axes
    assert (by_step.get_xlabel(), by_step.get_ylabel()) == ("step", "loss")
    assert (by_epoch.get_xlabel(), by_epoch.get_ylabel()) == ("epoch", "loss")
    labels = [t.get_text() for t in by_epoch.get_legend().get_texts()]
    assert "best checkpoint (epoch 4)" in labels and "early stop (epoch 4 of 7)" in labels

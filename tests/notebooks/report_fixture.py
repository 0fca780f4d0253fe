"""A hand-made results.json that fills every section of the run report.

Shaped like what ``utils.runner.run_series`` writes (the values the notebooks record with
``utils.report.record``), so the report can be checked without running the series.
"""

from __future__ import annotations

from typing import Any


def results() -> dict[str, Any]:
    arm = {"status": "Completed", "records": 25, "final_training_loss": 0.62, "best_validation_loss": 0.91,
           "job_name": "demo-ft-n", "created": True}
    return {
        "run_id": "20260101T000000Z", "backend": "sandbox", "status": "failed", "seconds_total": 42.0,
        "parameters": {"workshop_id": "demo", "base_model": "amazon.nova-lite-v1:0:300k", "epochs": 2,
                       "arms": "all", "confirm_spend": False, "price_overrides": {}},
        "notebooks": [
            {"name": "01_permissions", "status": "ok", "seconds": 3.1, "detail": ""},
            {"name": "04_fine_tuning", "status": "ok", "seconds": 20.4, "detail": ""},
            {"name": "05_deployment", "status": "failed", "seconds": 1.2,
             "detail": "ResourceNotFoundException: the custom model was deleted. Rerun 04 fine tuning."},
        ],
        "metrics": {
            "profile": "current", "backend": "sandbox", "dataset_rows": 120, "train_records": 78,
            "models": {"base_model": "amazon.nova-lite-v1:0:300k", "teacher": "amazon.nova-pro-v1:0"},
            "training_estimate": {"title": "Fine-tuning Nova Lite", "total_usd": 1.23, "gaps": [],
                                  "train_tokens": 45000, "epochs": 2},
            "arms": {
                "base": {"arm": "base", "status": "NoJob", "records": 0,
                         "final_training_loss": None, "best_validation_loss": None},
                "ft_n": {**arm, "arm": "ft_n"},
                "ft_4n": {**arm, "arm": "ft_4n", "status": "Failed", "records": 100, "final_training_loss": None,
                          "best_validation_loss": None, "failure_message": "Training data has too few records.",
                          "fix": "Give 02 more rows."},
            },
            "loss_curve": {"arm": "ft_n", "sentence": "Training and validation loss both fall (-40%, -12%).",
                           "step": [1, 2, 3, 4, 5, 6], "training_loss": [1.6, 1.2, 0.95, 0.8, 0.7, 0.62],
                           "validation_step": [3, 6], "validation_loss": [1.02, 0.91]},
            "evaluation_scores": {"columns": ["model", "token_f1"], "data": [["base", 41.5], ["ft_n", 55.0]]},
            "f1": [{"arm": "base", "dataset": "aws docs", "f1": 41.5, "low": 35.0, "high": 48.0},
                   {"arm": "ft_n", "dataset": "aws docs", "f1": 55.0, "low": 49.0, "high": 61.0}],
            "token_usage": [{"arm": "base", "model": "Base", "n": 20, "mean": 180.0, "median": 170.0, "std": 30.5,
                             "min": 90.0, "max": 260.0},
                            {"arm": "ft_n", "model": "FT-N", "n": 20, "mean": 189.0, "median": 180.0, "std": 25.0,
                             "min": 100.0, "max": 240.0, "reduced_pct": -5.0}],
            "judges": [{"judge": "Nova Pro", "a": "ft_n", "b": "base", "wins": 12, "losses": 5, "ties": 3,
                        "win_rate": 0.71, "low": 0.47, "high": 0.87}],
            "human": [{"judge": "Nova Pro", "labels": 10, "agreement": 0.8}],
        },
        "sweep": {"command": "epochs=1,2", "grid": {"epochs": [1, 2]}, "arms": "ft_n",
                  "rows": [{"epochs": 1, "arm": "ft_n", "status": "Completed", "records": 25,
                            "final_training_loss": 0.8, "best_validation_loss": 1.0},
                           {"epochs": 2, "arm": "ft_n", "status": "Completed", "records": 25,
                            "final_training_loss": 0.62, "best_validation_loss": 0.91}],
                  "best": {"epochs": 2, "arm": "ft_n", "status": "Completed", "records": 25,
                           "final_training_loss": 0.62, "best_validation_loss": 0.91}},
        "cleanup": {"audited": True, "by": "07_cleanup", "remaining": ["s3-bucket: demo-bucket"]},
    }

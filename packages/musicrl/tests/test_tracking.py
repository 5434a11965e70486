"""Run tracking: JSONL lines written; MLflow missing is a clear error naming the extra."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from musicrl.tracking import RunTracker


def test_jsonl_log(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "log.jsonl"
    with RunTracker(path, "r1") as run:
        run.log_params({"kl": 0.1, "rewards": {"quality": 1.0}})
        run.log_metrics({"reward": 0.5, "nan": float("nan")}, step=3)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["params", "metrics", "end"]
    assert lines[1]["step"] == 3
    assert lines[1]["reward"] == 0.5
    assert lines[1]["nan"] is None
    assert lines[2]["status"] == "FINISHED"


def test_failed_run_is_marked(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with pytest.raises(RuntimeError), RunTracker(path, "r2"):
        raise RuntimeError("boom")
    assert json.loads(path.read_text().splitlines()[-1])["status"] == "FAILED"


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        RunTracker(tmp_path / "x.jsonl", "r", backend="wandb")


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow installed")
def test_mlflow_missing_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match=r"musicrl\[mlflow\]"):
        RunTracker(tmp_path / "x.jsonl", "r", backend="mlflow")

"""Run tracking: every run appends JSON lines; optionally mirrored to MLflow.

The JSONL log is always written (one object per line: ``{"event": "params" | "metrics" |
"end", "run": ..., "time": ..., "step": ..., ...}``) so that runs can be compared with
nothing installed. With ``backend="mlflow"`` (CLI ``--track mlflow``) the same params and
metrics also go to MLflow, by default into a local SQLite database next to the log
(``sqlite:///<dir>/mlflow.db``), so a team can browse runs with ``mlflow ui
--backend-store-uri sqlite:///<dir>/mlflow.db``. MLflow is optional (the ``mlflow``
extra).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["TRACKERS", "RunTracker"]

logger = logging.getLogger(__name__)

#: Tracking backends; ``jsonl`` is always on, ``mlflow`` adds an MLflow run.
TRACKERS: tuple[str, ...] = ("jsonl", "mlflow")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


class RunTracker:
    """Log a run's parameters and metrics to JSONL (and MLflow when asked).

    Parameters
    ----------
    log_path : path
        JSONL file to append to (created with its folder).
    run_name : str
        Name stored on every line (and as the MLflow run name).
    backend : {"jsonl", "mlflow"}
        ``mlflow`` also logs to MLflow; raises ImportError naming the extra when MLflow is
        not installed.
    mlflow_uri : str, optional
        MLflow tracking URI; default ``sqlite:///<log folder>/mlflow.db``.
    experiment : str
        MLflow experiment name.

    Examples
    --------
    >>> with RunTracker("out/runs.jsonl", "demo") as run:  # doctest: +SKIP
    ...     run.log_params({"kl": 0.1})
    ...     run.log_metrics({"reward": 0.5}, step=1)
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        run_name: str,
        backend: str = "jsonl",
        mlflow_uri: str | None = None,
        experiment: str = "musicrl",
    ) -> None:
        if backend not in TRACKERS:
            raise ValueError(f"backend must be one of {list(TRACKERS)}; got {backend!r}")
        self.log_path = Path(log_path)
        self.run_name = run_name
        self.backend = backend
        self._mlflow: Any = None
        mlflow: Any = None
        if backend == "mlflow":  # before creating anything: a missing extra leaves no folder
            try:
                import mlflow as _mlflow

                mlflow = _mlflow
            except ImportError:
                raise ImportError(
                    "--track mlflow needs MLflow: pip install 'musicrl[mlflow]'"
                ) from None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if backend == "mlflow":
            uri = mlflow_uri or f"sqlite:///{self.log_path.parent.resolve() / 'mlflow.db'}"
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(experiment)
            mlflow.start_run(run_name=run_name)
            self._mlflow = mlflow
            logger.info("tracking to MLflow at %s", uri)

    def _write(self, event: str, payload: Mapping[str, Any], step: int | None = None) -> None:
        line = {"event": event, "run": self.run_name, "time": time.time(), "step": step}
        line.update(_plain(dict(payload)))
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record the run's configuration."""
        self._write("params", params)
        if self._mlflow is not None:
            self._mlflow.log_params({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numeric metrics at ``step``."""
        self._write("metrics", metrics, step)
        if self._mlflow is not None:
            finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
            self._mlflow.log_metrics(finite, step=step)

    def close(self, status: str = "FINISHED") -> None:
        """Write the end line and close the MLflow run."""
        self._write("end", {"status": status})
        if self._mlflow is not None:
            self._mlflow.end_run(status=status)
            self._mlflow = None

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close("FAILED" if exc_type is not None else "FINISHED")

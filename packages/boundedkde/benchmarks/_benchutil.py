"""Helpers shared by the boundedkde benchmark scripts (not part of the library).

Machine description, quick-mode switch, optional imports of peers and atomic writes.
The scripts import this module from their own folder (``python benchmarks/accuracy.py``
puts ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import platform
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

#: Distributions whose versions the report lists (PyPI names).
PEER_DISTRIBUTIONS = (
    "numpy",
    "scipy",
    "statsmodels",
    "KDEpy",
    "arviz",
    "getdist",
    "boundedkde",
)

#: Environment variables that decide BLAS/OpenMP/FFT thread counts.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)


def quick_mode(flag: bool = False) -> bool:
    """Return True when the quick (smoke) mode is requested by flag or ``BENCH_QUICK=1``."""
    env = os.environ.get("BENCH_QUICK", "").strip().lower()
    return flag or env in {"1", "true", "yes", "on"}


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string (seconds)."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence peers' prints, warnings and log records while they run.

    GetDist prints ``Removed no burn in`` and logs smoothing warnings; ArviZ warns about its
    refactor at import. None of that is a benchmark result.
    """
    sink = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


class CountingHandler(logging.Handler):
    """Count log records of level WARNING and above (by level and first words).

    boundedkde logs, for example, when ISJ has no root and it falls back to Silverman's
    rule; in a 50-replication study that would print hundreds of lines. The counts go
    into the results instead.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        key = f"{record.levelname}: {msg.split(';')[0].split('(')[0].strip()[:80]}"
        self.counts[key] = self.counts.get(key, 0) + 1


def capture_logs(logger_name: str) -> CountingHandler:
    """Route ``logger_name``'s records to a fresh CountingHandler (and nowhere else)."""
    handler = CountingHandler()
    logger = logging.getLogger(logger_name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    return handler


def try_import(name: str) -> tuple[ModuleType | None, str]:
    """Import a module quietly; return ``(module, "")`` or ``(None, reason)``."""
    try:
        with quiet():
            module = importlib.import_module(name)
    except Exception as exc:  # any failure means "not available", never a crash
        return None, f"{type(exc).__name__}: {exc}"
    return module, ""


def dist_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def thread_info() -> dict[str, Any]:
    """Thread settings: environment variables and the thread pools threadpoolctl sees."""
    info: dict[str, Any] = {
        "env": {k: os.environ.get(k, "(unset)") for k in THREAD_ENV_VARS},
    }
    try:
        from threadpoolctl import threadpool_info

        info["pools"] = [
            {
                "api": p.get("user_api"),
                "library": p.get("internal_api"),
                "num_threads": p.get("num_threads"),
                "version": p.get("version"),
            }
            for p in threadpool_info()
        ]
    except ImportError:
        info["pools"] = "threadpoolctl not installed"
    return info


def source_fingerprint(package: str = "boundedkde") -> dict[str, str]:
    """Where the benchmarked package was imported from and a hash of its .py files.

    The estimator changes while benchmarks run; the hash tells which code produced a number.
    """
    import hashlib

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return {"path": "not importable", "sha256": ""}
    root = Path(spec.origin).parent
    digest = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        digest.update(f.relative_to(root).as_posix().encode())
        digest.update(f.read_bytes())
    return {"path": str(root), "sha256": digest.hexdigest()[:16]}


def machine_info() -> dict[str, Any]:
    """Describe the machine, interpreter and package versions for the report."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "load_average_1_5_15": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {d: dist_version(d) for d in PEER_DISTRIBUTIONS},
        "threads": thread_info(),
        "boundedkde_source": source_fingerprint(),
        "date_utc": utc_now(),
    }


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")

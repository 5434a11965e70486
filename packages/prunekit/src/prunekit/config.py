"""One frozen, validated description of a pruning run.

:class:`PruneConfig` is what :func:`prunekit.prune` takes. The CLI maps its flags onto the
fields one to one (``--nsamples`` ↔ ``nsamples``, ``--targets`` ↔ ``targets``, ...) and a
TOML file holds the same keys at top level. Everything is validated when the object is
built, before any model is loaded or any work starts.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from prunekit.masks import GROUPS, NMPattern, parse_pattern
from prunekit.methods import METHODS
from prunekit.methods.sparsegpt import DEFAULT_BLOCKSIZE, DEFAULT_PERCDAMP, DEFAULT_REFINE_ITERS

__all__ = [
    "FORWARD_DTYPES",
    "OWL_LAMBDA",
    "OWL_M",
    "SCORES",
    "STREAMS",
    "STRUCTURES",
    "PruneConfig",
]

#: Calibration forward dtypes (statistics and SparseGPT updates are always float32).
FORWARD_DTYPES: tuple[str, ...] = ("bfloat16", "float32")
#: Which model's activations feed the per-block statistics.
STREAMS: tuple[str, ...] = ("pruned", "dense")
#: OWL defaults (Yin et al. 2024, reference code's LLaMA setting: Hyper_m 5, Lamda 0.08).
OWL_M = 5.0
OWL_LAMBDA = 0.08
#: Structured pruning targets (issue 6): attention heads, MLP channels, both, or none.
STRUCTURES: tuple[str, ...] = ("none", "heads", "mlp", "both")
#: Structured pruning importance scores.
SCORES: tuple[str, ...] = ("l1", "taylor", "activation", "bonsai")

_TOL = 1e-9


def _check_choice(name: str, value: object, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def _check_patterns(name: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(p, str) and p for p in value):
        raise TypeError(f"{name} must be a tuple of non-empty pattern strings; got {value!r}")
    for pattern in value:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise ValueError(f"{name}: invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class PruneConfig:
    """Configuration of one pruning run (validated on construction).

    Parameters
    ----------
    method : {"magnitude", "sparsegpt", "wanda"}
        Unstructured / N:M method, a key of :data:`prunekit.methods.METHODS`.
    sparsity : float
        Fraction of each targeted matrix to prune, in ``[0, 1)``. With an N:M pattern it
        must equal ``1 − N/M`` (the CLI fills it in). With ``structure != "none"``, ``0``
        means structured pruning only.
    pattern : str
        ``"unstructured"`` or ``"N:M"`` (keep at most N of every M consecutive input
        weights, e.g. ``"2:4"``, ``"4:8"``; ``1 <= N < M``).
    group : {"row", "matrix"}
        Comparison group of magnitude and Wanda unstructured masks: one output row
        (Wanda's default, Sun et al. 2023) or the whole matrix (layer-wise magnitude).
        SparseGPT chooses its mask per block of columns and ignores this.
    calib : str or None
        Where the calibration text came from (recorded in the report; the CLI reads it).
    nsamples, seqlen : int
        Number and length (tokens) of calibration windows. Defaults 128 × 512 (SparseGPT
        and Wanda use 128 windows; 512 tokens keeps small models fast).
    seed : int
        Seed of calibration window sampling.
    targets : tuple of str
        Module name patterns to prune, matched against full names
        (``model.layers.0.mlp.up_proj``) and names inside a block (``mlp.up_proj``):
        shell globs, or regular expressions prefixed with ``re:``. Only Linear-like modules
        inside decoder blocks are candidates; embeddings and ``lm_head`` stay dense.
    ignore : tuple of str
        Patterns removed from ``targets``. Every pattern must match some module.
    percdamp : float
        SparseGPT damping ``λ / mean(diag H)``; 0.01 as in the paper.
    blocksize : int
        SparseGPT lazy-update block width; 128 as in the paper.
    refine_iters : int
        SparseGPT only: after the OBS pass has chosen the mask, re-solve the kept weights of
        each matrix for that mask with at most this many preconditioned conjugate-gradient
        iterations (the exact minimiser of SparseGPT's own damped objective; ALPS, Meng et
        al. 2024, and Boža 2024 do the same for a fixed mask). Default 20; 0 is the paper's
        algorithm. See :func:`prunekit.methods.sparsegpt.refine_kept_weights`.
    true_sequential : bool
        Within each block, prune in stages of modules that read the same input (q/k/v, o,
        gate/up, down for Llama) and collect each stage's statistics after the earlier
        stages were pruned, as the SparseGPT reference code's ``--true-sequential`` option.
        Costs up to ~2 extra partial block forwards per block; off by default.
    stream : {"pruned", "dense"}
        Whose activations feed each block's statistics: ``"pruned"`` (the model pruned so far,
        as the SparseGPT and Wanda reference codes do; default) or ``"dense"`` (the unpruned
        model's, one forward per block and no recomputation).
    asymmetric : bool
        SparseGPT only: asymmetric calibration (GPTAQ, Li et al. 2025). Carry the dense
        model's activations beside the pruned ones and reconstruct the *dense model's*
        layer outputs ``WX̃`` from the pruned inputs ``X`` instead of ``WX``. One more block
        forward per stage, one more activation buffer and a copy of one block. Needs
        ``true_sequential=True`` (without it the modules of a block correct the same upstream
        error twice: SmolLM2 2:4 perplexity 2988 instead of 54) and ``stream="pruned"``.
    dsnot : bool
        Wanda only: refine each unstructured row mask with DSnoT's training-free
        prune-and-grow swaps (Zhang et al. 2024). Off by default (plain Wanda).
    owl : bool
        Wanda only: outlier-weighted layer-wise sparsity (OWL, Yin et al. 2024): blocks with a
        larger share of outlier Wanda scores are pruned less, the total sparsity unchanged.
        The outlier ratios come from a dense pass (free with ``stream="dense"``). Unstructured
        patterns only. Off by default.
    owl_m, owl_lambda : float
        OWL's outlier threshold ``M`` (score > M x the block mean) and largest deviation
        ``λ`` of a block's sparsity from the target; defaults 5 and 0.08 from the OWL
        reference code's LLaMA setting.
    dtype : {"float32", "bfloat16"}
        Dtype of calibration forward passes (bfloat16 via autocast; statistics and OBS
        updates stay float32).
    threads : int or None
        ``torch.set_num_threads`` for the run; None keeps torch's setting (from
        ``OMP_NUM_THREADS``).
    eval_data : str or None
        Text file to evaluate perplexity on before and after pruning (CLI only).
    eval_nsamples : int or None
        Number of ``seqlen`` evaluation windows; None uses all.
    structure : {"none", "heads", "mlp", "both"}
        Structured pruning (remove whole heads / MLP channels).
    ratio : float
        Fraction of heads / channels to remove per layer, in ``(0, 1)`` when
        ``structure != "none"``, else 0.
    score : {"l1", "taylor", "activation", "bonsai"}
        Structured importance score.
    channel_multiple : int
        Round the MLP channels each layer keeps to a multiple of this (default 1: exactly
        ``round(intermediate_size * (1 - ratio))``). 32 keeps the matrix kernels on their
        fast blocked path on CPUs; see
        :func:`prunekit.structured.allocation.allocate_channels`.

    Raises
    ------
    ValueError, TypeError
        On any invalid field, naming it, what is allowed and what was given.

    Examples
    --------
    >>> PruneConfig(method="wanda", sparsity=0.5).pattern
    'unstructured'
    >>> PruneConfig(method="sparsegpt", pattern="2:4").nm
    NMPattern(n=2, m=4)
    """

    method: str = "sparsegpt"
    sparsity: float = 0.5
    pattern: str = "unstructured"
    group: Literal["row", "matrix"] = "row"
    calib: str | None = None
    nsamples: int = 128
    seqlen: int = 512
    seed: int = 0
    targets: tuple[str, ...] = ("*",)
    ignore: tuple[str, ...] = ()
    percdamp: float = DEFAULT_PERCDAMP
    blocksize: int = DEFAULT_BLOCKSIZE
    refine_iters: int = DEFAULT_REFINE_ITERS
    true_sequential: bool = False
    stream: Literal["pruned", "dense"] = "pruned"
    asymmetric: bool = False
    dsnot: bool = False
    owl: bool = False
    owl_m: float = OWL_M
    owl_lambda: float = OWL_LAMBDA
    dtype: Literal["float32", "bfloat16"] = "float32"
    threads: int | None = None
    eval_data: str | None = None
    eval_nsamples: int | None = None
    structure: Literal["none", "heads", "mlp", "both"] = "none"
    ratio: float = 0.0
    score: Literal["l1", "taylor", "activation", "bonsai"] = "l1"
    channel_multiple: int = 1

    def __post_init__(self) -> None:
        # TOML and JSON give lists; store tuples so the config stays hashable and frozen.
        for name in ("targets", "ignore"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
            elif isinstance(value, str):
                object.__setattr__(self, name, (value,))
        _check_choice("method", self.method, sorted(METHODS))
        _check_fraction("sparsity", self.sparsity)
        if not isinstance(self.pattern, str):
            raise TypeError(f"pattern must be a string; got {self.pattern!r}")
        nm = parse_pattern(self.pattern)
        if nm is not None and abs(self.sparsity - nm.sparsity) > _TOL:
            raise ValueError(
                f"pattern {nm} prunes {nm.sparsity:g} of the weights, but sparsity is "
                f"{self.sparsity!r}; set sparsity={nm.sparsity:g} (on the command line, leave "
                "--sparsity out)"
            )
        _check_choice("group", self.group, GROUPS)
        for name in ("calib", "eval_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a path string or None; got {value!r}")
        _check_int("nsamples", self.nsamples, 1)
        _check_int("seqlen", self.seqlen, 2)
        _check_int("seed", self.seed, 0)
        _check_patterns("targets", self.targets)
        if not self.targets:
            raise ValueError("targets must name at least one pattern, e.g. ('*',)")
        _check_patterns("ignore", self.ignore)
        if isinstance(self.percdamp, bool) or not isinstance(self.percdamp, int | float):
            raise TypeError(f"percdamp must be a number; got {self.percdamp!r}")
        if not (math.isfinite(self.percdamp) and self.percdamp > 0):
            raise ValueError(f"percdamp must be > 0 (the paper uses 0.01); got {self.percdamp!r}")
        _check_int("blocksize", self.blocksize, 1)
        if nm is not None and self.blocksize % nm.m:
            raise ValueError(
                f"blocksize must be a multiple of M={nm.m} for pattern {nm}; got {self.blocksize}"
            )
        _check_int("refine_iters", self.refine_iters, 0)
        if not isinstance(self.true_sequential, bool):
            raise TypeError(f"true_sequential must be a bool; got {self.true_sequential!r}")
        _check_choice("stream", self.stream, STREAMS)
        for name in ("asymmetric", "dsnot", "owl"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool; got {getattr(self, name)!r}")
        if self.asymmetric and self.method != "sparsegpt":
            raise ValueError(
                f"asymmetric calibration is a sparsegpt option; got method={self.method!r}"
            )
        if self.asymmetric and not self.true_sequential:
            raise ValueError(
                "asymmetric calibration needs true_sequential=True: each stage must see the "
                "already corrected earlier stages, else q/k/v and o/down correct the same "
                "upstream error twice"
            )
        if self.asymmetric and self.stream != "pruned":
            raise ValueError(
                "asymmetric calibration needs stream='pruned' (it adds the dense stream)"
            )
        if self.stream == "dense" and self.true_sequential:
            raise ValueError("true_sequential needs stream='pruned'")
        for name in ("dsnot", "owl"):
            if getattr(self, name) and self.method != "wanda":
                raise ValueError(f"{name} is a wanda option; got method={self.method!r}")
        if self.dsnot and self.group != "row":
            raise ValueError("dsnot refines per-row masks; it needs group='row'")
        if self.owl and nm is not None:
            raise ValueError(f"owl allocates unstructured sparsity per block; got pattern {nm}")
        for name in ("owl_m", "owl_lambda"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number; got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0; got {value!r}")
        _check_choice("dtype", self.dtype, FORWARD_DTYPES)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        if self.eval_nsamples is not None:
            _check_int("eval_nsamples", self.eval_nsamples, 1)
        _check_choice("structure", self.structure, STRUCTURES)
        _check_fraction("ratio", self.ratio)
        if self.structure == "none" and self.ratio != 0:
            raise ValueError(
                f"ratio={self.ratio!r} needs structure in heads, mlp, both; got structure='none'"
            )
        if self.structure != "none" and self.ratio == 0:
            raise ValueError(
                f"structure={self.structure!r} needs ratio in (0, 1), the fraction of heads / "
                "channels to remove per layer; got ratio=0"
            )
        _check_choice("score", self.score, SCORES)
        _check_int("channel_multiple", self.channel_multiple, 1)

    # ------------------------------------------------------------------ derived values
    @property
    def nm(self) -> NMPattern | None:
        """The parsed N:M pattern, or None for unstructured."""
        return parse_pattern(self.pattern)

    @property
    def unstructured_step(self) -> bool:
        """Whether the unstructured / N:M method runs (sparsity > 0 or an N:M pattern)."""
        return self.sparsity > 0 or self.nm is not None

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (tuples become lists)."""
        data = asdict(self)
        for name in ("targets", "ignore"):
            data[name] = list(data[name])
        return data

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the configuration fields, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PruneConfig:
        """Build from a mapping, filling ``sparsity`` from the pattern or structure if absent.

        When ``sparsity`` is missing: an N:M pattern implies ``1 − N/M``; structured pruning
        implies 0 (structured only); otherwise the default 0.5 applies.

        Raises
        ------
        ValueError
            For unknown keys (the message lists the known ones) or invalid values.
        """
        known = set(cls.field_names())
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown configuration keys {unknown}; known keys: {', '.join(cls.field_names())}"
            )
        values = dict(data)
        if values.get("sparsity") is None:
            values.pop("sparsity", None)
            nm = parse_pattern(values.get("pattern", "unstructured"))
            if nm is not None:
                values["sparsity"] = nm.sparsity
            elif values.get("structure", "none") != "none":
                values["sparsity"] = 0.0
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> PruneConfig:
        """Read a TOML file whose top-level keys are the field names.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the TOML is malformed, has unknown keys or invalid values.
        """
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {os.fspath(path)!r} is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def to_toml(self) -> str:
        """TOML text of every field that is not None (None is the default of such fields)."""
        lines = ["# prunekit PruneConfig"]
        for key, value in self.to_dict().items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def write_toml(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_toml` to ``path`` atomically (temp file + ``os.replace``)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.to_toml())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _toml_value(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string for every character we can receive.
        # TOML also requires DEL (U+007F) escaped, which JSON leaves raw.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")

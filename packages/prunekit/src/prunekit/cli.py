"""The ``prunekit`` command line: ``prune``, ``eval`` and ``inspect``.

Results go to stdout, logs and progress bars to stderr. Exit codes: 0 success, 1 a failure
while running, 2 bad usage or bad input (the message names the flag and what to do).
Every ``prune`` option maps one to one onto a :class:`~prunekit.config.PruneConfig` field
(``--eval-data`` ↔ ``eval_data``); ``--config run.toml`` reads the same keys, and flags
given on the command line override the file.

Text sources (``--calib``, ``--eval-data``, ``--data``) are a ``.txt``, ``.jsonl`` or
MediaWiki ``.bz2``/``.xml`` file, or one of the built-in offline corpora shipped in the
``gensim`` wheel (``pip install prunekit[demo]``): ``gensim:wiki-calibration``,
``gensim:wiki-evaluation`` (the Wikipedia dump split by page) and ``gensim:lee``.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch

try:
    import click
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the prunekit command line needs click: pip install 'prunekit[cli]'") from exc

from prunekit.adapters import check_seqlen
from prunekit.config import FORWARD_DTYPES, SCORES, STREAMS, STRUCTURES, PruneConfig
from prunekit.masks import GROUPS
from prunekit.methods import METHODS

__all__ = ["BUILTIN_TEXTS", "main"]

logger = logging.getLogger("prunekit.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _gensim(name: str) -> Callable[[], list[str]]:
    def load() -> list[str]:
        from prunekit import data

        if name == "lee":
            return data.gensim_lee()
        return data.gensim_wikipedia("calibration" if name == "calibration" else "evaluation")

    return load


#: Built-in offline text sources accepted wherever a text file is.
BUILTIN_TEXTS: dict[str, Callable[[], list[str]]] = {
    "gensim:lee": _gensim("lee"),
    "gensim:wiki-calibration": _gensim("calibration"),
    "gensim:wiki-evaluation": _gensim("evaluation"),
}


class BadInput(click.ClickException):
    """Bad usage or input: exit code 2."""

    exit_code = EXIT_USAGE


def _config_error(message: str, flags: dict[str, Any], config_file: str | None) -> str:
    """A PruneConfig error on one line, naming the flag (or the config file's key).

    PruneConfig's messages start with the field's name ("pattern N:M must ...").
    """
    field, _, rest = message.partition(" ")
    names = PruneConfig.field_names()
    if field not in names:
        flag_names = ", ".join("--" + k.replace("_", "-") for k in names)
        return f"{message} (prune options: {flag_names})"
    flag = "--" + field.replace("_", "-")
    value = flags.get(field)
    if (value is None or value == ()) and config_file is not None:
        return f"{field} in --config {config_file!r}: {rest}"
    return f"{flag}: {rest}"


def _fail(message: str) -> NoReturn:
    raise BadInput(message)


def _check_text_source(flag: str, spec: str | None) -> None:
    if spec is None or spec in BUILTIN_TEXTS:
        return
    if not Path(spec).is_file():
        builtins = ", ".join(sorted(BUILTIN_TEXTS))
        _fail(f"{flag} {spec!r}: no such file; give a .txt/.jsonl/.bz2 file or one of {builtins}")


def _read_texts(flag: str, spec: str) -> list[str]:
    from prunekit.data import load_texts

    try:
        if spec in BUILTIN_TEXTS:
            return BUILTIN_TEXTS[spec]()
        return load_texts(spec)
    except (ValueError, TypeError, OSError, EOFError) as exc:
        # OSError/EOFError: a corrupt or truncated .bz2, an unreadable file.
        _fail(f"{flag} {spec!r}: {exc}")


def _check_report(
    report: str,
    model: str,
    save: str | None,
    config_file: str | None,
    texts: tuple[str | None, str | None],
) -> None:
    """Refuse a --report path that is a folder, lacks a folder, or is one of the run's
    inputs or inside its model or --save folder (prunekit never writes over its input)."""
    target = Path(report).expanduser().resolve()
    if target.is_dir():
        _fail(f"--report {report!r} is a folder; give a file name such as report.json")
    inputs = [p for p in (config_file, *texts) if p is not None and Path(p).is_file()]
    if any(Path(p).expanduser().resolve() == target for p in inputs):
        _fail(f"--report {report!r} is one of this run's inputs; choose another file")
    source = Path(model).expanduser()
    if source.exists():
        source = source.resolve()
        if target == source or (source.is_dir() and source in target.parents):
            _fail(
                f"--report {report!r} lies in the model's source {model!r}; prunekit never "
                "writes into its input, choose a file outside it"
            )
    if save is not None:
        out = Path(save).expanduser().resolve()
        if target == out or out in target.parents:
            _fail(f"--report {report!r} lies in the --save folder {save!r}; write it elsewhere")
    if not target.parent.is_dir():
        _fail(f"--report {report!r}: its folder does not exist; create it first")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _load(model: str, threads: int | None) -> Any:
    from prunekit.loading import load_model

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return load_model(model)
    except (ValueError, TypeError, OSError) as exc:
        _fail(f"MODEL {model!r}: {exc}")


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while handling a KeyboardInterrupt."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _run(func: Callable[[], None]) -> None:
    """Run a command body, mapping exceptions onto exit codes 1 and 2."""
    try:
        func()
    except click.ClickException:
        raise
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        raise BadInput(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("Interrupted; no output was written.", err=True)
        sys.exit(130)
    except Exception as exc:
        if _interrupted(exc):
            # A library caught the KeyboardInterrupt and raised its own error from it
            # (transformers' lazy imports do): still an interrupt.
            click.echo("Interrupted; no output was written.", err=True)
            sys.exit(130)
        logger.debug("failure", exc_info=True)
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="prunekit")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """One-shot pruning of Hugging Face language models (magnitude, Wanda, SparseGPT)."""
    _setup_logging(verbose, quiet)


# ----------------------------------------------------------------------------- prune
_CONFIG_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--method", {"type": click.Choice(sorted(METHODS)), "help": "Pruning method."}),
    (
        "--sparsity",
        {
            "type": float,
            "help": "Fraction pruned per group, in [0,1) "
            "(default 0.5; implied by an N:M pattern; 0 with --structure).",
        },
    ),
    (
        "--pattern",
        {"type": str, "help": "'unstructured' or N:M such as 2:4, 4:8 (keep N of every M)."},
    ),
    (
        "--group",
        {
            "type": click.Choice(GROUPS),
            "help": "Comparison group of magnitude/Wanda masks (default row).",
        },
    ),
    (
        "--calib",
        {
            "type": str,
            "help": "Calibration text: .txt/.jsonl/.bz2 file or gensim:wiki-calibration.",
        },
    ),
    ("--nsamples", {"type": int, "help": "Calibration windows (default 128)."}),
    ("--seqlen", {"type": int, "help": "Tokens per window (default 512)."}),
    ("--seed", {"type": int, "help": "Seed of window sampling (default 0)."}),
    (
        "--targets",
        {
            "type": str,
            "multiple": True,
            "help": "Module pattern to prune "
            "(glob or re:REGEX; repeatable; default every Linear in decoder blocks).",
        },
    ),
    (
        "--ignore",
        {"type": str, "multiple": True, "help": "Module pattern to keep dense (repeatable)."},
    ),
    ("--percdamp", {"type": float, "help": "SparseGPT damping fraction (default 0.01)."}),
    ("--blocksize", {"type": int, "help": "SparseGPT block width (default 128)."}),
    (
        "--refine-iters",
        {
            "type": int,
            "help": "SparseGPT: conjugate-gradient iterations re-solving the kept weights "
            "for the chosen mask (default 20; 0 = the paper's algorithm).",
        },
    ),
    (
        "--true-sequential/--no-true-sequential",
        {
            "help": "Prune each block in stages (q/k/v, o, gate/up, down), re-collecting "
            "statistics after each stage (default off)."
        },
    ),
    (
        "--stream",
        {
            "type": click.Choice(STREAMS),
            "help": "Activations feeding the statistics: the pruned model's (default) or "
            "the dense model's.",
        },
    ),
    (
        "--asymmetric/--no-asymmetric",
        {
            "help": "SparseGPT: reconstruct the dense model's layer outputs from the pruned "
            "inputs (GPTAQ asymmetric calibration; default off)."
        },
    ),
    (
        "--dsnot/--no-dsnot",
        {"help": "Wanda: refine masks with DSnoT prune-and-grow swaps (default off)."},
    ),
    (
        "--owl/--no-owl",
        {"help": "Wanda: outlier-weighted layer-wise sparsity, OWL (default off)."},
    ),
    ("--owl-m", {"type": float, "help": "OWL outlier threshold M (default 5)."}),
    ("--owl-lambda", {"type": float, "help": "OWL largest sparsity deviation (default 0.08)."}),
    (
        "--dtype",
        {
            "type": click.Choice(FORWARD_DTYPES),
            "help": "Dtype of calibration forward passes (default float32).",
        },
    ),
    ("--threads", {"type": int, "help": "torch threads (default: OMP_NUM_THREADS / torch's)."}),
    ("--eval-data", {"type": str, "help": "Text to measure perplexity on before and after."}),
    ("--eval-nsamples", {"type": int, "help": "Evaluation windows of --seqlen (default all)."}),
    ("--structure", {"type": click.Choice(STRUCTURES), "help": "Structured pruning target."}),
    ("--ratio", {"type": float, "help": "Fraction of heads/channels removed per layer."}),
    ("--score", {"type": click.Choice(SCORES), "help": "Structured importance score."}),
    (
        "--channel-multiple",
        {
            "type": int,
            "help": "Round kept MLP channels to a multiple of this (default 1; 32 runs "
            "faster on CPUs, see docs/prunekit/structured.md).",
        },
    ),
]


def _config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for flag, kwargs in reversed(_CONFIG_OPTIONS):
        func = click.option(flag, default=None, **kwargs)(func)
    return func


def build_config(config_file: str | None, flags: dict[str, Any]) -> PruneConfig:
    """Merge a TOML file and the flags given (flags win) into a validated PruneConfig."""
    data: dict[str, Any] = {}
    if config_file is not None:
        import tomllib

        try:
            with open(config_file, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            _fail(f"--config {config_file!r}: no such file")
        except IsADirectoryError:
            _fail(f"--config {config_file!r} is a folder; give a TOML file")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            _fail(f"--config {config_file!r} is not valid UTF-8 TOML: {exc}")
        except OSError as exc:
            _fail(f"--config {config_file!r} could not be read: {exc}")
    for key, value in flags.items():
        if value is None or value == ():
            continue
        data[key] = list(value) if isinstance(value, tuple) else value
    try:
        return PruneConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        _fail(_config_error(str(exc), flags, config_file))


@main.command()
@click.argument("model")
@_config_options
@click.option(
    "--config",
    "config_file",
    type=str,
    default=None,
    help="TOML file with the same keys; flags given override it.",
)
@click.option("--save", type=str, default=None, help="New folder for the pruned model.")
@click.option("--report", type=str, default=None, help="Write the JSON report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")
@click.option(
    "--speed",
    "speed_batches",
    type=str,
    default=None,
    help="Measure dense vs pruned speed in this run and add it to the report: prefill "
    "tokens/s at these comma-separated batch sizes (e.g. 1,8) x --speed-seqlen tokens, and "
    "generation ms/token. Keeps a dense copy in memory.",
)
@click.option(
    "--speed-seqlen", type=int, default=512, show_default=True, help="Prefill length for --speed."
)
def prune(
    model: str,
    config_file: str | None,
    save: str | None,
    report: str | None,
    as_json: bool,
    progress: bool,
    speed_batches: str | None,
    speed_seqlen: int,
    **flags: Any,
) -> None:
    """Prune MODEL (a Hugging Face folder, a .gguf file or a hub id)."""
    config = build_config(config_file, flags)
    batches: tuple[int, ...] = ()
    if speed_batches is not None:
        try:
            batches = tuple(int(b) for b in speed_batches.split(","))
        except ValueError:
            batches = ()
        if not batches or min(batches) < 1:
            _fail(
                "--speed must be comma-separated batch sizes >= 1 such as 1,8; "
                f"got {speed_batches!r}"
            )
    if speed_seqlen < 1:
        _fail(f"--speed-seqlen must be >= 1; got {speed_seqlen}")
    from prunekit.pruning import needs_calibration

    # l1 structured scores and magnitude need no data; every other score and method does.
    if needs_calibration(config) and config.calib is None:
        _fail(
            f"--calib FILE is required for method {config.method!r}"
            + (f" and structure {config.structure!r}" if config.structure != "none" else "")
            + "; give a .txt/.jsonl/.bz2 file or gensim:wiki-calibration"
        )
    _check_text_source("--calib", config.calib)
    _check_text_source("--eval-data", config.eval_data)
    if report is not None:
        _check_report(report, model, save, config_file, (config.calib, config.eval_data))
    if save is not None:
        from prunekit.saving import check_output_dir

        try:
            check_output_dir(save, source=model if Path(model).exists() else None)
        except ValueError as exc:
            _fail(f"--save: {exc}")

    def body() -> None:
        from prunekit.data import calibration_windows, evaluation_tokens
        from prunekit.evaluation import perplexity, perplexity_ratio
        from prunekit.pruning import prune as run_prune
        from prunekit.saving import save_model

        loaded = _load(model, config.threads)
        try:
            if config.calib is not None:
                check_seqlen(loaded.model, config.seqlen, "--seqlen")
            if config.eval_data is not None:
                check_seqlen(loaded.model, config.seqlen, "--seqlen")
            if batches:
                check_seqlen(loaded.model, speed_seqlen, "--speed-seqlen")
        except ValueError as exc:
            _fail(str(exc))
        calibration: torch.Tensor | None
        if config.calib is not None:
            texts = _read_texts("--calib", config.calib)
            try:
                calibration = calibration_windows(
                    loaded.tokenizer, texts, config.nsamples, config.seqlen, config.seed
                )
            except ValueError as exc:
                _fail(f"--calib {config.calib!r}: {exc}")
        else:
            calibration = None  # nothing in the config reads data (checked above)
        eval_tokens = None
        ppl: dict[str, dict[str, Any]] = {}
        if config.eval_data is not None:
            eval_tokens = evaluation_tokens(
                loaded.tokenizer, _read_texts("--eval-data", config.eval_data)
            )
            dense = perplexity(
                loaded.model,
                eval_tokens,
                seqlen=config.seqlen,
                nsamples=config.eval_nsamples,
                progress=progress,
            )
            ppl["dense"] = dense.to_dict()
        dense_copy = None
        if batches:
            import copy

            dense_copy = copy.deepcopy(loaded.model)
        result = run_prune(
            loaded.model, config, calibration, source=loaded.source, progress=progress
        )
        if eval_tokens is not None:
            pruned = perplexity(
                loaded.model,
                eval_tokens,
                seqlen=config.seqlen,
                nsamples=config.eval_nsamples,
                progress=progress,
            )
            ppl["pruned"] = pruned.to_dict()
            ppl["ratio"] = perplexity_ratio(pruned, dense).to_dict()
        from dataclasses import replace

        result = replace(result, perplexity=ppl)
        speed: dict[str, Any] | None = None
        if dense_copy is not None:
            from prunekit.structured import compare_speed, count_parameters

            logger.info("measuring dense vs pruned speed (batches %s x %d)", batches, speed_seqlen)
            speed = compare_speed(dense_copy, loaded.model, batches=batches, seqlen=speed_seqlen)
            speed["params_dense"] = count_parameters(dense_copy)
            speed["params_pruned"] = count_parameters(loaded.model)
            del dense_copy
        saved: Path | None = None
        try:
            if save is not None:
                saved = save_model(
                    loaded.model, save, tokenizer=loaded.tokenizer, source=loaded.source
                )
                size = sum(f.stat().st_size for f in Path(saved).glob("*.safetensors"))
                speed = {**(speed or {}), "safetensors_bytes": size}
            result = replace(result, speed=speed)
            if report is not None:
                result.write_json(report)
        except BaseException:
            # All or nothing: a run whose report could not be written (or that was
            # interrupted here) takes its freshly saved folder with it.
            if saved is not None:
                logger.error("removing %s: the run did not finish", saved)
                shutil.rmtree(saved, ignore_errors=True)
            raise
        if as_json:
            click.echo(json.dumps(result.to_dict(), default=str))
            return
        click.echo(f"method      {config.method} {config.pattern} (sparsity {config.sparsity:g})")
        click.echo(f"sparsity    {result.sparsity:.4f} over {len(result.layers)} modules")
        click.echo(
            f"wall time   {result.wall_time_s:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB"
        )
        for name in ("dense", "pruned"):
            if name in ppl:
                entry = ppl[name]
                click.echo(
                    f"perplexity  {name}: {entry['perplexity']:.3f} ({entry['protocol']}, "
                    f"{entry['nsamples']} x {entry['seqlen']}, {entry['n_tokens']} tokens)"
                )
        if "ratio" in ppl:
            r = ppl["ratio"]
            click.echo(
                f"ratio       pruned / dense {r['ratio']:.3f} "
                f"({r['level']:.0%} interval over windows {r['low']:.3f}-{r['high']:.3f})"
            )
        if speed is not None:
            for batch, p in speed.get("prefill", {}).items():
                click.echo(
                    f"prefill     batch {batch} x {speed['seqlen']}: "
                    f"{p['tokens_per_s_dense']:.1f} -> {p['tokens_per_s_pruned']:.1f} tokens/s "
                    f"({p['speedup_wall']:.2f}x; ideal {p['ideal_speedup']:.2f}x)"
                )
            gen = speed.get("generation")
            if gen:
                click.echo(
                    f"generation  {gen['ms_per_token_dense']:.1f} -> "
                    f"{gen['ms_per_token_pruned']:.1f} ms/token"
                )
        if save is not None:
            click.echo(f"saved       {save}")

    _run(body)


# ----------------------------------------------------------------------------- eval
@main.command(name="eval")
@click.argument("model")
@click.option(
    "--data",
    required=True,
    type=str,
    help="Text: .txt/.jsonl/.bz2 file or gensim:wiki-evaluation / gensim:lee.",
)
@click.option("--seqlen", type=int, default=512, show_default=True, help="Window length.")
@click.option("--nsamples", type=int, default=None, help="Number of windows (default all).")
@click.option(
    "--stride",
    type=int,
    default=None,
    help="Use the strided protocol with this stride (default: non-overlapping).",
)
@click.option("--threads", type=int, default=None, help="torch threads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def evaluate(
    model: str,
    data: str,
    seqlen: int,
    nsamples: int | None,
    stride: int | None,
    threads: int | None,
    as_json: bool,
    progress: bool,
) -> None:
    """Perplexity of MODEL on text (non-overlapping windows, remainder dropped)."""
    _check_text_source("--data", data)
    if seqlen < 2:
        _fail(f"--seqlen must be >= 2; got {seqlen}")
    if nsamples is not None and nsamples < 1:
        _fail(f"--nsamples must be >= 1; got {nsamples}")
    if stride is not None and not 1 <= stride <= seqlen:
        _fail(f"--stride must be in [1, --seqlen={seqlen}]; got {stride}")
    if threads is not None and threads < 1:
        _fail(f"--threads must be >= 1; got {threads}")

    def body() -> None:
        from prunekit.data import evaluation_tokens
        from prunekit.evaluation import perplexity

        loaded = _load(model, threads)
        try:
            check_seqlen(loaded.model, seqlen, "--seqlen")
        except ValueError as exc:
            _fail(str(exc))
        tokens = evaluation_tokens(loaded.tokenizer, _read_texts("--data", data))
        try:
            result = perplexity(
                loaded.model,
                tokens,
                seqlen=seqlen,
                nsamples=nsamples,
                protocol="non-overlapping" if stride is None else "strided",
                stride=stride,
                progress=progress,
            )
        except ValueError as exc:
            _fail(f"--data {data!r}: {exc}")
        if as_json:
            click.echo(json.dumps({"model": loaded.source, "data": data, **result.to_dict()}))
        else:
            click.echo(
                f"perplexity {result.perplexity:.4f} ({result.protocol}, {result.nsamples} x "
                f"{result.seqlen} tokens, stride {result.stride}, {result.n_tokens} scored)"
            )

    _run(body)


# ----------------------------------------------------------------------------- inspect
@main.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def inspect(model: str, as_json: bool) -> None:
    """Per-layer sparsity (fraction of zero weights) of MODEL's decoder blocks."""

    def body() -> None:
        from prunekit.report import layer_sparsity

        loaded = _load(model, None)
        layers = layer_sparsity(loaded.model)
        zeros = sum(layer.zeros for layer in layers)
        numel = sum(layer.numel for layer in layers)
        overall = zeros / numel if numel else 0.0
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "model": loaded.source,
                        "model_type": loaded.model.config.model_type,
                        "sparsity": overall,
                        "layers": [layer.to_dict() for layer in layers],
                    }
                )
            )
            return
        width = max(len(layer.name) for layer in layers)
        click.echo(f"{'module':<{width}}  {'shape':>13}  sparsity")
        for layer in layers:
            shape = f"{layer.shape[0]}x{layer.shape[1]}"
            click.echo(f"{layer.name:<{width}}  {shape:>13}  {layer.sparsity:8.4f}")
        click.echo(f"{'total':<{width}}  {numel:>13}  {overall:8.4f}")

    _run(body)


if __name__ == "__main__":  # pragma: no cover
    main()

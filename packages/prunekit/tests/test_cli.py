"""CLI: exit codes 0/1/2, JSON on stdout, flags and TOML onto PruneConfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prunekit.cli import main
from transformers import AutoModelForCausalLM


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _prune_args(model_dir: Path, text_file: Path, *extra: str) -> list[str]:
    return [
        "prune", str(model_dir), "--method", "wanda", "--calib", str(text_file),
        "--nsamples", "4", "--seqlen", "32", "--no-progress", *extra,
    ]  # fmt: skip


def test_prune_save_report_and_inspect(model_dir: Path, text_file: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "pruned", tmp_path / "report.json"
    code, stdout, stderr = _run(
        *_prune_args(model_dir, text_file, "--sparsity", "0.5", "--save", str(out)),
        "--report", str(report), "--eval-data", str(text_file), "--eval-nsamples", "2",
    )  # fmt: skip
    assert code == 0, stderr
    assert "sparsity    0.5000" in stdout
    data = json.loads(report.read_text())
    assert data["sparsity"] == pytest.approx(0.5)
    assert data["config"]["method"] == "wanda"
    assert data["config"]["nsamples"] == 4
    assert data["config"]["calib"] == str(text_file)
    assert set(data["perplexity"]) == {"dense", "pruned", "ratio"}
    assert data["perplexity"]["pruned"]["n_tokens"] == 2 * 31
    ppl = data["perplexity"]
    # The ratio is pruned over dense on the same windows, inside its own interval.
    assert ppl["ratio"]["ratio"] == pytest.approx(
        ppl["pruned"]["perplexity"] / ppl["dense"]["perplexity"], rel=1e-9
    )
    assert ppl["ratio"]["low"] <= ppl["ratio"]["ratio"] <= ppl["ratio"]["high"]
    assert ppl["ratio"]["n_windows"] == 2
    assert "ratio       pruned / dense" in stdout
    assert {"torch", "transformers", "prunekit"} <= set(data["versions"])
    # The saved folder reloads with stock transformers and is 50% sparse inside the blocks.
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert float((reloaded.model.layers[0].mlp.up_proj.weight == 0).float().mean()) == 0.5
    code, stdout, _ = _run("inspect", str(out), "--json")
    assert code == 0
    assert json.loads(stdout)["sparsity"] == pytest.approx(0.5)
    code, stdout, _ = _run("inspect", str(out))
    assert code == 0
    assert "mlp.up_proj" in stdout


def test_eval_json_is_one_object_on_stdout(model_dir: Path, text_file: Path) -> None:
    code, stdout, stderr = _run(
        "eval", str(model_dir), "--data", str(text_file), "--seqlen", "32", "--nsamples", "3",
        "--json", "--no-progress",
    )  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["perplexity"] > 1.0
    assert (data["nsamples"], data["seqlen"], data["protocol"]) == (3, 32, "non-overlapping")


def test_toml_config_with_flag_override(model_dir: Path, text_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('method = "magnitude"\npattern = "2:4"\nnsamples = 4\nseqlen = 32\n')
    code, stdout, stderr = _run(
        "prune", str(model_dir), "--config", str(config), "--pattern", "4:8", "--json",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)  # --json: the report is the only thing on stdout
    assert data["config"]["method"] == "magnitude"  # from the file
    assert data["config"]["pattern"] == "4:8"  # the flag wins
    assert data["config"]["sparsity"] == 0.5  # implied by 4:8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "obs"], "--method"),
        (["--sparsity", "1.5"], "--sparsity: must be in [0, 1)"),
        (["--pattern", "4:2"], "1 <= N < M"),
        (["--nsamples", "100000"], "nsamples"),
        (["--targets", "nothing*"], "targets pattern 'nothing*'"),
        (["--method", "sparsegpt", "--refine-iters", "-1"], "--refine-iters: must be >= 0; got -1"),
    ],
)
def test_bad_input_exits_2(
    model_dir: Path, text_file: Path, extra: list[str], message: str
) -> None:
    code, _, stderr = _run(*_prune_args(model_dir, text_file), *extra)
    assert code == 2
    assert message in stderr


def test_config_errors_are_one_line_naming_the_flag_or_the_file(
    model_dir: Path, text_file: Path, tmp_path: Path
) -> None:
    code, _, stderr = _run(*_prune_args(model_dir, text_file), "--pattern", "4:2")
    assert code == 2
    assert stderr.strip().splitlines() == [
        "Error: --pattern: N:M must satisfy 1 <= N < M (keep N of every M weights); got 4:2"
    ]
    toml = tmp_path / "run.toml"
    toml.write_text("sparsity = 1.5\n")
    code, _, stderr = _run(*_prune_args(model_dir, text_file), "--config", str(toml))
    assert code == 2
    assert stderr.strip().splitlines() == [
        f"Error: sparsity in --config {str(toml)!r}: must be in [0, 1); got 1.5"
    ]


def test_bad_paths_exit_2(model_dir: Path, text_file: Path, tmp_path: Path) -> None:
    code, _, stderr = _run(*_prune_args(model_dir, tmp_path / "missing.txt"))
    assert code == 2
    assert "--calib" in stderr
    assert "no such file" in stderr
    code, _, stderr = _run(*_prune_args(model_dir, text_file, "--save", str(model_dir)))
    assert code == 2
    assert "--save" in stderr
    code, _, stderr = _run("prune", str(model_dir), "--method", "sparsegpt", "--no-progress")
    assert code == 2
    assert "--calib FILE is required" in stderr
    code, _, stderr = _run("eval", str(tmp_path / "nope"), "--data", str(text_file))
    assert code == 2
    assert "MODEL" in stderr


def test_runtime_failure_exits_1_and_writes_nothing(
    model_dir: Path, text_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr("prunekit.pruning.prune_unstructured", explode)
    out = tmp_path / "out"
    code, stdout, stderr = _run(*_prune_args(model_dir, text_file, "--save", str(out)))
    assert code == 1
    assert "out of memory" in stderr
    assert stdout == ""
    assert not out.exists()


def test_structured_prune_reports_measured_speed_and_size(
    model_dir: Path, text_file: Path, tmp_path: Path
) -> None:
    # --speed: dense vs pruned measured in the same run; the ideal speedup comes from the
    # FLOPs of the two models, so halving heads and channels must make it exceed 1.
    out = tmp_path / "pruned"
    code, stdout, stderr = _run(
        "prune", str(model_dir), "--structure", "both", "--ratio", "0.5", "--score", "l1",
        "--sparsity", "0", "--save", str(out), "--speed", "1,2", "--speed-seqlen", "16",
        "--json", "--no-progress",
    )  # fmt: skip
    assert code == 0, stderr
    speed = json.loads(stdout)["speed"]
    assert set(speed["prefill"]) == {"1", "2"}
    for entry in speed["prefill"].values():
        assert entry["ideal_speedup"] > 1.0
        assert entry["tokens_per_s_dense"] > 0
        assert entry["tokens_per_s_pruned"] > 0
    assert speed["generation"]["ms_per_token_pruned"] > 0
    assert speed["params_pruned"] < speed["params_dense"]
    files = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    assert speed["safetensors_bytes"] == files


@pytest.mark.parametrize("value", ["0", "1,x", ""])
def test_bad_speed_batches_exit_2_before_work(model_dir: Path, value: str) -> None:
    code, _, stderr = _run(
        "prune", str(model_dir), "--method", "magnitude", "--speed", value, "--no-progress"
    )
    assert code == 2
    assert "--speed must be comma-separated batch sizes" in stderr

"""Bad input gets a clear error naming the parameter or file; nothing is half-written.

One test (or parametrised group) per failure found by the input audit: corrupt or
mismatched checkpoints and reward-model files, unusable ``--out`` paths, non-finite
settings and diverging training (never saved), all-tie stores, out-of-range seeds,
malformed store contents, missing optional dependencies, and the CLI's exit codes and
messages (no traceback without ``-v``; Ctrl-C exits 130).
"""

from __future__ import annotations

import importlib
import json
import math
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from musicrl.checkpoint import (
    TrainingDivergedError,
    check_finite_parameters,
    load_checkpoint,
    save_checkpoint,
)
from musicrl.cli import _emit, main
from musicrl.corpus import Prompt
from musicrl.dpo import DPOConfig, dpo_finetune
from musicrl.finetune import FinetuneConfig, finetune
from musicrl.generator import GeneratorConfig, MelodyTransformer, sample
from musicrl.preferences import PreferenceStore, PreferenceStoreError, read_store, write_store
from musicrl.pretrain import PretrainConfig
from musicrl.rewards import AdherenceClassifier, PreferenceRewardModel, QualityReward
from musicrl.tokenizer import Tokenizer
from musicrl.tracking import RunTracker

from .strategies import bar_melody

P = Prompt.parse("C major, 4/4")


def _tiny(path: Path, d_model: int = 16) -> Path:
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        tok.vocab_size, d_model=d_model, n_layers=1, n_heads=2, max_len=48, dropout=0.0
    )
    save_checkpoint(path, MelodyTransformer(cfg, tok), tok, cfg, {})
    return path


@pytest.fixture
def ck(tmp_path: Path) -> Path:
    return _tiny(tmp_path / "base")


def _store(tmp_path: Path, choices: tuple[str, ...] = ("A", "B", "A")) -> Path:
    store = PreferenceStore()
    for i, c in enumerate(choices):
        a = bar_melody([60 + i, 62], [24, 24], "4/4")
        b = bar_melody([62, 60 + i, 64], [24, 12, 12], "4/4")
        store.add(P, a, b, c, "simulated-0")
    path = tmp_path / "prefs.jsonl"
    write_store(store, path)
    return path


def _cli(args: list[str]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------ 1-4: checkpoints


@pytest.mark.parametrize("kind", ["random", "truncated", "json"])
def test_corrupt_weights_name_the_file(ck: Path, kind: str) -> None:
    weights = ck / "model.safetensors"
    data = {
        "random": np.random.default_rng(5000).bytes(5000),
        "truncated": weights.read_bytes()[:1000],
        "json": (ck / "config.json").read_bytes(),
    }[kind]
    weights.write_bytes(data)
    with pytest.raises(ValueError, match="not a readable safetensors checkpoint") as err:
        load_checkpoint(ck)
    assert str(weights) in str(err.value)


def test_weights_of_another_config_name_tensor_and_shapes(tmp_path: Path) -> None:
    a, b = _tiny(tmp_path / "a"), _tiny(tmp_path / "b", d_model=24)
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="do not match") as err:
        load_checkpoint(a)
    msg = str(err.value)
    assert "'tok_emb.weight'" in msg
    assert "(101, 24)" in msg
    assert "(101, 16)" in msg
    assert "config.json" in msg


def test_finetune_resume_with_another_base_is_refused(tmp_path: Path) -> None:
    a, b = _tiny(tmp_path / "a"), _tiny(tmp_path / "b", d_model=24)
    cfg = FinetuneConfig(
        rewards={"quality": 1.0}, steps=1, batch_size=2, samples_per_prompt=2, max_new_tokens=6
    )
    run = tmp_path / "run"
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    rewards = {"quality": QualityReward()}
    finetune(ca.model, ca.tokenizer, [P], rewards, cfg, run, progress=False)
    with pytest.raises(ValueError, match="not fine-tuned from this base model") as err:
        finetune(cb.model, cb.tokenizer, [P], rewards, cfg, run, progress=False)
    assert "(101, 16)" in str(err.value)
    assert "(101, 24)" in str(err.value)


def test_cli_refused_resume_leaves_the_run_log_unchanged(tmp_path: Path) -> None:
    a, b = _tiny(tmp_path / "a"), _tiny(tmp_path / "b", d_model=24)
    run = tmp_path / "run"
    args = ["--out", run, "--rewards", "quality", "--steps", 1, "--batch-size", 2,
            "--samples-per-prompt", 2, "--prompt", "C major, 4/4"]
    r = _cli(["finetune", "--base", a, *args])
    assert r.exit_code == 0, r.output
    log = (run / "runs.jsonl").read_bytes()
    files = _files(run)
    r = _cli(["finetune", "--base", b, *args])
    assert r.exit_code == 2, r.output
    assert "not fine-tuned from this base model" in r.output
    assert (run / "runs.jsonl").read_bytes() == log  # used to gain a params and a FAILED line
    assert _files(run) == files


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("config.json", "{not json", "config.json is not valid JSON"),
        ("config.json", '{"format": "musicrl-checkpoint", "version": 1}', "'generator' is missing"),
        ("config.json", "[1, 2]", "config.json must hold a JSON object"),
        ("tokenizer.json", "", "tokenizer.json is not valid JSON"),
        ("tokenizer.json", "[1, 2, 3]", "tokenizer.json: not a musicrl tokenizer"),
        ("tokenizer.json", '{"format": "musicrl-tokenizer"}', "field 'min_pitch' is missing"),
    ],
)
def test_bad_checkpoint_json_names_file_and_field(
    ck: Path, name: str, text: str, expected: str
) -> None:
    if name == "tokenizer.json" and "format" in text:
        fmt = json.loads((ck / name).read_text())["format"]
        text = json.dumps({"format": fmt})
    (ck / name).write_text(text)
    with pytest.raises(ValueError) as err:
        load_checkpoint(ck)
    assert expected in str(err.value)
    assert str(ck) in str(err.value)


def test_cli_corrupt_checkpoint_exits_2_without_traceback(ck: Path, tmp_path: Path) -> None:
    (ck / "model.safetensors").write_bytes(b"\x00" * 10)
    r = _cli(["sample", "--checkpoint", ck, "--prompt", "C major", "--out", tmp_path / "x.mid"])
    assert r.exit_code == 2, r.output
    assert "model.safetensors" in r.output
    assert "Traceback" not in r.output


# ------------------------------------------------------------------ 5: reward-model files


@pytest.mark.parametrize("cls", [PreferenceRewardModel, AdherenceClassifier])
@pytest.mark.parametrize("kind", ["random", "truncated", "json", "empty"])
def test_corrupt_reward_model_files_name_the_file(
    tmp_path: Path, cls: type[PreferenceRewardModel] | type[AdherenceClassifier], kind: str
) -> None:
    good = tmp_path / "good.pt"
    if cls is PreferenceRewardModel:
        PreferenceRewardModel(hidden=4).save(good)
    else:
        clf = AdherenceClassifier()
        clf.meters = ("4/4",)
        from musicrl.rewards.adherence import _AdherenceNet

        clf.net_ = _AdherenceNet(1)
        clf.save(good)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(
        {
            "random": np.random.default_rng(3000).bytes(3000),
            "truncated": good.read_bytes()[:500],
            "json": b'{"type": "melody"}\n',
            "empty": b"",
        }[kind]
    )
    with pytest.raises(ValueError, match="not a readable reward model file") as err:
        cls.load(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert len(msg) < 400  # no paragraph from torch
    assert type(cls.load(good)) is cls  # the round trip still works


def test_reward_models_load_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.pt"
    PreferenceRewardModel(hidden=4).save(path)
    seen: list[object] = []
    real = torch.load

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "load", spy)
    PreferenceRewardModel.load(path)
    assert seen == [True]


# ------------------------------------------------------------------ 6-8: --out


def _out_cases(ck: Path, store: Path, out: Path) -> dict[str, list[object]]:
    return {
        "pretrain": ["pretrain", "--out", out / "ck", "--subset", 2, "--epochs", 1],
        "simulate": ["simulate", "--base", ck, "--out", out / "s.jsonl", "--prompts", 1],
        "sample": ["sample", "--checkpoint", ck, "--prompt", "C major", "--out", out / "x.mid"],
        "train-reward": ["train-reward", "--store", store, "--out", out / "r.pt"],
        "dpo": ["dpo", "--base", ck, "--store", store, "--out", out / "d"],
        "finetune": ["finetune", "--base", ck, "--out", out / "f", "--rewards", "quality"],
    }


@pytest.mark.parametrize(
    "command", ["pretrain", "simulate", "sample", "train-reward", "dpo", "finetune"]
)
def test_out_under_a_file_exits_2_before_any_work(
    ck: Path, tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrl.corpus

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("--out must be checked before any work")

    monkeypatch.setattr(musicrl.corpus, "load_corpus", no_work)
    store = _store(tmp_path)
    before = _files(tmp_path)
    r = _cli(_out_cases(ck, store, store)[command])
    assert r.exit_code == 2, r.output
    assert "--out" in r.output
    assert "is a file, not a folder" in r.output
    assert "Traceback" not in r.output
    assert _files(tmp_path) == before


def test_finetune_out_existing_file_exits_2(ck: Path, tmp_path: Path) -> None:
    store = _store(tmp_path)
    r = _cli(["finetune", "--base", ck, "--out", store, "--rewards", "quality"])
    assert r.exit_code == 2, r.output
    assert "--out" in r.output
    assert "is a file" in r.output


@pytest.mark.parametrize("where", ["base", "base/run", "parent"])
def test_finetune_never_writes_into_its_base(ck: Path, where: str) -> None:
    out = {"base": ck, "base/run": ck / "run", "parent": ck.parent}[where]
    before = {p: p.read_bytes() for p in ck.iterdir()}
    r = _cli(["finetune", "--base", ck, "--out", out, "--rewards", "quality", "--steps", 1])
    assert r.exit_code == 2, r.output
    assert "--out" in r.output
    assert "--base" in r.output
    assert {p: p.read_bytes() for p in ck.iterdir()} == before


def test_finetune_out_that_is_another_checkpoint_or_folder_exits_2(
    ck: Path, tmp_path: Path
) -> None:
    other = _tiny(tmp_path / "other")
    r = _cli(["finetune", "--base", ck, "--out", other, "--rewards", "quality"])
    assert r.exit_code == 2
    assert "checkpoint folder" in r.output
    stuff = tmp_path / "stuff"
    stuff.mkdir()
    (stuff / "notes.txt").write_text("keep")
    r = _cli(["finetune", "--base", ck, "--out", stuff, "--rewards", "quality"])
    assert r.exit_code == 2
    assert "not a finetune run folder" in r.output
    assert _files(stuff) == {"notes.txt"}


@pytest.mark.parametrize("command", ["dpo", "sample", "simulate"])
def test_out_inside_an_input_checkpoint_exits_2(ck: Path, tmp_path: Path, command: str) -> None:
    store = _store(tmp_path)
    before = _files(ck)
    r = _cli(_out_cases(ck, store, ck)[command])
    assert r.exit_code == 2, r.output
    assert "lies inside" in r.output
    assert _files(ck) == before


# ------------------------------------------------------------------ 9-10: settings, NaN


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: FinetuneConfig(lr=math.inf), "lr"),
        (lambda: FinetuneConfig(lr="x"), "lr"),  # type: ignore[arg-type]
        (lambda: FinetuneConfig(grad_clip=math.inf), "grad_clip"),
        (lambda: FinetuneConfig(grad_clip=math.nan), "grad_clip"),
        (lambda: FinetuneConfig(baseline_lr=math.inf), "baseline_lr"),
        (lambda: PretrainConfig(epochs=2.0), "epochs"),  # type: ignore[arg-type]
        (lambda: PretrainConfig(epochs=True), "epochs"),
        (lambda: PretrainConfig(transpose=1.5), "transpose"),  # type: ignore[arg-type]
        (lambda: PretrainConfig(lr=math.nan), "lr"),
        (lambda: PretrainConfig(lr=math.inf), "lr"),
        (lambda: PretrainConfig(weight_decay=math.inf), "weight_decay"),
        (lambda: DPOConfig(beta="0.1"), "beta"),  # type: ignore[arg-type]
        (lambda: DPOConfig(lr=math.inf), "lr"),
        (lambda: DPOConfig(grad_clip=math.inf), "grad_clip"),
    ],
)
def test_config_fields_are_checked_by_name(make: object, field: str) -> None:
    with pytest.raises((TypeError, ValueError)) as err:
        make()  # type: ignore[operator]
    assert f"{field} " in str(err.value) or f".{field}" in str(err.value)
    assert "not supported between" not in str(err.value)


def test_finetune_lr_inf_exits_2_and_writes_nothing(ck: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    r = _cli(["finetune", "--base", ck, "--out", out, "--rewards", "quality", "--lr", "inf"])
    assert r.exit_code == 2, r.output
    assert "lr" in r.output
    assert not out.exists()


def test_save_checkpoint_refuses_nan_weights(tmp_path: Path) -> None:
    tok = Tokenizer()
    cfg = GeneratorConfig(tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=32)
    model = MelodyTransformer(cfg, tok)
    with torch.no_grad():
        model.head.weight[0, 0] = math.nan
    with pytest.raises(TrainingDivergedError, match=r"head\.weight"):
        check_finite_parameters(model, "lower the lr")
    with pytest.raises(TrainingDivergedError, match="training diverged"):
        save_checkpoint(tmp_path / "nan", model, tok, cfg)
    assert list(tmp_path.iterdir()) == []


def test_diverging_finetune_saves_nothing(
    ck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ft_module = importlib.import_module("musicrl.finetune")
    real = ft_module.reinforce_loss
    monkeypatch.setattr(ft_module, "reinforce_loss", lambda lp, a: real(lp, a) * math.nan)
    c = load_checkpoint(ck)
    cfg = FinetuneConfig(
        rewards={"quality": 1.0}, steps=2, batch_size=2, samples_per_prompt=2, max_new_tokens=6
    )
    out = tmp_path / "run"
    rewards = {"quality": QualityReward()}
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate"):
        finetune(c.model, c.tokenizer, [P], rewards, cfg, out, progress=False)
    assert not any(p.name.startswith(("ckpt-", "final")) for p in out.iterdir())


def test_dpo_huge_beta_diverges_with_clear_error_and_saves_nothing(
    ck: Path, tmp_path: Path
) -> None:
    store = _store(tmp_path)
    c = load_checkpoint(ck)
    with pytest.raises(TrainingDivergedError, match="beta"):
        dpo_finetune(c.model, c.tokenizer, read_store(store), DPOConfig(beta=1e308), progress=False)
    out = tmp_path / "d"
    r = _cli(["dpo", "--base", ck, "--store", store, "--out", out, "--beta", "1e308"])
    assert r.exit_code == 1, r.output
    assert "training diverged" in r.output
    assert "--beta" in r.output
    assert "Traceback" not in r.output
    assert not out.exists()


# ------------------------------------------------------------------ 11: all ties, NaN JSON


@pytest.mark.parametrize("ties", ["davidson", "half"])
def test_train_reward_on_all_ties_exits_2_naming_the_store(tmp_path: Path, ties: str) -> None:
    store = _store(tmp_path, ("tie", "tie", "tie"))
    out = tmp_path / "r.pt"
    r = _cli(["train-reward", "--store", store, "--out", out, "--ties", ties])
    assert r.exit_code == 2, r.output
    assert str(store) in r.output
    assert "ties" in r.output
    assert not out.exists()
    p, a, b, c = read_store(store).columns()
    with pytest.raises(ValueError, match="all 3 are ties"):
        PreferenceRewardModel().fit(p, a, b, c)


def test_emit_writes_strict_json(capsys: pytest.CaptureFixture[str]) -> None:
    _emit({"valid_accuracy": math.nan, "x": [math.inf, 1.0], "y": {"z": -math.inf}})
    out = capsys.readouterr().out
    assert json.loads(out) == {"valid_accuracy": None, "x": [None, 1.0], "y": {"z": None}}
    assert "NaN" not in out
    assert "Infinity" not in out


# ------------------------------------------------------------------ 12: seeds


@pytest.mark.parametrize("value", ["-1", "99999999999999999999999"])
@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("sample", "--seed"),
        ("pretrain", "--seed"),
        ("train-reward", "--seed"),
        ("evaluate", "--judge-seed"),
        ("evaluate", "--seed"),
    ],
)
def test_seed_options_are_range_checked_by_name(
    ck: Path, command: str, flag: str, value: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args: list[object] = {
        "sample": ["sample", "--checkpoint", ck, "--prompt", "C major", "--out", out / "x.mid"],
        "pretrain": ["pretrain", "--out", out],
        "train-reward": ["train-reward", "--kind", "adherence", "--out", out / "r.pt"],
        "evaluate": ["evaluate", ck, ck],
    }[command]
    r = _cli([*args, flag, value])
    assert r.exit_code == 2, r.output
    assert f"'{flag}'" in r.output
    assert "0<=x<=4294967295" in r.output
    assert not out.exists()


# ------------------------------------------------------------------ 13-14, 17: the store


def _jsonl_with_melody(tmp_path: Path, melody: object) -> Path:
    path = _store(tmp_path)
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["melody"] = melody
    lines[0] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("melody", "expected"),
    [
        ({"meter": "4/4", "bars": [0], "notes": [[60, 7]]}, "DURATION_TICKS"),
        ({"meter": "4/4", "bars": [0], "notes": [[60]]}, "notes[0] must be a pair"),
        ({"meter": "4/4", "bars": [0], "notes": "abc"}, "notes must be a list"),
        ({"meter": "4/4", "bars": [0], "notes": [["C4", 12]]}, "pitch must be a MIDI number"),
        ({"bars": [0], "notes": [[60, 12]]}, "no key 'meter'"),
        ({"meter": "5/3", "bars": [0], "notes": [[60, 12]]}, "power of two"),
        ({"meter": 3, "bars": [0], "notes": [[60, 12]]}, "meter must be a string"),
        ({"meter": "4/4", "bars": [0], "notes": [[60, "12"]]}, "DURATION_TICKS"),
        ([1, 2], "must be an object"),
    ],
)
def test_malformed_melodies_say_what_is_expected(
    tmp_path: Path, melody: object, expected: str
) -> None:
    path = _jsonl_with_melody(tmp_path, melody)
    with pytest.raises(PreferenceStoreError) as err:
        read_store(path)
    msg = str(err.value)
    assert f"{path}: line 1: field 'melody'" in msg
    assert expected in msg
    assert "unpack" not in msg
    assert "KeyError" not in msg


def test_non_utf8_store_names_file_and_line(tmp_path: Path) -> None:
    path = _store(tmp_path)
    lines = path.read_bytes().splitlines()
    lines[-1] = lines[-1].replace(b"simulated-0", b"simulated-\xff")
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(PreferenceStoreError, match=f"line {len(lines)}: is not UTF-8") as err:
        read_store(path)
    assert str(path) in str(err.value)


def test_sqlite_melody_with_null_or_repeated_id_is_rejected(tmp_path: Path) -> None:
    src = _store(tmp_path)
    db = tmp_path / "s.sqlite"
    write_store(read_store(src), db)
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO melodies (id, melody) VALUES (NULL, ?)",
        (json.dumps({"meter": None, "bars": [0], "notes": [[60, 12]]}),),
    )
    con.commit()
    con.close()
    with pytest.raises(PreferenceStoreError, match=r"melodies row \d+: field 'id' must be"):
        read_store(db)


def test_store_add_checks_like_read_store(tmp_path: Path) -> None:
    a = bar_melody([60, 62], [24, 24], "4/4")
    b = bar_melody([62, 60], [24, 24], "4/4")
    store = PreferenceStore()
    with pytest.raises(ValueError, match="different melodies"):
        store.add(P, a, a, "A", "simulated-0")
    with pytest.raises(ValueError, match="timestamp must be ISO 8601"):
        store.add(P, a, b, "A", "simulated-0", timestamp="yesterday")
    odd = bar_melody([60], [7], "4/4")
    with pytest.raises(ValueError, match="DURATION_TICKS"):
        store.add(P, odd, b, "A", "simulated-0")
    assert len(store) == 0
    assert not store.melodies
    store.add(P, a, b, "tie", "simulated-0", timestamp="2026-01-01T00:00:00+00:00")
    write_store(store, tmp_path / "ok.jsonl")
    assert len(read_store(tmp_path / "ok.jsonl")) == 1


# ------------------------------------------------------------------ 15-16


def test_track_mlflow_without_mlflow_exits_2_and_creates_nothing(
    ck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a)
    )
    out = tmp_path / "ft"
    r = _cli(["finetune", "--base", ck, "--out", out, "--rewards", "quality", "--track", "mlflow"])
    assert r.exit_code == 2, r.output
    assert "musicrl[mlflow]" in r.output
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ImportError, match="mlflow"):
        RunTracker(tmp_path / "t" / "runs.jsonl", "t", backend="mlflow")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("t", [math.inf, math.nan, "1"])
def test_sample_temperature_must_be_finite(ck: Path, t: object) -> None:
    c = load_checkpoint(ck)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sample(c.model, c.tokenizer, [P], temperature=t)  # type: ignore[arg-type]


# ------------------------------------------------------------------ 18: exit 1, Ctrl-C


def test_failed_run_prints_one_line_traceback_only_with_v(
    ck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrl.generator

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sampler crashed")

    monkeypatch.setattr(musicrl.generator, "sample", boom)
    args = ["sample", "--checkpoint", ck, "--prompt", "C major", "--out", tmp_path / "t.mid"]
    r = _cli(args)
    assert r.exit_code == 1
    assert r.stderr.strip() == "Error: RuntimeError: sampler crashed"
    rv = _cli([*args, "-v"])
    assert rv.exit_code == 1
    assert "Traceback" in rv.stderr
    assert "Error: RuntimeError: sampler crashed" in rv.stderr


def test_ctrl_c_exits_130_and_leaves_no_run_folder(
    ck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ft_module = importlib.import_module("musicrl.finetune")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ft_module, "finetune", interrupted)
    out = tmp_path / "ft"
    r = _cli(["finetune", "--base", ck, "--out", out, "--rewards", "quality", "--prompt", "C"])
    assert r.exit_code == 130, r.output
    assert "Aborted" not in r.output
    assert "Traceback" not in r.output
    assert r.stderr.strip().startswith("Interrupted (Ctrl-C)")
    assert not out.exists()

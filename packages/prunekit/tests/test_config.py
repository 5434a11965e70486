"""PruneConfig: validation names the field; TOML round trip; derived sparsity from the pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from prunekit import PruneConfig
from strategies import prune_configs


@settings(max_examples=40, deadline=None)
@given(config=prune_configs())
def test_toml_round_trip(config: PruneConfig) -> None:
    import tomllib

    assert PruneConfig.from_dict(tomllib.loads(config.to_toml())) == config


def test_write_and_read_toml(tmp_path: Path) -> None:
    config = PruneConfig(method="wanda", pattern="4:8", targets=("mlp.*", "re:.*q_proj"), threads=2)
    path = tmp_path / "run.toml"
    config.write_toml(path)
    assert PruneConfig.from_toml(path) == config
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "obs"}, "method must be one of magnitude, sparsegpt, wanda; got 'obs'"),
        ({"sparsity": 1.0}, r"sparsity must be in \[0, 1\); got 1.0"),
        ({"sparsity": -0.1}, "sparsity must be in"),
        ({"pattern": "4:2"}, "1 <= N < M"),
        ({"pattern": "2:2"}, "1 <= N < M"),
        ({"pattern": "dense"}, "pattern must be 'unstructured' or 'N:M'"),
        ({"pattern": "1:4"}, "set sparsity=0.75"),
        ({"group": "column"}, "group must be one of"),
        ({"nsamples": 0}, "nsamples must be >= 1"),
        ({"seqlen": 1}, "seqlen must be >= 2"),
        ({"percdamp": 0.0}, "percdamp must be > 0"),
        ({"pattern": "4:8", "blocksize": 12}, "blocksize must be a multiple of M=8"),
        ({"refine_iters": -1}, "refine_iters must be >= 0; got -1"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"targets": ()}, "targets must name at least one"),
        ({"targets": ("re:(",)}, "invalid regular expression"),
        ({"structure": "layers"}, "structure must be one of"),
        ({"structure": "heads"}, "needs ratio in"),
        ({"ratio": 0.2}, "needs structure"),
        ({"structure": "mlp", "ratio": 1.0}, r"ratio must be in \[0, 1\)"),
        ({"structure": "mlp", "ratio": 0.2, "score": "random"}, "score must be one of"),
        (
            {"structure": "mlp", "ratio": 0.2, "channel_multiple": 0},
            "channel_multiple must be >= 1",
        ),
    ],
)
def test_validation_errors_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PruneConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"nsamples": 2.5}, "nsamples must be an integer"), ({"sparsity": "half"}, "sparsity")],
)
def test_type_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        PruneConfig(**kwargs)


def test_from_dict_fills_sparsity_and_rejects_unknown_keys() -> None:
    assert PruneConfig.from_dict({"pattern": "1:4"}).sparsity == pytest.approx(0.75)
    assert PruneConfig.from_dict({"structure": "mlp", "ratio": 0.2}).sparsity == 0.0
    assert PruneConfig.from_dict({}).sparsity == 0.5
    with pytest.raises(ValueError, match=r"unknown configuration keys \['sparsty'\]"):
        PruneConfig.from_dict({"sparsty": 0.5})


def test_bad_toml_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("method = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        PruneConfig.from_toml(path)

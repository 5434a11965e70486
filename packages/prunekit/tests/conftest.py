"""Shared fixtures: tiny random-init causal LMs built from configs in-process (no downloads).

Three architectures cover the adapter registry's layouts: Llama with grouped-query attention
(``num_key_value_heads < num_attention_heads``), OPT, and GPT-2 (``Conv1D``, transposed
weights). Widths are small multiples of 8 so that 2:4 and 4:8 patterns apply everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

# tests/strategies.py is imported by name from the test modules (pytest runs with
# --import-mode=importlib, which does not put the tests folder on sys.path).
sys.path.insert(0, str(Path(__file__).parent))

VOCAB = 96
SEQLEN = 32


def make_llama(layers: int = 2, hidden: int = 64, vocab: int = VOCAB) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def make_opt(layers: int = 2, hidden: int = 64, vocab: int = VOCAB) -> nn.Module:
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        ffn_dim=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=128,
        word_embed_proj_dim=hidden,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return OPTForCausalLM(config).eval()


def make_gpt2(layers: int = 2, hidden: int = 64, vocab: int = VOCAB) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab,
        n_embd=hidden,
        n_layer=layers,
        n_head=4,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=1,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads; on a shared, loaded machine the OpenMP
    fork/join of every small kernel made the suite 5x slower than one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MAKERS: dict[str, Callable[..., nn.Module]] = {
    "llama": make_llama,
    "opt": make_opt,
    "gpt2": make_gpt2,
}


@pytest.fixture(params=sorted(MAKERS))
def arch(request: pytest.FixtureRequest) -> str:
    """Each architecture name in turn."""
    return str(request.param)


@pytest.fixture
def tiny_model(arch: str) -> nn.Module:
    """A fresh tiny random model of ``arch`` (seeded)."""
    torch.manual_seed(0)
    return MAKERS[arch]()


@pytest.fixture
def calibration() -> torch.Tensor:
    """(8, 32) seeded random token ids."""
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, VOCAB, (8, SEQLEN), generator=generator)


def hidden_states(model: nn.Module, calibration: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``hidden_states[i]`` of one full batched forward: the input of decoder block ``i``."""
    with torch.no_grad():
        return tuple(model(calibration, output_hidden_states=True).hidden_states)


def prunable_modules(block: nn.Module) -> dict[str, nn.Module]:
    """The prunable modules of ``block`` by their names relative to it."""
    from prunekit.adapters import is_prunable

    return {n: m for n, m in block.named_modules() if n and is_prunable(m)}


def record_inputs(
    block: nn.Module,
    inputs: object,
    modules: dict[str, nn.Module],
    source: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every input of each module, ``(tokens, features)``, over all of ``inputs``' samples.

    Plain forward pre-hooks on ``block`` run sample by sample (``inputs.forward``, from
    ``source`` when given): the reference the engine's statistics are checked against.
    """
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    handles = [
        m.register_forward_pre_hook(
            lambda _m, a, n=n: seen[n].append(a[0].reshape(-1, a[0].shape[-1]))
        )
        for n, m in modules.items()
    ]
    try:
        for i in range(inputs.nsamples):  # type: ignore[attr-defined]
            inputs.forward(block, i, source)  # type: ignore[attr-defined]
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v) for n, v in seen.items()}


WORDS = [f"w{i}" for i in range(VOCAB - 3)]


def make_tokenizer() -> object:
    """A word-level fast tokenizer over WORDS (+ [UNK], [BOS], [EOS]): VOCAB ids in all."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[BOS]": 0, "[EOS]": 1, "[UNK]": 2}
    vocab.update({word: i + 3 for i, word in enumerate(WORDS)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]"
    )


def random_text(n_words: int, seed: int) -> str:
    """Seeded text of WORDS in paragraphs of 50 words."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, len(WORDS), (n_words,), generator=generator).tolist()
    paragraphs = [
        " ".join(WORDS[i] for i in ids[start : start + 50]) for start in range(0, n_words, 50)
    ]
    return "\n\n".join(paragraphs) + "\n"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A tiny Llama (GQA) saved with its tokenizer as a standard Hugging Face folder."""
    torch.manual_seed(0)
    model = make_llama()
    folder = tmp_path / "tiny-llama"
    model.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)  # type: ignore[attr-defined]
    return folder


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """A .txt file with ~4000 words (about 4000 tokens for the tiny tokenizer)."""
    path = tmp_path / "calib.txt"
    path.write_text(random_text(4000, seed=3), encoding="utf-8")
    return path

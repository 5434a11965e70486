"""musicrl: symbolic melodies fine-tuned from pairwise preferences (MusicRL for MIDI).

Pretrain a small transformer on the music21 corpus, learn rewards (Bradley-Terry
preferences, prompt adherence, rule-based quality), fine-tune with REINFORCE + KL or DPO,
and judge the result by pairwise win rate against the base. See ``docs/musicrl/``.
"""

from musicrl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from musicrl.corpus import Melody, Note, Piece, Prompt, load_corpus
from musicrl.dpo import DPOConfig, DPOResult, dpo_finetune, dpo_loss
from musicrl.evaluation import (
    SampleStats,
    WinRate,
    distinct_n,
    judge_win_rate,
    pitch_class_entropy,
    sample_stats,
    wilson_interval,
    win_rate,
)
from musicrl.experiment import ExperimentConfig, ExperimentResult, run_experiment
from musicrl.export import write_midi, write_musicxml
from musicrl.finetune import FinetuneConfig, FinetuneResult, finetune
from musicrl.generator import (
    GeneratorConfig,
    MelodyTransformer,
    SampleBatch,
    sample,
    sequence_logprob,
    token_logprobs,
)
from musicrl.preferences import (
    PreferenceRecord,
    PreferenceStore,
    PreferenceStoreError,
    read_store,
    write_store,
)
from musicrl.pretrain import PretrainConfig, PretrainResult, pretrain
from musicrl.raters import HiddenTaste, SimulatedRater, best_achievable_accuracy
from musicrl.rewards import (
    AdherenceClassifier,
    PreferenceRewardModel,
    QualityReward,
    parse_reward_weights,
)
from musicrl.tokenizer import Tokenizer
from musicrl.tracking import RunTracker

__all__ = [
    "AdherenceClassifier",
    "Checkpoint",
    "DPOConfig",
    "DPOResult",
    "ExperimentConfig",
    "ExperimentResult",
    "FinetuneConfig",
    "FinetuneResult",
    "GeneratorConfig",
    "HiddenTaste",
    "Melody",
    "MelodyTransformer",
    "Note",
    "Piece",
    "PreferenceRecord",
    "PreferenceRewardModel",
    "PreferenceStore",
    "PreferenceStoreError",
    "PretrainConfig",
    "PretrainResult",
    "Prompt",
    "QualityReward",
    "RunTracker",
    "SampleBatch",
    "SampleStats",
    "SimulatedRater",
    "Tokenizer",
    "WinRate",
    "__version__",
    "best_achievable_accuracy",
    "distinct_n",
    "dpo_finetune",
    "dpo_loss",
    "finetune",
    "judge_win_rate",
    "load_checkpoint",
    "load_corpus",
    "parse_reward_weights",
    "pitch_class_entropy",
    "pretrain",
    "read_store",
    "run_experiment",
    "sample",
    "sample_stats",
    "save_checkpoint",
    "sequence_logprob",
    "token_logprobs",
    "wilson_interval",
    "win_rate",
    "write_midi",
    "write_musicxml",
    "write_store",
]

__version__ = "0.1.0"

"""TrainingConfig: the frozen, validated description of one LoRA training run."""

from __future__ import annotations

import dataclasses
import json
import re
import string
from dataclasses import dataclass
from typing import Any, Literal

from catalogue.prompts import DEFAULT_CAPTION_TEMPLATE
from training.errors import ConfigError
from training.quantize import QUANTIZE_MODES

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LR_SCHEDULERS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a run needs besides the data and output folders; JSON-safe via to_dict()."""

    family: str = "tiny-sd"
    base_model: str = ""  # local hub-layout folder or hub id; empty = the family's default
    steps: int = 1000
    rank: int = 16
    alpha: float | None = None  # None = rank (scale 1.0)
    learning_rate: float = 1e-4
    batch_size: int = 1
    resolution: int = 0  # 0 = the family's default
    seed: int = 42
    trigger_word: str = ""
    caption_template: str = DEFAULT_CAPTION_TEMPLATE
    caption_dropout: float = 0.05
    checkpoint_every: int = 250  # 0 = no periodic checkpoints (a stop still saves one)
    keep_checkpoints: int = 2
    sample_every: int = 0  # 0 = no samples; otherwise every N steps and at the end
    sample_prompts: tuple[str, ...] = ()
    sample_steps: int = 20
    mixed_precision: Literal["auto", "bf16", "fp32"] = "auto"
    gradient_checkpointing: Literal["auto"] | bool = "auto"
    quantize: Literal["none", "int8", "fp8"] = "none"  # frozen base weights (training/quantize.py)
    compile: bool = False
    optimizer: Literal["adamw"] = "adamw"
    weight_decay: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 = no clipping
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"
    lr_warmup_steps: int = 0
    output_name: str = "lora"  # file stem of the exported LoRA files
    save_precision: Literal["bf16", "fp32"] = "bf16"  # tensors of the downloadable LoRA files
    # LoRA merged into the base for training only (not exported): "" = the family's default,
    # "none" = the bare base, else a local file/folder or hub id (families that have one).
    training_adapter: str = ""

    def __post_init__(self) -> None:
        from training.models import get_family

        _check_type(self)
        spec = get_family(self.family).spec
        if not self.base_model:
            object.__setattr__(self, "base_model", spec.default_base_model)
        if self.alpha is None:
            object.__setattr__(self, "alpha", float(self.rank))
        elif isinstance(self.alpha, int) and not isinstance(self.alpha, bool):
            object.__setattr__(self, "alpha", float(self.alpha))  # JSON stays stable: 8 -> 8.0
        if self.resolution == 0:
            object.__setattr__(self, "resolution", spec.default_resolution)
        _check_ranges(self)
        _check_resolution(self, spec.min_resolution, spec.max_resolution, spec.size_multiple)
        _check_text(self)
        if self.training_adapter not in ("", "none") and not spec.training_adapter:
            raise ConfigError("training_adapter", f"{self.family} has no training adapter")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict of every field (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["sample_prompts"] = list(self.sample_prompts)
        return data

    def to_json(self) -> str:
        """Compact, key-sorted JSON of to_dict()."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Build from a dict of field names; unknown keys raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("config", "expected a JSON object of field names")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(str(key), "unknown configuration field")
        values = dict(data)
        if isinstance(values.get("sample_prompts"), list):
            values["sample_prompts"] = tuple(values["sample_prompts"])
        return cls(**values)

    def replace(self, **changes: Any) -> TrainingConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_INT_FIELDS = (
    "steps",
    "rank",
    "batch_size",
    "resolution",
    "seed",
    "checkpoint_every",
    "keep_checkpoints",
    "sample_every",
    "sample_steps",
    "lr_warmup_steps",
)
_FLOAT_FIELDS = (
    "learning_rate",
    "caption_dropout",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
)
_STR_FIELDS = (
    "family",
    "base_model",
    "trigger_word",
    "caption_template",
    "output_name",
    "training_adapter",
    "save_precision",
)


def _check_type(cfg: TrainingConfig) -> None:
    """Reject wrong JSON types early so range checks can compare numbers."""
    for name in _INT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be an integer, got {value!r}")
    for name in _FLOAT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, f"must be a number, got {value!r}")
    for name in _STR_FIELDS:
        if not isinstance(getattr(cfg, name), str):
            raise ConfigError(name, "must be a string")
    alpha = cfg.alpha
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float)):
        raise ConfigError("alpha", f"must be a number, got {cfg.alpha!r}")
    if not isinstance(cfg.sample_prompts, tuple) or not all(
        isinstance(p, str) for p in cfg.sample_prompts
    ):
        raise ConfigError("sample_prompts", "must be a list of strings")
    if not isinstance(cfg.compile, bool):
        raise ConfigError("compile", "must be true or false")


def _within(cfg: TrainingConfig, name: str, low: float, high: float) -> None:
    value = getattr(cfg, name)
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, got {value:g}")


def _check_ranges(cfg: TrainingConfig) -> None:
    """Numeric bounds; wide enough for real runs, narrow enough to catch typos."""
    _within(cfg, "steps", 1, 100_000)
    _within(cfg, "rank", 1, 256)
    _within(cfg, "alpha", 1e-3, 1024)
    _within(cfg, "batch_size", 1, 64)
    _within(cfg, "seed", 0, 2**32 - 1)
    _within(cfg, "caption_dropout", 0.0, 1.0)
    _within(cfg, "checkpoint_every", 0, 100_000)
    _within(cfg, "keep_checkpoints", 1, 100)
    _within(cfg, "sample_every", 0, 100_000)
    _within(cfg, "sample_steps", 1, 200)
    _within(cfg, "weight_decay", 0.0, 1.0)
    _within(cfg, "adam_beta1", 0.0, 0.9999)
    _within(cfg, "adam_beta2", 0.0, 0.99999)
    _within(cfg, "adam_epsilon", 1e-12, 1e-2)
    _within(cfg, "max_grad_norm", 0.0, 1e4)
    _within(cfg, "lr_warmup_steps", 0, cfg.steps)
    if not 0.0 < cfg.learning_rate <= 1.0:
        raise ConfigError("learning_rate", f"must be > 0 and <= 1, got {cfg.learning_rate:g}")
    if cfg.mixed_precision not in ("auto", "bf16", "fp32"):
        raise ConfigError("mixed_precision", "must be 'auto', 'bf16' or 'fp32'")
    if cfg.save_precision not in ("bf16", "fp32"):
        raise ConfigError("save_precision", "must be 'bf16' or 'fp32'")
    if cfg.quantize not in QUANTIZE_MODES:
        raise ConfigError("quantize", f"must be one of {', '.join(QUANTIZE_MODES)}")
    if cfg.gradient_checkpointing not in ("auto", True, False):
        raise ConfigError("gradient_checkpointing", "must be 'auto', true or false")
    if cfg.optimizer != "adamw":
        raise ConfigError("optimizer", "must be 'adamw'")
    if cfg.lr_scheduler not in _LR_SCHEDULERS:
        raise ConfigError("lr_scheduler", f"must be one of {', '.join(_LR_SCHEDULERS)}")


def _check_resolution(cfg: TrainingConfig, low: int, high: int, multiple: int) -> None:
    if not low <= cfg.resolution <= high:
        raise ConfigError(
            "resolution", f"must be between {low} and {high} for {cfg.family}, got {cfg.resolution}"
        )
    if cfg.resolution % multiple:
        raise ConfigError("resolution", f"must be a multiple of {multiple} for {cfg.family}")


def _check_text(cfg: TrainingConfig) -> None:
    """Template placeholders, prompt lengths and the output file name."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(cfg.caption_template) if f}
    except ValueError as exc:
        raise ConfigError("caption_template", f"malformed template: {exc}") from exc
    if fields - {"trigger"}:
        raise ConfigError("caption_template", "the only placeholder allowed is {trigger}")
    if len(cfg.trigger_word) > 100:
        raise ConfigError("trigger_word", "must be at most 100 characters")
    if len(cfg.sample_prompts) > 16 or any(len(p) > 2000 for p in cfg.sample_prompts):
        raise ConfigError("sample_prompts", "at most 16 prompts of at most 2000 characters")
    if not _NAME_RE.match(cfg.output_name):
        raise ConfigError("output_name", "use 1-64 letters, digits, '.', '_' or '-'")

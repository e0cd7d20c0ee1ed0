"""Wan 2.2 T2V A14B: two 14B experts, ``transformer`` for high noise and ``transformer_2`` for low.

The pipeline (diffusers 0.42.1 ``pipelines/wan/pipeline_wan.py``) runs ``transformer`` while the
timestep is at least ``boundary_ratio * num_train_timesteps`` (0.875 for T2V) and
``transformer_2`` below it. Training follows ostris/ai-toolkit's Wan 2.2 14B recipe
(``extensions_built_in/diffusion_models/wan22/wan22_14b_model.py`` and ``SDTrainer``'s
``switch_boundary_every``): one LoRA per expert in one run, the experts taking turns step by
step, each step's sigma drawn only from the active expert's range, and one LoRA file per expert
(``_high_noise`` / ``_low_noise``), the way ComfyUI users load them (one LoRA loader on each
expert's model). Within its range the sigma keeps the shape of the full shifted logit-normal
distribution, as musubi-tuner's ``--preserve_distribution_shape`` does for single-expert runs.
Only the active expert runs, and the trainer steps only its LoRA (``Family.denoiser_at_step``).

Everything else is Wan 2.1's (``training/models/wan.py``): the Wan 2.1 VAE (8x space, 4x time),
umT5 prompts, rectified flow with the scheduler's ``flow_shift``, all block linears as targets,
and the original checkpoint's names in the ComfyUI files (the same for both experts). In
diffusers the low-noise file loads with ``load_lora_weights(..., load_into_transformer_2=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError, ModelLoadError
from training.models.base import FamilySpec, LatentBatch, LoadedModel
from training.models.flow_matching import sample_sigmas_between
from training.models.wan import WanFamily, save_tiny_wan, tiny_wan21_vae
from training.models.wan22 import local_model_index

if TYPE_CHECKING:
    import torch

SPEC = FamilySpec.from_catalogue(
    "wan22-t2v-a14b",
    pipeline_class="WanPipeline",
    prediction="flow_matching",
    flow_shift=3.0,  # the diffusers T2V A14B scheduler's; the loaded config wins when it has one
    default_guidance_scale=4.0,
)
HIGH_NOISE, LOW_NOISE = "high_noise", "low_noise"
COMPONENTS = {HIGH_NOISE: "transformer", LOW_NOISE: "transformer_2"}
DEFAULT_BOUNDARY = 0.875  # diffusers' T2V A14B boundary_ratio


class Wan22ExpertsFamily(WanFamily):
    """Wan 2.2 T2V A14B LoRA training: a LoRA for each expert, trained in alternation."""

    spec = SPEC
    denoiser_components = tuple(COMPONENTS.values())  # both experts are quantised and staged

    def _check_layout(self, location: str, source: str) -> None:
        """A local folder must hold both experts and their boundary, not one Wan transformer."""
        super()._check_layout(location, source)
        index = local_model_index(location)
        if index is None:
            return
        second = index.get("transformer_2") or [None, None]
        if second[0] is None or not index.get("boundary_ratio"):
            raise ModelLoadError(
                f"{source!r} is not a Wan 2.2 A14B pipeline: its model_index.json has no "
                "transformer_2 and boundary_ratio (the low-noise expert and where it takes over)"
            )

    def denoisers(self, model: LoadedModel) -> dict[str, torch.nn.Module]:
        """The high-noise expert (``transformer``) and the low-noise one (``transformer_2``)."""
        return {name: getattr(model.pipeline, part) for name, part in COMPONENTS.items()}

    def denoiser_at_step(self, step: int) -> str:
        """The experts take turns: even steps train the high-noise one, odd the low-noise one."""
        return HIGH_NOISE if step % 2 == 0 else LOW_NOISE

    def sigma_range(self, model: LoadedModel, expert: str) -> tuple[float, float]:
        """[low, high) of the sigmas (timestep / num_train_timesteps) the expert denoises."""
        boundary = model.pipeline.config.get("boundary_ratio") or DEFAULT_BOUNDARY
        return (boundary, 1.0) if expert == HIGH_NOISE else (0.0, boundary)

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE of ``batch.denoiser``'s expert on sigmas from its own range."""
        if batch.denoiser not in COMPONENTS:
            raise ConfigError("denoiser", f"Wan 2.2 A14B trains {HIGH_NOISE} or {LOW_NOISE}")
        low, high = self.sigma_range(model, batch.denoiser)
        shift = self.flow_shift(model.pipeline.scheduler.config)
        latents = batch.latents
        sigmas = sample_sigmas_between(
            latents.shape[0], shift, low, high, generator, latents.device
        )
        expert = self.denoisers(model)[batch.denoiser]
        return self._flow_loss(model, expert, batch, sigmas, generator)

    def _load_options(self, denoiser: str) -> dict[str, Any]:
        """The low-noise file goes to ``transformer_2``; ``""`` would not say which expert."""
        if denoiser not in COMPONENTS:
            raise ModelLoadError(
                f"a Wan 2.2 A14B LoRA file is for one expert: load it as {HIGH_NOISE} or "
                f"{LOW_NOISE}"
            )
        return {"load_into_transformer_2": True} if denoiser == LOW_NOISE else {}

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random A14B pipeline: toy umT5, Wan 2.1-style VAE, two 2-block experts."""
        return save_tiny_wan(
            out_dir, tiny_wan21_vae, flow_shift=3.0, experts=2, boundary_ratio=DEFAULT_BOUNDARY
        )


FAMILY = Wan22ExpertsFamily()

"""Plumbing shared by the diffusers transformer families trained with rectified flow (FLUX, Wan).

Loading, the denoiser, saving and strictly loading LoRA files, and running the pipeline for
samples are the same for both; what differs (conditioning, latent layout, timestep shift,
kohya key layout, the tiny model) lives in each family's module.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ExportError, ModelLoadError
from training.models.base import Family, LoadedModel, load_frozen_pipeline
from training.models.sd import resolve_source

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

DENOISER = "transformer"  # component name and LoRA key prefix in both pipelines
# The tail that turns a LoRA tensor name into its module name, in PEFT or diffusers spelling.
_LORA_KEY = re.compile(r"\.lora(_A|_B|\.down|\.up)\.(weight|bias)$")


class FlowTransformerFamily(Family):
    """A Family whose denoiser is ``pipeline.transformer`` and whose LoRA prefix is transformer."""

    pipeline_class_name: str
    text_components: tuple[str, ...]  # left out when load(text_encoders=False)
    denoiser_components = (DENOISER,)

    def _pipeline_class(self) -> Any:
        import diffusers

        return getattr(diffusers, self.pipeline_class_name)

    def load(
        self,
        source: str,
        *,
        dtype: torch.dtype,
        device: torch.device,
        text_encoders: bool = True,
        quantize: str = "none",
    ) -> LoadedModel:
        """from_pretrained the family's pipeline; frozen, eval, on device (denoisers staged)."""
        location = resolve_source(self, source)
        self._check_layout(location, source)
        return load_frozen_pipeline(
            self._pipeline_class(),
            location,
            source=source,
            family=self.spec.name,
            dtype=dtype,
            device=device,
            omit=() if text_encoders else self.text_components,
            quantize=quantize,
            denoisers=self.denoiser_components,
            stage=text_encoders,
        )

    def _check_layout(self, location: str, source: str) -> None:
        """A local folder must hold this family's pipeline, not merely some pipeline."""
        index = Path(location) / "model_index.json"
        if not Path(location).is_dir():
            return  # a hub id: from_pretrained reports what it finds
        try:
            class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{source!r} has no readable model_index.json: {exc}") from exc
        if class_name != self.pipeline_class_name:
            raise ModelLoadError(
                f"{source!r} holds a {class_name}, not a {self.pipeline_class_name} "
                f"({self.spec.name})"
            )

    def denoiser(self, model: LoadedModel) -> torch.nn.Module:
        """The diffusion transformer."""
        return model.pipeline.transformer

    def save_lora(
        self,
        model: LoadedModel,
        lora_state_dict: dict[str, torch.Tensor],
        path: Path,
        metadata: dict[str, str],
    ) -> None:
        """save_lora_weights (``transformer.`` prefix, adapter config) plus our header metadata."""
        from diffusers.utils import convert_unet_state_dict_to_peft

        from training.lora_files import add_metadata

        config = getattr(self.denoiser(model), "peft_config", {}).get("default")
        self._pipeline_class().save_lora_weights(
            save_directory=str(path.parent),
            # lora_A/lora_B names, as diffusers' FLUX and Wan LoRA examples write them.
            transformer_lora_layers=convert_unet_state_dict_to_peft(dict(lora_state_dict)),
            weight_name=path.name,
            safe_serialization=True,
            # diffusers restores lora_alpha from this; without it alpha != rank loads wrong.
            transformer_lora_adapter_metadata=config.to_dict() if config is not None else None,
        )
        add_metadata(path, metadata)

    def load_lora(
        self, model: LoadedModel, path: Path, adapter_name: str, denoiser: str = ""
    ) -> None:
        """load_lora_weights from a local safetensors file (diffusers or kohya layout).

        Raises ExportError naming every tensor that found no module: diffusers itself only
        logs unexpected keys and silently drops keys under a foreign prefix.
        """
        location = {"weight_name": path.name, "use_safetensors": True, "local_files_only": True}
        pipeline = model.pipeline
        # The same conversion load_lora_weights applies, read once more to audit the result.
        converted = type(pipeline).lora_state_dict(str(path.parent), **location)
        if isinstance(converted, tuple):
            converted = converted[0]
        options = {**location, **self._load_options(denoiser)}
        pipeline.load_lora_weights(str(path.parent), adapter_name=adapter_name, **options)
        loaded = self.lora_modules(model, adapter_name, denoiser)
        unloaded = [
            key
            for key in converted
            if not key.startswith(f"{DENOISER}.")
            or _LORA_KEY.sub("", key.removeprefix(f"{DENOISER}.")) not in loaded
        ]
        if unloaded:
            raise ExportError(f"{path.name} has LoRA tensors that did not load", unloaded)

    def _load_options(self, denoiser: str) -> dict[str, Any]:
        """Extra load_lora_weights arguments that send a file to ``denoiser`` (none for one)."""
        return {}

    @contextmanager
    def _inference(self, model: LoadedModel) -> Iterator[None]:
        """no_grad and eval for sampling; each denoiser's train/eval mode is restored after."""
        import torch

        modes = {module: module.training for module in self.denoisers(model).values()}
        for module in modes:
            module.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for module, was_training in modes.items():
                module.train(was_training)

    def _generator(self, model: LoadedModel, seed: int) -> torch.Generator:
        import torch

        return torch.Generator(model.device).manual_seed(seed)

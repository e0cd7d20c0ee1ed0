"""Do our LoRA files load in ComfyUI and diffusers? Keys loaded and dropped per file and family.

For every family: train its tiny model two steps with a checkpoint (CPU), then load

* the final ComfyUI file and the checkpoint's ComfyUI file with ComfyUI's own loader:
  ``comfy.lora.model_lora_keys_unet`` builds the key map and ``comfy.lora.load_lora`` reads
  the file (alpha from its tensors); a key counts as loaded when it lands on a model weight of
  the same size, as ComfyUI then patches it;
* the final diffusers file with diffusers' ``load_lora_weights`` into a fresh pipeline.

ComfyUI needs a model object. Instead of a full ComfyUI model (which builds every layer), a
stand-in does: an instance of ComfyUI's own ``comfy.model_base`` class for the family (so the
``isinstance`` branches of ``model_lora_keys_unet`` run), whose ``state_dict()`` is that of
ComfyUI's own network class (``comfy.ldm.flux.model.Flux``, ``comfy.ldm.wan.model.WanModel``,
``comfy.ldm.qwen_image.model.QwenImageTransformer2DModel``) built on the meta device with the
tiny model's sizes, under ``diffusion_model.``; SD's UNet keys come from ComfyUI's
``comfy.utils.unet_to_diffusers`` for a ``unet_config`` read off the tiny UNet's config.
FLUX.2, Z-Image and LTX-2 are newer than the ComfyUI snapshot (a125cd84, Oct 2025) and are
reported as not checkable with it.

ComfyUI is not a dependency of the project: the script checks the snapshot out of the local
mirror into /tmp/comfyui at run time (never committed), takes einops from
``pip install --target /tmp/comfy_deps einops`` and stands in empty modules for ComfyUI's
optional imports this path never calls (torchvision, torchaudio, torchsde, spandrel, kornia).

    python bench/comfyui_interop.py [--families flux-dev,wan21-t2v-1.3b] [--work /tmp/interop]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import logging
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIRROR = Path("/work/.mirror/Comfy-Org+ComfyUI/repo")
COMFY = Path("/tmp/comfyui")
DEPS = Path("/tmp/comfy_deps")
_STUBBED = ("torchvision", "torchaudio", "torchsde", "spandrel", "kornia")
NEWER_THAN_SNAPSHOT = {
    "flux2-dev": "FLUX.2",
    "flux2-klein": "FLUX.2",
    "z-image": "Z-Image (Lumina 2 NextDiT)",
    "ltx2": "LTX-2",
}


class _Stub(types.ModuleType):
    """An empty module whose attributes are empty modules: imported, never used."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Stub(f"{self.__name__}.{name}")
        child.__path__ = []
        setattr(self, name, child)
        return child


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] in _STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: Any) -> None:
        pass


def import_comfy() -> Any:
    """Check the ComfyUI snapshot out into /tmp/comfyui (once) and import comfy.lora."""
    if not (COMFY / "comfy" / "lora.py").is_file():
        COMFY.mkdir(parents=True, exist_ok=True)
        # Large tokenizer blobs may be absent from the mirror; the loader needs none of them.
        subprocess.run(
            ["git", f"--git-dir={MIRROR}", f"--work-tree={COMFY}", "checkout", "HEAD", "--", "."],
            check=False,
            capture_output=True,
        )
    # diffusers and transformers record which optional packages exist when first imported:
    # import them before the stand-in modules appear, so they keep seeing none of them.
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import FluxPipeline, StableDiffusionPipeline, WanPipeline  # noqa: F401

    sys.path[:0] = [str(DEPS), str(COMFY)]
    sys.meta_path.insert(0, _StubFinder())
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.lora
    import comfy.model_base

    return comfy


def stand_in(comfy: Any, family: str, denoiser: Any) -> Any:
    """A comfy.model_base instance of the family's class whose state_dict is ComfyUI's keys."""
    import torch

    base, state, unet_config = _native_state(comfy, family, denoiser)
    model = object.__new__(base)
    torch.nn.Module.__init__(model)
    model.model_config = types.SimpleNamespace(unet_config=unet_config)
    model.state_dict = lambda *a, **k: state  # type: ignore[method-assign]
    return model


def _native_state(comfy: Any, family: str, denoiser: Any) -> tuple[type, dict[str, Any], dict]:
    """(model_base class, ComfyUI's state dict with diffusion_model. keys, unet_config)."""
    import torch
    from comfy import model_base, ops

    config = denoiser.config
    if family in ("tiny-sd", "sd15", "sdxl"):
        unet_config = _sd_unet_config(config)
        weights = denoiser.state_dict()
        native = comfy.utils.unet_to_diffusers(unet_config)
        state = {f"diffusion_model.{v}": weights[k] for k, v in native.items() if k in weights}
        return (model_base.SDXL if family == "sdxl" else model_base.BaseModel), state, unet_config
    with torch.device("meta"):
        if family == "flux-dev":
            from comfy.ldm.flux.model import Flux

            params = {
                "in_channels": config.in_channels // 4,
                "out_channels": (config.out_channels or config.in_channels) // 4,
                "vec_in_dim": config.pooled_projection_dim,
                "context_in_dim": config.joint_attention_dim,
                "hidden_size": config.num_attention_heads * config.attention_head_dim,
                "mlp_ratio": 4.0,
                "num_heads": config.num_attention_heads,
                "depth": config.num_layers,
                "depth_single_blocks": config.num_single_layers,
                "axes_dim": list(config.axes_dims_rope),
                "theta": 10000,
                "patch_size": 2,
                "qkv_bias": True,
                "guidance_embed": config.guidance_embeds,
            }
            net, base = Flux(operations=ops.disable_weight_init, **params), model_base.Flux
        elif family.startswith("wan"):
            from comfy.ldm.wan.model import WanModel

            params = {
                "patch_size": tuple(config.patch_size),
                "in_dim": config.in_channels,
                "dim": config.num_attention_heads * config.attention_head_dim,
                "ffn_dim": config.ffn_dim,
                "freq_dim": config.freq_dim,
                "text_dim": config.text_dim,
                "out_dim": config.out_channels,
                "num_heads": config.num_attention_heads,
                "num_layers": config.num_layers,
            }
            net = WanModel(operations=ops.disable_weight_init, **params)
            base = model_base.WAN22 if family == "wan22-ti2v-5b" else model_base.WAN21
        elif family == "qwen-image":
            from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel

            params = {
                name: getattr(config, name)
                for name in (
                    "patch_size", "in_channels", "out_channels", "num_layers",
                    "attention_head_dim", "num_attention_heads", "joint_attention_dim",
                    "guidance_embeds", "axes_dims_rope",
                )
            }  # fmt: skip
            net = QwenImageTransformer2DModel(operations=ops.disable_weight_init, **params)
            base = model_base.QwenImage
        else:
            raise KeyError(family)
    state = {f"diffusion_model.{k}": v for k, v in net.state_dict().items()}
    return base, state, params


def _sd_unet_config(config: Any) -> dict[str, Any]:
    """ComfyUI's unet_config fields unet_to_diffusers reads, from a diffusers UNet config."""
    levels = len(config.block_out_channels)
    per_level = config.transformer_layers_per_block
    if isinstance(per_level, int):
        per_level = [per_level] * levels
    depth = [
        per_level[i] if "CrossAttn" in kind else 0 for i, kind in enumerate(config.down_block_types)
    ]
    blocks = config.layers_per_block
    return {
        "num_res_blocks": [blocks] * levels,
        "channel_mult": [c // config.block_out_channels[0] for c in config.block_out_channels],
        "transformer_depth": [d for d in depth for _ in range(blocks)],
        "transformer_depth_output": [d for d in depth for _ in range(blocks + 1)],
        "transformer_depth_middle": per_level[-1],
    }


def comfy_counts(comfy: Any, model: Any, path: Path) -> tuple[int, int, list[str], set[float]]:
    """(keys loaded, keys dropped, a few dropped, the scales ComfyUI applies) for one file.

    The scale of a module is alpha / rank from its ``.alpha`` tensor, 1.0 without one (as
    ``comfy/weight_adapter/lora.py`` applies it).
    """
    from safetensors.torch import load_file

    lora = load_file(str(path))
    key_map = comfy.lora.model_lora_keys_unet(model, {})
    dropped: list[str] = []

    class Missing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("lora key not loaded: "):
                dropped.append(message.removeprefix("lora key not loaded: "))

    handler = Missing()
    logging.getLogger().addHandler(handler)
    try:
        patches = comfy.lora.load_lora(lora, key_map)
    finally:
        logging.getLogger().removeHandler(handler)
    weights, scales = model.state_dict(), set()
    for target, adapter in patches.items():
        name = target[0] if isinstance(target, tuple) else target
        down, up, alpha = adapter.weights[1], adapter.weights[0], adapter.weights[2]
        scales.add(round(alpha / down.shape[0], 4) if alpha is not None else 1.0)
        rows = target[1][2] if isinstance(target, tuple) else weights[name].shape[0]
        if (up.shape[0], down.flatten(1).shape[1]) != (rows, weights[name].flatten(1).shape[1]):
            dropped += sorted(adapter.loaded_keys)  # would not fit the weight it names
    return len(lora) - len(dropped), len(dropped), dropped[:2], scales


def diffusers_counts(family: Any, config: Any, path: Path, denoiser: str) -> tuple[int, int]:
    """(tensors loaded, tensors dropped) of a diffusers file, via diffusers' load_lora_weights."""
    import torch
    from safetensors import safe_open

    fresh = family.load(
        config.base_model, dtype=torch.float32, device=torch.device("cpu"), text_encoders=False
    )
    with safe_open(str(path), framework="pt") as handle:
        total = len(list(handle.keys()))
    try:
        family.load_lora(fresh, path, "check", denoiser)
    except Exception as exc:  # the family's loader names what did not load; count what did
        print(f"    diffusers: {exc}"[:200])
    loaded = 2 * len(family.lora_modules(fresh, "check", denoiser))
    return loaded, total - loaded


def train_tiny(name: str, work: Path) -> tuple[Any, Any]:
    """Two steps with a checkpoint on the family's tiny model; (config, TrainResult)."""
    from PIL import Image

    from training import TrainingConfig, get_family, make_tiny, train
    from training.video import write_mp4

    family = get_family(name)
    model_dir = work / "models" / name
    if not (model_dir / "model_index.json").is_file():
        make_tiny(name, model_dir)
    data = work / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    side = max(family.spec.min_resolution, 64)
    for index, color in enumerate(((200, 40, 40), (40, 160, 220))):
        Image.new("RGB", (side, side), color).save(data / f"still{index}.png")
    if family.spec.is_video:
        frames = [Image.new("RGB", (side, side), (20 * i, 90, 200)) for i in range(9)]
        write_mp4(frames, data / "clip.mp4", fps=family.spec.fps or 16)
    config = TrainingConfig(
        family=name, base_model=str(model_dir), steps=2, rank=4, alpha=8.0, resolution=side,
        checkpoint_every=2, learning_rate=1e-2, caption_dropout=0.0, mixed_precision="fp32",
        trigger_word="sks", output_name=name,
    )  # fmt: skip
    return config, train(config, data, work / "out" / name)


def check_family(comfy: Any, name: str, work: Path) -> list[tuple[str, str, str]]:
    """Rows (file, loader, 'loaded / dropped') for one family."""
    from training import get_family
    from training.checkpoints import checkpoint_downloads

    config, result = train_tiny(name, work)
    family = get_family(name)
    checkpoint = checkpoint_downloads(Path(result.checkpoints[-1]))
    rows = []
    for kind, path in sorted(result.lora_files.items()):
        denoiser = kind.partition("_")[2]
        if kind.startswith("lora"):
            loaded, dropped = diffusers_counts(family, config, Path(path), denoiser)
            rows.append((f"final {kind}", "diffusers", f"{loaded} / {dropped}"))
            continue
        # The checkpoint's diffusers file too: before checkpoints had a ComfyUI file, it was
        # the only checkpoint download.
        diffusers_twin = checkpoint[kind.replace("comfyui", "lora", 1)]
        files = (("final", Path(path)), ("checkpoint", checkpoint[kind]))
        for label, file in (*files, ("checkpoint diffusers file", diffusers_twin)):
            if name in NEWER_THAN_SNAPSHOT:
                rows.append((f"{label} {kind}", "ComfyUI", "not checkable with a125cd84"))
                continue
            fresh = family.load(
                config.base_model, dtype=_float(), device=_cpu(), text_encoders=False
            )
            model = stand_in(comfy, name, family.denoisers(fresh)[denoiser])
            loaded, dropped, examples, scales = comfy_counts(comfy, model, file)
            shown = f" e.g. {', '.join(examples)}" if examples else ""
            scale = f", alpha/rank applied {sorted(scales)}" if scales else ""
            rows.append((f"{label} {kind}", "ComfyUI", f"{loaded} / {dropped}{scale}{shown}"))
    return rows


def _float() -> Any:
    import torch

    return torch.float32


def _cpu() -> Any:
    import torch

    return torch.device("cpu")


def main() -> None:
    """Print one table row per file and loader: keys loaded / dropped."""
    from catalogue.families import FAMILY_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILY_NAMES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/attune-interop"))
    args = parser.parse_args()
    comfy = import_comfy()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    logging.getLogger().setLevel(logging.WARNING)
    print("| family | file | loader | keys loaded / dropped (trained alpha/rank: 2.0) |")
    print("|---|---|---|---|")
    for name in args.families.split(","):
        for file, loader, counts in check_family(comfy, name, args.work):
            print(f"| {name} | {file} | {loader} | {counts} |", flush=True)


if __name__ == "__main__":
    main()

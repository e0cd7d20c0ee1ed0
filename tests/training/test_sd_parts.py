"""SD family internals and data prep: prediction targets, captions, EXIF-upright pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.training_data import write_image
from training import get_family
from training.data.captions import caption_for
from training.data.dataset import PreparedItem
from training.data.media import load_pixels
from training.models.base import LatentBatch


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_sd_loss_uses_the_scheduler_prediction_type(
    tiny_model: Callable[[str], Path], prediction: str
) -> None:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    family = get_family("tiny-sd")
    model = family.load(str(tiny_model("tiny-sd")), dtype=torch.float32, device=torch.device("cpu"))
    scheduler = DDPMScheduler.from_config(
        model.pipeline.scheduler.config, prediction_type=prediction
    )
    model.extras["noise_scheduler"] = scheduler
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    embeds = family.encode_prompts(model, ["photo of sks", ""])
    batch = LatentBatch(latents, embeds, ((64, 64),) * 2, ((0, 0),) * 2)
    loss = family.training_loss(model, batch, torch.Generator().manual_seed(3))

    generator = torch.Generator().manual_seed(3)  # replay the same draws by hand
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (2,), generator=generator)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    target = scheduler.get_velocity(latents, noise, timesteps) if prediction != "epsilon" else noise
    with torch.no_grad():
        prediction_out = model.pipeline.unet(noisy, timesteps, embeds["prompt_embeds"]).sample
    torch.testing.assert_close(loss, F.mse_loss(prediction_out, target))


def test_captions_come_from_sidecar_files_or_the_template(tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", 8, 8)
    other = write_image(tmp_path / "b.png", 8, 8)
    (tmp_path / "a.txt").write_text("  a [trigger] dog\n on grass ", encoding="utf-8")
    assert caption_for(image, "photo of {trigger}", "sks") == "a sks dog on grass"
    assert caption_for(other, "photo of {trigger}", "sks") == "photo of sks"


def test_a_caption_without_the_trigger_word_trains_with_it_in_front(tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", 8, 8)
    (tmp_path / "a.txt").write_text("photo of sks red", encoding="utf-8")
    assert caption_for(image, "photo of {trigger}", "ohwx") == "ohwx, photo of sks red"
    (tmp_path / "a.txt").write_text("an OHWX portrait", encoding="utf-8")
    assert caption_for(image, "photo of {trigger}", "ohwx") == "an OHWX portrait"  # has it


def test_no_trigger_word_leaves_no_dangling_of(tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", 8, 8)
    assert caption_for(image, "photo of {trigger}", "") == "photo"
    assert caption_for(image, "a photo of {trigger}, studio light", "") == "a photo, studio light"
    (tmp_path / "a.txt").write_text("a painting of [trigger]", encoding="utf-8")
    assert caption_for(image, "photo of {trigger}", "") == "a painting"


def test_pixels_are_upright_rgb_in_the_planned_bucket(tmp_path: Path) -> None:
    from PIL import Image

    from training import plan_buckets

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    path = write_image(tmp_path / "r.jpg", 96, 64, exif=exif.tobytes())
    plan = plan_buckets([path], "tiny-sd", 64)[0]
    item = PreparedItem(path=path, name="r.jpg", plan=plan, caption="")
    pixels = load_pixels(item, get_family("tiny-sd").spec)
    assert pixels.shape == (3, plan.bucket_height, plan.bucket_width)
    assert plan.bucket_height > plan.bucket_width
    assert float(pixels.min()) >= -1.0 and float(pixels.max()) <= 1.0

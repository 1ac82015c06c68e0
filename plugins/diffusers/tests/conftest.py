"""Tiny random diffusers models, built with diffusers' and transformers' own classes and saved
with ``save_pretrained`` (nothing is downloaded): a pixel UNet2DModel pipeline and a
Stable-Diffusion-shaped one (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

WORDS = "a an the red blue green yellow circle square triangle big small on of at top left right".split()


def tiny_pixel_pipeline(scheduler_config=None, seed=0):
    import torch
    from diffusers import DDIMScheduler, DDPMPipeline, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(16, 32),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=8)
    return DDPMPipeline(unet=unet, scheduler=DDIMScheduler(clip_sample=False, **(scheduler_config or {})))


def tiny_sd_pipeline(folder, scheduler_config=None, seed=0):
    """A Stable-Diffusion-shaped pipeline of about 0.3 M parameters, 32x32 pixels, 8x8x4 latents."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16), latent_channels=4,
                        norm_num_groups=8, sample_size=32)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for w in WORDS + list("abcdefghijklmnopqrstuvwxyz"):
        vocab.setdefault(f"{w}</w>", len(vocab))
        vocab.setdefault(w, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                                        num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=16,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              **(scheduler_config or {}))
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tokenizer, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@pytest.fixture(scope="session")
def pixel_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pixel") / "model"
    tiny_pixel_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sd_folder(tmp_path_factory):
    work = tmp_path_factory.mktemp("sd")
    folder = work / "model"
    tiny_sd_pipeline(work).save_pretrained(folder)
    return folder

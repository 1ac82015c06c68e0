"""polydiff's samplers on a loaded diffusers folder against diffusers' own pipelines, from the
same initial noise and on the same timesteps: DDIM (eta 0), Euler and DPM-Solver++(2M), on a
pixel UNet2DModel and on a Stable-Diffusion-shaped latent model with classifier-free guidance."""
from __future__ import annotations

import numpy as np
import polydiff
import pytest
import torch

STEPS = 10
# largest |polydiff - diffusers| allowed, relative to the largest |value| (float32 arithmetic:
# untrained tiny UNets put their outputs far outside [-1, 1], so an absolute bound says little)
TOL = 1e-5


def relative_error(ours, theirs) -> float:
    theirs = torch.as_tensor(theirs)
    return float((ours - theirs).abs().max() / theirs.abs().max())


def loaded(folder):
    return polydiff.components().backends["diffusers"].load("cpu", model=str(folder))


def times_of(scheduler, n_train):
    """diffusers' timesteps k as polydiff times (k + 1) / N, ending at 0."""
    return [(float(k) + 1) / n_train for k in scheduler.timesteps] + [0.0]


def start_noise(model, times, n, seed, shape):
    grid = polydiff.build_grid(model.schedule, times, len(times) - 1)
    return polydiff.SeededNoise.for_batch(seed, n).randn(shape) * grid.sigma[0]


def polydiff_run(model, sampler, times, n, seed, prompt=None, guidance=1.0):
    denoiser = polydiff.as_denoiser(model.net, model.schedule, model.prediction)
    if prompt is not None:
        cond, uncond = model.space.condition([prompt] * n)
        denoiser = polydiff.guided(denoiser, cond, uncond, guidance)
    return polydiff.sample(denoiser, (n, *model.space.shape), sampler=sampler, spacing=times, steps=len(times) - 1,
                           seed=seed, schedule=model.schedule)


def diffusers_scheduler(name, config):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "euler":
        return EulerDiscreteScheduler.from_config(config, timestep_spacing="leading")
    return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)


SAMPLERS = {"ddim": "ddim", "euler": "euler", "dpmpp_2m": "dpmpp_2m"}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_pixel_model_matches_diffusers(pixel_folder, sampler, monkeypatch):
    from diffusers import DDPMPipeline

    model = loaded(pixel_folder)
    pipe = DDPMPipeline.from_pretrained(pixel_folder)
    pipe.scheduler = diffusers_scheduler(sampler, pipe.scheduler.config)
    pipe.scheduler.set_timesteps(STEPS)
    times = times_of(pipe.scheduler, pipe.scheduler.config.num_train_timesteps)
    ours = polydiff_run(model, sampler, times, 2, seed=5)
    x = start_noise(model, times, 2, 5, model.space.shape)
    with torch.inference_mode():  # DDPMPipeline's own loop, from the same state
        x = x * pipe.scheduler.init_noise_sigma   # Euler keeps x / alpha: its init_noise_sigma is 1 / alpha
        for k in pipe.scheduler.timesteps:
            out = pipe.unet(pipe.scheduler.scale_model_input(x, k), k).sample
            x = pipe.scheduler.step(out, k, x).prev_sample
    assert relative_error(ours, x) < TOL


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_latent_model_with_guidance_matches_stable_diffusion_pipeline(sd_folder, sampler):
    from diffusers import StableDiffusionPipeline

    model = loaded(sd_folder)
    pipe = StableDiffusionPipeline.from_pretrained(sd_folder, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = diffusers_scheduler(sampler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler.set_timesteps(STEPS)
    times = times_of(pipe.scheduler, pipe.scheduler.config.num_train_timesteps)
    ours = polydiff_run(model, sampler, times, 2, seed=11, prompt="a red circle", guidance=3.0)
    start = start_noise(model, times, 2, 11, model.space.shape)
    theirs = pipe("a red circle", num_inference_steps=STEPS, guidance_scale=3.0, height=32, width=32,
                  num_images_per_prompt=2, latents=start,
                  output_type="latent").images
    assert relative_error(ours, theirs) < TOL
    pixels = model.space.decode(ours)   # and the decoded images agree as diffusers decodes them
    with torch.inference_mode():
        decoded = pipe.vae.decode(theirs / pipe.vae.config.scaling_factor).sample
    theirs_np = pipe.image_processor.postprocess(decoded, output_type="np")
    assert np.abs(pixels.permute(0, 2, 3, 1).numpy() - theirs_np).max() < 1e-5

"""Training a denoiser: MSE to the eps/v/x0/flow target, AdamW, EMA, gradient clipping,
condition dropout for guidance, atomic safetensors checkpoints, exact resume, and DDP; or,
with ``objective="ddgan"`` and a discriminator, a few-step generator trained adversarially
(``polydiff.adversarial``; ``objective="diffusion-gan"``: a one-step generator judged through
instance noise of adaptive level), or with ``objective="distill"``, a few-step student regressed on a
teacher's recorded paths (``polydiff.distillation``), with the same EMA, checkpoints, resume and
DDP.

Every random draw of step k is a pure function of (seed, rank, k): each step reseeds the
trainer's generators and, inside ``fit``, torch's global generator (for dropout layers in the
model). So a run resumed from ``out/train_state`` draws exactly what an uninterrupted run would,
without saving any RNG state, and each rank of a torchrun job draws different data.

The initial weights are the recipe's business (the model is built before the trainer sees it):
a recipe builds its model inside ``seeded_init(config.seed)``, so the same seed gives the same
starting point and the same command the same checkpoint, bit for bit, on one machine and thread
count. A run saves every ``checkpoint_every`` steps, every ``checkpoint_minutes`` minutes and on
SIGINT/SIGTERM (then stops with ``TrainingInterrupted``); a resume refuses a folder whose run
used another batch size, seed, backend, world size, prediction, schedule or model.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .checkpoint import load_checkpoint, save_checkpoint
from .denoisers import _bcast, _cat, target_for
from .errors import InvalidInputError, NonFiniteError, PolydiffError, UnknownNameError
from .loop import resolve
from .masked import mask_tokens, masked_loss
from .request import describe

MODEL = "model"  # the EMA weights + config: what generation loads
STATE = "train_state"  # raw weights, EMA, optimizer and step: what resuming loads
# a resume must continue the same run: these fields of the saved TrainConfig must match
SAME_RUN = ("prediction", "schedule", "batch_size", "seed", "backend", "objective", "few_steps")


class TrainingInterrupted(PolydiffError):
    """SIGINT or SIGTERM stopped a run after saving its state (the CLI: one line, exit 1)."""


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build a model inside this block: its initial weights (and anything else drawn from torch's
    global generator there) become a function of the run's ``seed``; the caller's RNG state is
    restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_stream_seed(seed, "init"))
        yield


def check_out_folder(out) -> Path:
    """Create ``out`` and prove a file can be written there, before any training step: one line
    naming the folder otherwise (a file in the way, no permission, a read-only or virtual file
    system)."""
    if not str(out).strip():  # "" would silently mean the working directory (or a recipe's default)
        raise InvalidInputError("out: name a checkpoint folder (not empty)")
    out = Path(out)
    probe = out / f".write-test.{uuid.uuid4().hex[:12]}.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidInputError(f"out: cannot write checkpoints to {out}: {exc.strerror or exc}") from None
    return out


class TrainConfig(BaseModel):
    """Everything that decides a training run; stored in every checkpoint it writes."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, gt=0, le=100_000_000, description="optimizer steps in total, resumed ones included")
    batch_size: int = Field(64, gt=0, le=65_536, description="samples per step and per process")
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: decay from lr to lr_final over the run (after any warm-up)")
    lr_final: float = Field(0.0, ge=0, description="the cosine schedule's last learning rate")
    warmup: int = Field(0, ge=0, description="steps of linear learning-rate warm-up from lr/warmup")
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = Field(0.999, ge=0, le=1, description="warmed up as min(decay, (1+k)/(10+k))")
    grad_clip: float | None = Field(1.0, gt=0, description="max global gradient norm; None: off")
    cond_dropout: float = Field(0.1, ge=0, le=1, description="per-sample chance of the null condition")
    prediction: Literal["eps", "v", "x0", "flow", "logits"] = "eps"
    schedule: str = "vp-linear"
    mask_id: int | None = Field(None, ge=0, description="the mask token (masked schedules: logits over tokens)")
    t_min: float | None = Field(None, ge=0, le=1, description="smallest training time; None: schedule's")
    t_max: float | None = Field(None, ge=0, le=1, description="largest training time; None: schedule's")
    t_sampling: Literal["uniform", "stratified"] = Field(
        "uniform", description="stratified: the batch's times one per equal slice of [t_min, t_max] from one "
                               "shared offset (MDLM's low-discrepancy sampler: a lower-variance loss)")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds initial weights (seeded_init), data, noise, dropout")
    backend: str | None = Field(None, description="the backend trained; recorded so a resume with another is refused")
    log_every: int = Field(50, gt=0)
    checkpoint_every: int | None = Field(1000, gt=0, description="None: only at the end")
    checkpoint_minutes: float | None = Field(
        10.0, gt=0, le=10_080, allow_inf_nan=False, description="also save this often (wall clock); None: off")
    out: Path = Path("checkpoints")
    progress: bool = True
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    autocast: Literal["bf16", "fp16"] | None = Field(
        None, description="mixed-precision forward pass (bf16 speeds up CPUs with AVX512-BF16)")
    objective: Literal["denoise", "ddgan", "diffusion-gan", "distill"] = Field(
        "denoise", description="ddgan: a few-step generator against a discriminator (polydiff.adversarial); "
                               "diffusion-gan: a one-step generator, judged on real and fake inputs noised "
                               "by the forward process up to an adaptive level; "
                               "distill: a few-step student of a teacher's paths (polydiff.distillation)")
    few_steps: int = Field(4, ge=1, le=64, description="ddgan, distill: the steps it is trained for (ddgan 1: a GAN)")
    teacher_guidance: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="distill: the guidance the teacher's paths were solved with (recorded; the student runs without)")
    gan_loss: Literal["non-saturating", "hinge"] = "non-saturating"
    r1: float = Field(0.0, ge=0, allow_inf_nan=False, description="ddgan: weight of the R1 penalty on real inputs")
    d_lr: float | None = Field(None, gt=0, description="ddgan: the discriminator's learning rate; None: lr")
    dgan_target: float = Field(0.6, gt=-1, lt=1, description="diffusion-gan: the mean sign of the discriminator's "
                                                              "logits on real inputs that the noise level holds")
    dgan_levels: tuple[float, float] = Field((0.05, 0.6), description="diffusion-gan: the range of the noise level "
                                                                       "(the largest t of the instance noise)")
    dgan_step: float = Field(0.002, gt=0, le=1, description="diffusion-gan: how far the level moves per step")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v):
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"both betas must lie in [0, 1), got {v}")
        return v

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, v):
        try:
            resolve("schedules", v)
        except UnknownNameError as exc:  # a KeyError: pydantic only reports ValueErrors
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _fits_the_process(self):
        masked = getattr(resolve("schedules", self.schedule), "process", "gaussian") == "masked"
        if masked != (self.prediction == "logits"):
            raise ValueError(f"prediction: a {'masked' if masked else 'Gaussian'} schedule ({self.schedule!r}) "
                             f"trains {'logits' if masked else 'eps, v, x0 or flow'}, not {self.prediction!r}")
        if masked and self.mask_id is None:
            raise ValueError(f"mask_id: the masked schedule {self.schedule!r} needs the mask token's id")
        return self

    @model_validator(mode="after")
    def _adversarial_fits(self):
        if self.objective in ("ddgan", "diffusion-gan"):
            if getattr(resolve("schedules", self.schedule), "process", "gaussian") != "gaussian":
                raise ValueError(f"objective: {self.objective} needs a Gaussian schedule, not {self.schedule!r}")
            if self.prediction != "x0":
                raise ValueError(f"prediction: a {self.objective} generator predicts x0, not {self.prediction!r}")
            lo, hi = self.dgan_levels
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"dgan_levels: two times 0 <= low <= high <= 1, got {self.dgan_levels}")
        if self.objective == "distill":
            if self.prediction not in ("eps", "v", "x0", "flow"):
                raise ValueError(f"prediction: a distilled student predicts eps, v, x0 or flow, not {self.prediction!r}")
            if self.cond_dropout > 0:
                raise ValueError("cond_dropout: a distilled student learns the (guided) teacher's paths for "
                                 "each condition; set it to 0")
        return self

    @model_validator(mode="after")
    def _lr_final_below_lr(self):
        if self.lr_schedule == "cosine" and self.lr_final > self.lr:
            raise ValueError(f"lr_final ({self.lr_final}) must not exceed lr ({self.lr})")
        return self

    @model_validator(mode="after")
    def _time_range_ordered(self):
        lo, hi = self.time_range()
        if not lo < hi:
            raise ValueError(f"t_min ({lo}) must be smaller than t_max ({hi}) for schedule {self.schedule!r}")
        return self

    @classmethod
    def build(cls, **fields) -> "TrainConfig":
        """Validate, turning pydantic's report into one ``InvalidInputError`` line naming each
        field (``steps: Input should be greater than 0``): what a recipe or the CLI calls, so a
        bad value is reported before any model, data or checkpoint folder exists."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InvalidInputError(describe(exc, fields=cls.model_fields)) from None

    def time_range(self) -> tuple[float, float]:
        """The training times (t_min, t_max), filled in from the schedule where not given."""
        schedule = resolve("schedules", self.schedule)
        lo = schedule.t_min if self.t_min is None else self.t_min
        hi = schedule.t_max if self.t_max is None else self.t_max
        return float(lo), float(hi)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based): a pure function of the step, so a
    resumed run follows the same curve. Cosine decays over the whole run, warm-up included."""
    c = config
    lr = c.lr
    if c.lr_schedule == "cosine":
        lr = c.lr_final + (c.lr - c.lr_final) * 0.5 * (1 + math.cos(math.pi * min(step / c.steps, 1.0)))
    if c.warmup:
        lr *= min(1.0, (step + 1) / c.warmup)
    return lr


def _training_times(n: int, sampling: str, g: torch.Generator, device) -> torch.Tensor:
    """n times in [0, 1): independent uniforms, or stratified (one per slice of width 1/n,
    all shifted by one shared uniform), which keeps every batch's loss spread over all t."""
    if sampling == "stratified":
        return (torch.rand((), generator=g, device=device) + torch.arange(n, device=device) / n) % 1.0
    return torch.rand(n, generator=g, device=device)


class Trainer:
    """Trains ``model(x_t, t, cond)`` to predict ``config.prediction`` under ``config.schedule``.

    ``data(batch_size, generator) -> (x0, cond)`` draws one batch (cond: None, a tensor or a dict
    of tensors); ``null_cond(n)`` gives n rows of the "no condition" input that condition dropout
    swaps in, so the model also learns the unconditional branch that guidance needs.
    ``model_config`` (plain JSON) is stored with the weights so a loader can rebuild the model.

    ``objective="ddgan"``: ``model`` is a generator ``G(x_t, t, cond, z=z) -> x0_hat`` with a
    ``latent_shape`` attribute (its noise input per sample) and ``discriminator`` a network
    ``D(x_s, x_t, t, cond) -> logits [batch]``; both are checkpointed and resumed.

    ``objective="distill"``: ``data`` gives ``(paths, cond)``, a teacher's states at the
    ``few_steps + 1`` trained times (``polydiff.PathData`` over ``polydiff.teacher_paths``), and
    ``model(x_t, t, cond)`` learns the one DDIM step between neighbouring states; start it from
    the teacher's weights.
    """

    def __init__(self, model: torch.nn.Module, config: TrainConfig | dict, data, *, null_cond=None,
                 model_config: dict | None = None, discriminator: torch.nn.Module | None = None):
        if not isinstance(config, TrainConfig):
            config = TrainConfig.model_validate(config)
        self.config = config
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(data) or (null_cond is not None and not callable(null_cond)):
            raise InvalidInputError(
                "data and null_cond must be callables: data(batch_size, generator), null_cond(n)")
        self.model_config = dict(model_config or {})
        try:
            json.dumps(self.model_config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"model_config must be plain JSON: {exc}") from None
        self.data, self.null_cond = data, null_cond
        self.schedule = resolve("schedules", self.config.schedule)
        self.t_range = self.config.time_range()
        self.rank, self.world_size, local_rank = _launch_env()
        self.device = _pick_device(self.config.device, local_rank)
        self.model = model.to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise InvalidInputError("the model has no trainable parameters")
        c = self.config
        self.optimizer = torch.optim.AdamW(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
        self.discriminator = self.d_optimizer = None
        self.d_history: list[tuple[int, float]] = []  # ddgan: the discriminator's mean loss
        self.times = None  # a few-step model's trained times
        if c.objective in ("ddgan", "diffusion-gan"):
            self._init_adversarial(model, discriminator)
        elif discriminator is not None:
            raise InvalidInputError("discriminator: only objective='ddgan' or 'diffusion-gan' trains one")
        if c.objective == "distill":
            from .adversarial import trained_times

            self.times = trained_times(self.schedule, c.few_steps)
        self.ema: dict[str, torch.Tensor] | None = None
        self.step = 0
        self.history: list[tuple[int, float]] = []  # (step, mean loss since the previous entry)
        self._gdata = torch.Generator("cpu")
        self._gnoise = torch.Generator(self.device)

    def _init_adversarial(self, model, discriminator) -> None:
        from .adversarial import trained_times

        if not isinstance(discriminator, torch.nn.Module):
            raise InvalidInputError(f"discriminator: objective={self.config.objective!r} needs a torch.nn.Module "
                                    + ("D(x_t, t, cond) -> logits" if self.config.objective == "diffusion-gan"
                                       else "D(x_s, x_t, t, cond) -> logits"))
        latent = getattr(model, "latent_shape", None)
        if not (isinstance(latent, (tuple, list)) and latent and all(isinstance(d, int) and d > 0 for d in latent)):
            raise InvalidInputError("model: a ddgan generator declares latent_shape, the shape of its "
                                    f"noise input z per sample (a tuple of positive ints), got {latent!r}")
        self.latent_shape = tuple(latent)
        one_step = self.config.objective == "diffusion-gan"
        self.times = trained_times(self.schedule, 1 if one_step else self.config.few_steps)
        # diffusion-gan: the instance noise's level, moved each step (no host sync) and resumed
        self.level = torch.tensor(float(self.config.dgan_levels[0]), device=self.device)
        self.level_history: list[tuple[int, float]] = []
        self.discriminator = discriminator.to(self.device)
        c = self.config
        self.d_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=c.d_lr or c.lr, betas=c.betas,
                                             weight_decay=c.weight_decay)

    # -- the loop ---------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train to ``config.steps``, resuming from ``out/train_state`` if present; return the
        path of the model checkpoint (EMA weights)."""
        cfg = self.config
        created = _init_distributed(self.device, self.world_size)
        bar = None
        try:
            resumed = self._resume()
            net = self._wrap(self.model)  # DDP broadcasts rank 0's weights, so start the EMA after it
            self._d_net = self._wrap(self.discriminator) if self.discriminator is not None else None
            self._d_total = torch.zeros((), device=self.device)
            if not resumed:
                self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            pairs = [(self.ema[k], v) for k, v in self.model.state_dict().items()]
            if self.rank == 0 and cfg.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=cfg.steps, initial=self.step, desc="training", dynamic_ncols=True)
            total, count = torch.zeros((), device=self.device), 0
            if self.rank == 0:
                check_out_folder(cfg.out)  # before step 1, not after the last one
            last_save = time.monotonic()
            # fork_rng: the caller's global RNG state is restored afterwards
            with torch.random.fork_rng(devices=self._cuda_devices()), _StopSignals() as stop:
                while self.step < cfg.steps:
                    total += self._train_step(net)
                    count += 1
                    self.step += 1
                    self._update_ema(pairs)
                    if bar is not None:
                        bar.update()
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        self._log(total / count, bar)
                        if self.discriminator is not None:
                            self.d_history.append((self.step, float(self._d_total / count)))
                            self._d_total.zero_()
                        if cfg.objective == "diffusion-gan":
                            self.level_history.append((self.step, float(self.level)))
                        total, count = torch.zeros((), device=self.device), 0
                    if stop.signum is not None:
                        self._save()
                        raise TrainingInterrupted(
                            f"training stopped by {signal.Signals(stop.signum).name} at step {self.step} of "
                            f"{cfg.steps}; the state is saved in {Path(cfg.out) / STATE}.safetensors: "
                            "run the same command again to resume")
                    every, minutes = cfg.checkpoint_every, cfg.checkpoint_minutes
                    due = bool(every) and self.step % every == 0
                    due = due or (minutes is not None and time.monotonic() - last_save >= 60 * minutes)
                    if due and self.step < cfg.steps:
                        self._save()
                        last_save = time.monotonic()
            path = self._save()
            if self.world_size > 1:  # rank 0 has finished writing when anyone returns
                _barrier(self.device)
        finally:
            if bar is not None:
                bar.close()
            if created:
                torch.distributed.destroy_process_group()
        return path

    def _train_step(self, net) -> torch.Tensor:
        cfg, dev, g = self.config, self.device, self._gnoise
        self._gdata.manual_seed(self._seed("data"))
        g.manual_seed(self._seed("noise"))
        torch.default_generator.manual_seed(self._seed("model"))
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(self._seed("model"))
        batch = self.data(cfg.batch_size, self._gdata)
        x0, cond = batch if isinstance(batch, (tuple, list)) else (batch, None)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.autocast)
        if cfg.objective == "distill":
            return self._distill_step(net, x0, _to_device(cond, dev), dtype)
        masked = cfg.prediction == "logits"
        if not isinstance(x0, torch.Tensor) or x0.is_floating_point() == masked:
            raise InvalidInputError("data(batch_size, generator) must return (x0, cond) with x0 "
                                    + ("integer tokens (a masked schedule)" if masked else "a float tensor"))
        x0, cond = x0.to(dev, non_blocking=True), _to_device(cond, dev)
        n = x0.shape[0]
        lo, hi = self.t_range
        t = lo + (hi - lo) * _training_times(n, cfg.t_sampling, g, dev)
        # Gaussian: eps; masked: one uniform per token, against which alpha(t) keeps it visible
        noise = (torch.rand(x0.shape, generator=g, device=dev) if masked
                 else torch.randn(x0.shape, generator=g, device=dev, dtype=x0.dtype))
        if cond is not None and self.null_cond is not None and cfg.cond_dropout > 0:
            drop = torch.rand(n, generator=g, device=dev) < cfg.cond_dropout
            cond = _replace_rows(drop, _to_device(self.null_cond(n), dev), cond)
        if cfg.objective == "ddgan":
            return self._adversarial_step(net, x0, cond, dtype)
        if cfg.objective == "diffusion-gan":
            return self._diffusion_gan_step(net, x0, cond, dtype)
        loss = (self._masked_loss if masked else self._gaussian_loss)(net, x0, noise, t, cond, dtype)
        self._descend(self.optimizer, self.model, loss)
        return loss.detach()

    def _descend(self, optimizer, model, loss, scale: float = 1.0) -> None:
        """One optimizer step on ``loss`` at the run's learning rate (times ``scale``), clipped."""
        optimizer.zero_grad(set_to_none=True)
        lr = learning_rate(self.config, self.step)
        for group in optimizer.param_groups:
            group["lr"] = lr if scale == 1.0 else lr * scale
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
        optimizer.step()

    def _adversarial_step(self, net, x0, cond, dtype) -> torch.Tensor:
        """DDGAN: a real pair (x_s, x_t) from the forward process and its posterior, a fake one
        through the generator's x0; the discriminator steps on both, then the generator on its
        fakes. Returns the generator's loss (the discriminator's is summed for the log)."""
        from .adversarial import discriminator_loss, generator_loss, posterior, r1_penalty

        cfg, g, dev, sched = self.config, self._gnoise, x0.device, self.schedule
        n = x0.shape[0]

        def randn(shape):
            return torch.randn(shape, generator=g, device=dev, dtype=x0.dtype)

        times = torch.tensor(self.times, device=dev, dtype=x0.dtype)
        k = torch.randint(0, cfg.few_steps, (n,), generator=g, device=dev)
        t, s = times[k], times[k + 1]
        xt = _bcast(sched.alpha(t), x0) * x0 + _bcast(sched.sigma(t), x0) * randn(x0.shape)
        real = posterior(sched, x0, xt, t, s, randn(x0.shape))
        z = randn((n, *self.latent_shape))
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            fake_x0 = net(xt, t, cond, z=z)
        if fake_x0.shape != x0.shape:
            raise InvalidInputError(f"generator returned shape {tuple(fake_x0.shape)} for input {tuple(x0.shape)}")
        fake = posterior(sched, fake_x0.float().to(x0.dtype), xt, t, s, randn(x0.shape))
        d = self._d_net
        pair = torch.cat([real.detach(), fake.detach()]).requires_grad_(cfg.r1 > 0)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):  # one call: DDP's one forward
            logits = d(pair, torch.cat([xt, xt]), torch.cat([t, t]), _cat(cond, cond)).float()
        real_logits, fake_logits = logits[:n], logits[n:]
        d_loss = discriminator_loss(real_logits, fake_logits, cfg.gan_loss)
        if cfg.r1 > 0:
            d_loss = d_loss + cfg.r1 / 2 * r1_penalty(real_logits, pair)  # fakes' rows get no gradient
        self._descend(self.d_optimizer, self.discriminator, d_loss, (cfg.d_lr or cfg.lr) / cfg.lr)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            g_loss = generator_loss(d(fake, xt, t, cond).float(), cfg.gan_loss)
        self._descend(self.optimizer, self.model, g_loss)
        self._d_total += d_loss.detach()
        return g_loss.detach()

    def _diffusion_gan_step(self, net, x0, cond, dtype) -> torch.Tensor:
        """Diffusion-GAN: the generator makes x0 from pure noise and z in one call; real and fake
        samples are both diffused to a random t below the adaptive level and judged there (the
        generator's gradient flows through its diffused fakes); the level then moves to keep
        the discriminator's confidence on real inputs at ``dgan_target``."""
        from .adversarial import adapt_level, discriminator_loss, generator_loss, r1_penalty

        cfg, g, dev, sched = self.config, self._gnoise, x0.device, self.schedule
        n = x0.shape[0]

        def randn(shape):
            return torch.randn(shape, generator=g, device=dev, dtype=x0.dtype)

        top = torch.full((n,), self.times[0], device=dev, dtype=x0.dtype)
        start, z = randn(x0.shape), randn((n, *self.latent_shape))
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            fake = net(start, top, cond, z=z)
        if fake.shape != x0.shape:
            raise InvalidInputError(f"generator returned shape {tuple(fake.shape)} for input {tuple(x0.shape)}")
        fake = fake.float().to(x0.dtype)
        t = self.level.to(x0.dtype) * torch.rand(n, generator=g, device=dev, dtype=x0.dtype)
        alpha, sigma = _bcast(sched.alpha(t), x0), _bcast(sched.sigma(t), x0)
        eps_real, eps_fake = randn(x0.shape), randn(x0.shape)
        real_y, fake_y = alpha * x0 + sigma * eps_real, alpha * fake + sigma * eps_fake
        d = self._d_net
        pair = torch.cat([real_y, fake_y.detach()]).requires_grad_(cfg.r1 > 0)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            logits = d(pair, torch.cat([t, t]), _cat(cond, cond)).float()
        real_logits, fake_logits = logits[:n], logits[n:]
        d_loss = discriminator_loss(real_logits, fake_logits, cfg.gan_loss)
        if cfg.r1 > 0:
            d_loss = d_loss + cfg.r1 / 2 * r1_penalty(real_logits, pair)
        self._descend(self.d_optimizer, self.discriminator, d_loss, (cfg.d_lr or cfg.lr) / cfg.lr)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            g_loss = generator_loss(d(fake_y, t, cond).float(), cfg.gan_loss)
        self._descend(self.optimizer, self.model, g_loss)
        confidence = real_logits.detach().sign().mean()
        if self.world_size > 1:  # every rank moves the level alike
            torch.distributed.all_reduce(confidence)
            confidence = confidence / self.world_size
        self.level = adapt_level(self.level, confidence, cfg.dgan_target, cfg.dgan_step, *cfg.dgan_levels)
        self._d_total += d_loss.detach()
        return g_loss.detach()

    def _distill_step(self, net, paths, cond, dtype) -> torch.Tensor:
        """One step of trajectory distillation: at a random recorded state of each path, the
        student's prediction against the one that makes DDIM land on the path's next state."""
        from .distillation import jump_target

        cfg, g, dev = self.config, self._gnoise, self.device
        steps = cfg.few_steps
        if not (isinstance(paths, torch.Tensor) and paths.is_floating_point() and paths.dim() >= 3
                and paths.shape[1] == steps + 1):
            got = tuple(paths.shape) if isinstance(paths, torch.Tensor) else type(paths).__name__
            raise InvalidInputError(f"data: objective='distill' needs teacher paths [batch, few_steps + 1 = {steps + 1}, "
                                    f"...] of floats (polydiff.distillation.teacher_paths), got {got}")
        paths = paths.to(dev, non_blocking=True)
        n = paths.shape[0]
        rows = torch.arange(n, device=dev)
        k = torch.randint(0, steps, (n,), generator=g, device=dev)
        times = torch.tensor(self.times, device=dev, dtype=paths.dtype)
        t, s = times[k], times[k + 1]
        xt, xs = paths[rows, k], paths[rows, k + 1]
        x0 = jump_target(self.schedule, xt, xs, t, s)
        alpha, sigma = _bcast(self.schedule.alpha(t), xt), _bcast(self.schedule.sigma(t), xt)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            out = net(xt, t, cond)
        target = target_for(cfg.prediction, x0, (xt - alpha * x0) / sigma, alpha, sigma)
        if out.shape != target.shape:
            raise InvalidInputError(f"model returned shape {tuple(out.shape)} for input {tuple(xt.shape)}")
        loss = torch.nn.functional.mse_loss(out.float(), target.float())
        self._descend(self.optimizer, self.model, loss)
        return loss.detach()

    def _gaussian_loss(self, net, x0, eps, t, cond, dtype) -> torch.Tensor:
        alpha, sigma = _bcast(self.schedule.alpha(t), x0), _bcast(self.schedule.sigma(t), x0)
        with torch.autocast(x0.device.type, dtype=dtype, enabled=dtype is not None):
            out = net(alpha * x0 + sigma * eps, t, cond)
        target = target_for(self.config.prediction, x0, eps, alpha, sigma)
        if out.shape != target.shape:
            raise InvalidInputError(
                f"model returned shape {tuple(out.shape)} for input {tuple(x0.shape)}")
        return torch.nn.functional.mse_loss(out.float(), target.float())

    def _masked_loss(self, net, x0, u, t, cond, dtype) -> torch.Tensor:
        """MDLM's bound: mask each token with probability 1 - alpha(t), predict the originals."""
        mask_id = self.config.mask_id
        xt = mask_tokens(x0, self.schedule.alpha(t), mask_id, u)
        with torch.autocast(x0.device.type, dtype=dtype, enabled=dtype is not None):
            logits = net(xt, t, cond)
        if logits.shape[:-1] != x0.shape or logits.shape[-1] <= mask_id:
            raise InvalidInputError(f"model returned shape {tuple(logits.shape)} for tokens {tuple(x0.shape)}; "
                                    f"expected logits [*tokens, vocabulary] with the mask id {mask_id} inside")
        return masked_loss(logits, x0, xt, self.schedule.weight(t), mask_id)

    def _update_ema(self, pairs) -> None:
        """EMA with warm-up, so short runs are not dominated by the random initial weights."""
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for ema, live in pairs:
            if ema.is_floating_point():
                ema.lerp_(live, 1 - decay)
            else:
                ema.copy_(live)

    def _log(self, mean_loss: torch.Tensor, bar) -> None:
        value = float(mean_loss)  # the one host sync, every log_every steps
        if value != value or value in (float("inf"), float("-inf")):
            raise NonFiniteError(f"the training loss became {value} at step {self.step}; "
                                 "try a smaller lr or a grad_clip")
        self.history.append((self.step, value))
        if bar is not None:
            bar.set_postfix(loss=f"{value:.4g}")

    def _seed(self, stream: str) -> int:
        return _stream_seed(self.config.seed, f"{self.rank}/{self.step}/{stream}")

    def _cuda_devices(self) -> list[int]:
        if self.device.type != "cuda":
            return []
        return [self.device.index if self.device.index is not None else torch.cuda.current_device()]

    def _wrap(self, module):
        if self.world_size == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # -- checkpoints ------------------------------------------------------------------------

    def _info(self) -> dict:
        c = self.config
        return {"model_config": self.model_config, "prediction": c.prediction, "schedule": c.schedule,
                **({"mask_id": c.mask_id} if c.mask_id is not None else {}),
                **({"times": self.times, "latent_shape": list(self.latent_shape), "sampler": "ddpm"}
                   if self.discriminator is not None else {}),
                **({"times": self.times, "sampler": "ddim", "guidance": c.teacher_guidance}
                   if c.objective == "distill" else {}),
                "t_range": list(self.t_range), "step": self.step, "train": c.model_dump(mode="json")}

    def _save(self) -> Path:
        """Rank 0 writes the EMA model, then the resume state; other ranks write nothing."""
        out = Path(self.config.out)
        if self.rank != 0:
            return out / f"{MODEL}.safetensors"
        info = self._info()
        path = save_checkpoint(out, self.ema, info, name=MODEL)
        optim, optim_meta = _flatten_optimizer(self.optimizer.state_dict())
        tensors = {**_prefix("model.", self.model.state_dict()), **_prefix("ema.", self.ema),
                   **_prefix("optim.", optim)}
        extra = {}
        if self.discriminator is not None:
            d_optim, extra["d_optimizer"] = _flatten_optimizer(self.d_optimizer.state_dict())
            tensors.update({**_prefix("disc.", self.discriminator.state_dict()), **_prefix("doptim.", d_optim),
                            "level": self.level.reshape(1)})
        save_checkpoint(out, tensors, {**info, "optimizer": optim_meta, "world_size": self.world_size, **extra},
                        name=STATE)
        return path

    def _resume(self) -> bool:
        out = Path(self.config.out)
        if not (out / f"{STATE}.json").is_file():
            return False
        tensors, meta = load_checkpoint(out, name=STATE)  # on CPU: optimizer "step"s must stay there
        self._check_same_run(meta, out)
        ema = {k: v.to(self.device) for k, v in _section(tensors, "ema.").items()}
        try:
            self.model.load_state_dict(_section(tensors, "model."))
            if set(ema) != set(self.model.state_dict()):
                raise KeyError("the EMA weights do not match the model's")
            optim = _unflatten_optimizer(_section(tensors, "optim."), meta["optimizer"])
            self.optimizer.load_state_dict(optim)
            if self.discriminator is not None:
                self.discriminator.load_state_dict(_section(tensors, "disc."))
                self.d_optimizer.load_state_dict(_unflatten_optimizer(_section(tensors, "doptim."),
                                                                      meta["d_optimizer"]))
                if "level" in tensors:
                    self.level = tensors["level"][0].to(self.device)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"cannot resume from {out / STATE}.safetensors: {exc}") from None
        self.ema, self.step = ema, int(meta["step"])
        return True

    def _check_same_run(self, meta: dict, out: Path) -> None:
        """A resume continues one run: another batch size, seed, backend, world size or model would
        make the checkpoint a mix that its config misdescribes, so it is refused in one line."""
        saved = meta.get("train", {})
        pairs = [(key, saved.get(key, TrainConfig.model_fields[key].default), getattr(self.config, key))
                 for key in SAME_RUN]  # a field newer than the state: that state had its default
        pairs += [("world_size", meta.get("world_size", 1), self.world_size),
                  ("model_config", meta.get("model_config", {}), self.model_config)]
        for key, was, now in pairs:
            if key == "backend" and (was is None or now is None):
                continue  # a state saved before backends were recorded, or a run outside the CLI
            if was != now:
                raise InvalidInputError(f"{key}: {out} holds a run trained with {key}={was!r}, but this run "
                                        f"has {key}={now!r}; resume with the same {key} or use another out folder")


# -- helpers ------------------------------------------------------------------------------------


def _stream_seed(seed: int, stream: str) -> int:
    key = f"{seed}/{stream}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


class _StopSignals:
    """While active (main thread only), SIGINT and SIGTERM set ``signum`` instead of killing the
    process, so the loop can finish its step and save; a second signal acts as usual."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _prefix(prefix: str, tensors: dict) -> dict:
    return {prefix + k: v for k, v in tensors.items()}


def _section(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _flatten_optimizer(state_dict: dict) -> tuple[dict, dict]:
    """An optimizer state dict as tensors ``"{param}.{key}"`` + JSON metadata (no pickle)."""
    tensors, other = {}, {}
    for idx, state in state_dict["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value
            else:
                other.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": other}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["state"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _to_device(cond, device):
    if isinstance(cond, torch.Tensor):
        return cond.to(device, non_blocking=True)
    if isinstance(cond, dict):
        return {k: _to_device(v, device) for k, v in cond.items()}
    if isinstance(cond, (list, tuple)):
        return type(cond)(_to_device(v, device) for v in cond)
    return cond


def _replace_rows(drop: torch.Tensor, null, cond):
    """Rows of ``cond`` where ``drop`` is set replaced by those of ``null`` (no host sync)."""
    if isinstance(cond, torch.Tensor):
        ok = isinstance(null, torch.Tensor) and null.shape[1:] == cond.shape[1:]
        if not ok or null.shape[0] not in (1, cond.shape[0]):
            got = tuple(null.shape) if isinstance(null, torch.Tensor) else type(null).__name__
            raise InvalidInputError(
                f"null_cond(n) must give rows shaped like the condition {tuple(cond.shape)}, got {got}")
        return torch.where(drop.view(-1, *[1] * (cond.dim() - 1)), null.to(cond.dtype), cond)
    if isinstance(cond, dict):
        if not isinstance(null, dict) or set(null) != set(cond):
            raise InvalidInputError(f"null_cond(n) must give a dict with the keys {sorted(cond)}")
        return {k: _replace_rows(drop, null[k], v) for k, v in cond.items()}
    raise InvalidInputError(
        f"condition dropout needs a tensor or a dict of tensors, got {type(cond).__name__}")


def _launch_env() -> tuple[int, int, int]:
    """(rank, world size, local rank): from an existing process group, else torchrun's env."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size(), local
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), local


def _init_distributed(device: torch.device, world_size: int) -> bool:
    """Join torchrun's process group (gloo on CPU, nccl on CUDA); True if we created it."""
    if world_size <= 1 or torch.distributed.is_initialized():
        return False
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def _barrier(device: torch.device) -> None:
    if device.type == "cuda":
        torch.distributed.barrier(device_ids=[device.index])
    else:
        torch.distributed.barrier()


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {name!r} was asked for, but CUDA is not available")
        torch.cuda.set_device(device)
    return device

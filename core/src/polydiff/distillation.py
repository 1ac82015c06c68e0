"""Few-step students by trajectory distillation: a teacher's (guided) ODE solve from noise is
recorded at a few times, and a student learns, at each recorded state, the one large DDIM step
that lands on the teacher's next recorded state. Sampled with ``ddim`` over those times, the
student retraces the teacher's many-step path in ``few_steps`` calls, without guidance's second
branch (the teacher's guidance is distilled in).

Why regression and not a discriminator (adversarial distillation) or a consistency loss: the
target of every step is known exactly from the teacher's path, so the loss is a plain MSE that
is stable from the first step, needs no feature network to judge images (ADD's DINO), and
fine-tunes from the teacher's own weights in minutes; consistency distillation learns the same
map through a bootstrapped target and needs far more steps to converge. The price: the student
is as good as the teacher's solve, not better, and is trained for its own times only.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .denoisers import _bcast

PATHS_FILE = "teacher-paths"  # the solved paths, cached in the run's out folder
SEEDS = 1_000_000_000  # the teacher's solves start from seeds far from those users and evaluators pick


def jump_target(schedule, xt: torch.Tensor, xs: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The x0 for which the deterministic DDIM step from ``(xt, t)`` lands on ``xs`` at ``s < t``:
    DDIM gives ``x_s = k x_t + (a_s - k a_t) x0`` with ``k = sigma_s / sigma_t``, solved for x0
    (per row; ``s = 0`` gives ``xs / a_0``, the endpoint itself)."""
    a_t, s_t = _bcast(schedule.alpha(t), xt), _bcast(schedule.sigma(t), xt)
    a_s, s_s = _bcast(schedule.alpha(s), xt), _bcast(schedule.sigma(s), xt)
    k = s_s / s_t
    return (xs - k * xt) / (a_s - k * a_t)


def teacher_paths(denoiser, shape, times, *, seed=0, sub_steps: int = 8, sampler: str = "unipc",
                  device=None, **options) -> torch.Tensor:
    """``[n, len(times), *shape[1:]]``: the teacher's states at ``times`` (descending, from the
    start of sampling to 0) along its solve from each sample's seeded noise (``seed + i`` for
    sample i, as ``sample``), with ``sub_steps`` steps of ``sampler`` between neighbouring times
    (spaced evenly in log-SNR inside each one); ``options`` go to ``sample`` (e.g. autocast)."""
    from .loop import sample

    schedule = denoiser.schedule
    fine, marks = [float(times[0])], [0]
    for hi, lo in zip(times[:-1], times[1:]):
        fine += _log_snr_between(schedule, float(hi), float(lo), sub_steps)
        marks.append(len(fine) - 1)
    path = sample(denoiser, shape, sampler=sampler, steps=len(fine) - 1, schedule=schedule, spacing=fine,
                  seed=seed, device=device, trajectory=True, **options)
    return path.x[marks].transpose(0, 1).contiguous()


def _log_snr_between(schedule, hi: float, lo: float, steps: int) -> list[float]:
    """``steps`` times after ``hi`` down to ``lo``, evenly spaced in log-SNR (the last segment,
    which ends at t = 0 where log-SNR is infinite, is spaced up to the schedule's ``t_min``)."""
    ends = schedule.lam(torch.tensor([hi, max(lo, float(schedule.t_min))], dtype=torch.float64))
    lams = ends[0] + (ends[1] - ends[0]) * torch.linspace(0, 1, steps + 1, dtype=torch.float64)[1:-1]
    return [float(v) for v in schedule.t_of_lam(lams)] + [lo]


class PathData:
    """``data(batch_size, generator) -> (paths, cond rows)`` over precomputed teacher paths, for
    ``Trainer(objective="distill")``: ``paths`` [N, few_steps + 1, ...] from ``teacher_paths``
    and ``cond`` their condition rows (a tensor or dict of tensors with N rows, or None)."""

    def __init__(self, paths: torch.Tensor, cond=None):
        self.paths, self.cond = paths, cond

    def __call__(self, batch_size, generator):
        rows = torch.randint(0, len(self.paths), (batch_size,), generator=generator)
        if self.cond is None:
            return self.paths[rows], None
        if isinstance(self.cond, dict):
            return self.paths[rows], {k: v[rows] for k, v in self.cond.items()}
        return self.paths[rows], self.cond[rows]


def distill(teacher, build, config, *, shape, conditions, paths: int = 4096, chunk: int = 256,
            sub_steps: int = 5, progress: bool = True) -> Path:
    """Train a ``few_steps`` student of ``teacher`` (a ``LoadedModel``) and return its checkpoint.

    ``conditions(n, seed) -> (cond, uncond)`` gives the condition rows of n training prompts and
    their null condition; the teacher, guided by ``config.teacher_guidance``, solves ``paths``
    of them from seeded noise of ``shape`` (per sample, without the batch), ``sub_steps`` steps
    per student step. The paths are kept in the out folder and reused by a resumed run. The
    student is ``build(**model_config)`` started from the teacher's weights; ``config`` is a
    ``TrainConfig(objective="distill", cond_dropout=0)`` for the teacher's schedule."""
    from .checkpoint import load_checkpoint, save_checkpoint
    from .errors import InvalidInputError
    from .training import Trainer, check_out_folder

    if config.objective != "distill" or config.schedule != teacher.schedule.name:
        raise InvalidInputError(f"config: distilling needs objective='distill' on the teacher's schedule "
                                f"{teacher.schedule.name!r}")
    out = check_out_folder(config.out)
    guidance = config.teacher_guidance or 1.0
    meta = {"paths": paths, "sub_steps": sub_steps, "guidance": guidance, "seed": config.seed, "shape": list(shape),
            "few_steps": config.few_steps, "teacher": fingerprint(teacher.net)}
    try:
        tensors, saved = load_checkpoint(out, name=PATHS_FILE)
    except InvalidInputError:
        tensors, saved = {}, {}
    if {k: saved.get(k) for k in meta} != meta:
        tensors = _solve(teacher, shape, conditions, meta, config, chunk, progress)
        save_checkpoint(out, tensors, meta, name=PATHS_FILE)
    cond = tensors.get("cond", {k[len("cond."):]: v for k, v in tensors.items() if k.startswith("cond.")} or None)
    model_config = teacher.config.get("model_config", {})
    student = build(**model_config)
    student.load_state_dict(teacher.net.state_dict())  # the student starts as the teacher
    student.requires_grad_(True).train()
    return Trainer(student, config, PathData(tensors["paths"], cond), model_config=model_config).fit()


def fingerprint(net) -> str:
    """sha256 of a network's tensors (names and bytes): which teacher a cache of paths came from."""
    import hashlib

    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _solve(teacher, shape, conditions, meta, config, chunk, progress) -> dict:
    """The teacher's guided paths in chunks of ``chunk`` prompts, with their condition rows."""
    from tqdm.auto import tqdm

    from .adversarial import trained_times
    from .denoisers import as_denoiser, guided

    times = trained_times(teacher.schedule, config.few_steps)
    denoise = as_denoiser(teacher.net, teacher.schedule, teacher.prediction)
    paths, conds = [], []
    for start in tqdm(range(0, meta["paths"], chunk), desc="teacher paths", disable=not progress):
        n, seed = min(chunk, meta["paths"] - start), SEEDS + config.seed * meta["paths"] + start
        cond, uncond = conditions(n, seed)
        step = guided(denoise, cond, uncond, meta["guidance"])
        step.schedule = teacher.schedule
        paths.append(teacher_paths(step, (n, *shape), times, seed=seed, sub_steps=meta["sub_steps"],
                                   autocast=config.autocast))
        conds.append(cond)
    if conds[0] is None:
        return {"paths": torch.cat(paths)}
    if isinstance(conds[0], torch.Tensor):
        return {"paths": torch.cat(paths), "cond": torch.cat(conds)}
    return {"paths": torch.cat(paths), **{f"cond.{k}": torch.cat([c[k] for c in conds]) for k in conds[0]}}

"""The masked process's oracle and sampler checks.

``CategoricalMixture``: K components, each a product of per-position categoricals over V tokens
at L positions (the mask token is id V). Given the visible tokens the posterior over components
is closed form, and with it the exact denoiser ``p(x0_l | x_t) = sum_k r_k(x_t) p_kl`` and, for
a few positions, the exact law of whole sequences, so a sampler's error is measured as a total
variation distance that only the sampler (and sampling noise) can make.
"""
from __future__ import annotations

import itertools
import math

import torch

from .errors import fail
from .support import components, single_thread
from .syncs import HostSyncs


class CategoricalMixture:
    def __init__(self, weights, probs, schedule="mask-linear"):
        from ..loop import resolve

        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.weights = self.weights / self.weights.sum()
        probs = torch.as_tensor(probs, dtype=torch.float64)
        self.probs = probs / probs.sum(-1, keepdim=True)           # [K, L, V]
        self.length, self.vocab = self.probs.shape[1:]
        self.mask_id = self.vocab
        self.schedule = resolve("schedules", schedule)

    def log_resp(self, x: torch.Tensor) -> torch.Tensor:
        """log r_k(x): the log posterior over components given the visible tokens of x [n, L]."""
        visible = x != self.mask_id
        token = x.clamp_max(self.vocab - 1)
        logp = self.probs.log()[:, torch.arange(self.length), :]  # [K, L, V]
        per = logp[:, torch.arange(self.length)[None, :], token].permute(1, 0, 2)  # [n, K, L]
        score = self.weights.log() + (per * visible[:, None, :]).sum(-1)
        return torch.log_softmax(score, dim=1)

    def denoiser(self, x: torch.Tensor, t=None, cond=None) -> torch.Tensor:
        """Exact logits [n, L, V + 1] of each position's token given the visible ones (the mask
        column is -1e4: the mask is never the answer), in x's float dtype if any, else float32."""
        resp = self.log_resp(x).exp()                              # [n, K]
        marginal = torch.einsum("nk,klv->nlv", resp, self.probs)
        logits = torch.cat([marginal.log(), torch.full((*x.shape, 1), -1e4, dtype=torch.float64)], dim=-1)
        return logits.float()

    __call__ = denoiser

    def sample(self, n: int, generator=None) -> torch.Tensor:
        """``n`` true sequences [n, L]."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        flat = self.probs[k].reshape(n * self.length, self.vocab)
        return torch.multinomial(flat, 1, generator=generator).reshape(n, self.length)

    def sequences(self) -> torch.Tensor:
        """Every sequence [V^L, L], in the order ``index`` numbers them."""
        return torch.tensor(list(itertools.product(range(self.vocab), repeat=self.length)))

    def index(self, x: torch.Tensor) -> torch.Tensor:
        powers = self.vocab ** torch.arange(self.length - 1, -1, -1)
        return (x * powers).sum(-1)

    def law(self, known: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The exact probability of every sequence [V^L], given ``known`` tokens where ``keep``."""
        seqs = self.sequences()
        logp = self.probs.log()[:, torch.arange(self.length)[None, :], seqs].sum(-1)  # [K, V^L]
        p = (self.weights[:, None] * logp.exp()).sum(0)
        if known is not None:
            p = p * (seqs[:, keep] == known[keep]).all(-1)
        return p / p.sum()


def tv_distance(mixture: CategoricalMixture, x: torch.Tensor, law: torch.Tensor) -> float:
    counts = torch.bincount(mixture.index(x), minlength=law.numel()).double()
    return 0.5 * float((counts / counts.sum() - law).abs().sum())


def sampling_floor(law: torch.Tensor, n: int) -> float:
    """The TV distance n exact samples are expected to show: sum over states of
    E|p_hat - p| / 2 ~ sqrt(2 p (1 - p) / (pi n)) / 2 (the binomial's normal approximation)."""
    return float((2 * law * (1 - law) / (math.pi * n)).sqrt().sum() / 2)


def check_mixture() -> CategoricalMixture:
    """Two strongly correlated components over three positions of three tokens: revealing all
    tokens at once from their marginals is far from the joint law."""
    probs = [[[0.8, 0.15, 0.05]] * 3, [[0.05, 0.15, 0.8]] * 3]
    return CategoricalMixture([0.4, 0.6], probs)


def _run(mixture, n, spec, steps, seed=0, options=None, constraints=()):
    from ..loop import sample

    return sample(mixture, (n, mixture.length), sampler=spec, steps=steps, seed=seed,
                  sampler_options=options, constraints=constraints)


@single_thread
def check_masked_convergence(spec, *, options: dict | None = None, steps=(1, 3, 32), n: int = 3000) -> list[float]:
    """The TV distance to the exact law falls from one step to many, and at the most steps is
    within sampling noise (1.5 x the expected floor + 0.01); the same for an infill (position 0
    given), against the exact conditional."""
    from ..editing import Replacement

    gm, name = check_mixture(), spec.name
    law = gm.law()
    tvs = [tv_distance(gm, _run(gm, n, spec, s, options=options), law) for s in steps]
    limit = 1.5 * sampling_floor(law, n) + 0.01
    if not tvs[0] > tvs[-1] or tvs[-1] > limit:
        fail(f"sampler {name!r}: TV to the exact law at {list(steps)} steps is "
             f"{', '.join(f'{v:.3f}' for v in tvs)}; expected it to fall to <= {limit:.3f}")
    known, keep = torch.tensor([2, 0, 0]), torch.tensor([True, False, False])
    infill = Replacement(known.expand(n, -1), keep.expand(n, -1))
    x = _run(gm, n, spec, steps[-1], seed=1, options=options, constraints=[infill])
    cond = gm.law(known, keep)
    tv = tv_distance(gm, x, cond)
    if not (x[:, 0] == 2).all() or tv > 1.5 * sampling_floor(cond, n) + 0.01:
        fail(f"sampler {name!r}: infilling given the first token: TV {tv:.3f} to the exact conditional "
             f"(kept token kept: {bool((x[:, 0] == 2).all())})")
    return tvs


@single_thread
def check_masked_seeding(spec, *, options: dict | None = None, steps: int = 6, n: int = 4, seed: int = 11) -> None:
    """Sample i of a batch seeded ``seed`` equals that sample drawn alone with ``seed + i``."""
    gm = check_mixture()
    batch = _run(gm, n, spec, steps, seed, options)
    if batch.shape != (n, gm.length) or batch.dtype != torch.long:
        fail(f"sampler {spec.name!r}: returned {tuple(batch.shape)} {batch.dtype} for {n} token sequences")
    for i in range(n):
        if not torch.equal(batch[i], _run(gm, 1, spec, steps, seed + i, options)[0]):
            fail(f"sampler {spec.name!r}: sample {i} of a batch seeded {seed} differs from the same sample "
                 f"drawn alone with seed {seed + i}; draw all randomness with the `noise` argument")


@single_thread
def check_masked_no_host_sync(spec, *, options: dict | None = None, steps: int = 6, n: int = 5) -> None:
    """The sampler never reads the state's values on the host."""
    from ..loop import build_grid
    from ..noise import SeededNoise

    gm = check_mixture()
    grid = build_grid(gm.schedule, "trailing", steps)
    x = torch.full((n, gm.length), gm.mask_id)
    with HostSyncs(watch=[x]) as mode:
        out = spec.fn(lambda x, t: mode.watch(gm(x, t)), x, grid, noise=SeededNoise.for_batch(0, n),
                      mask_id=gm.mask_id, **(options or {}))
    if mode.ops:
        fail(f"sampler {spec.name!r} reads device values on the host: {', '.join(mode.ops)}")
    if out.shape != x.shape or bool((out == gm.mask_id).any()):
        fail(f"sampler {spec.name!r} left masked tokens or changed the shape")


def check_masked_sampler(spec, *, options: dict | None = None) -> str:
    tvs = check_masked_convergence(spec, options=options)
    check_masked_seeding(spec, options=options)
    check_masked_no_host_sync(spec, options=options)
    return f"TV to the exact law {' -> '.join(f'{v:.3f}' for v in tvs)}; exact infill; per-sample seeds; no host syncs"


def masked_samplers() -> list[str]:
    return sorted(n for n, s in components().samplers.items() if s.process == "masked")

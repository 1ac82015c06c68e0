"""The space-time denoiser: a 2-D UNet that sees a window of frames stacked as channels (as in
MCVD), together with the frames already known and a per-frame "known" flag, conditioned on the
prompt by FiLM.

Trained with random known-frame patterns (none, a past, a future, every k-th frame, both ends,
a random subset), the one network serves generation, forward and backward prediction,
interpolation and span editing: the task only chooses which frames are known.

A clip longer than the window is denoised window by window (windows overlapping by half,
every frame's prediction averaged over the windows that hold it), so any length from
``window`` frames up is one sampling run.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid(t: torch.Tensor, width: int) -> torch.Tensor:
    """Fourier features of diffusion times in [0, 1]: [B] -> [B, width]."""
    k = torch.arange(width // 2, device=t.device, dtype=torch.float32)
    phase = t.float()[:, None] * 1000.0 * torch.exp(k * (-math.log(1e4) / (width // 2)))[None]
    return torch.cat([phase.cos(), phase.sin()], dim=1)


def ramps(h: torch.Tensor) -> torch.Tensor:
    """[2, H, W]: x and y running from -1 to 1 across a feature map."""
    ys = torch.linspace(-1.0, 1.0, h.shape[-2], device=h.device, dtype=h.dtype)
    xs = torch.linspace(-1.0, 1.0, h.shape[-1], device=h.device, dtype=h.dtype)
    return torch.stack([xs[None, :].expand(len(ys), -1), ys[:, None].expand(-1, len(xs))])


class Block(nn.Module):
    """Residual conv block; the embedding sets a per-channel gain, offset and a linear tilt in
    x and y, so a prompt can place content at different positions in different frames."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.pre = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.norm = nn.GroupNorm(8, cout)
        self.mod = nn.Linear(emb, 4 * cout)
        self.post = nn.Sequential(nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.bypass = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        gain, offset, tilt_x, tilt_y = self.mod(e)[..., None, None].chunk(4, dim=1)
        grid = ramps(h)
        h = self.norm(h) * (1 + gain) + offset + tilt_x * grid[0] + tilt_y * grid[1]
        return self.bypass(x) + self.post(h)


class SelfAttention(nn.Module):
    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.attn = nn.MultiheadAttention(ch, heads, batch_first=True)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class PromptReader(nn.Module):
    """A few learned queries read the prompt's per-word vectors (cross-attention), so the one
    word that tells "left" from "right" is not averaged away in the sentence vector."""

    def __init__(self, dim: int, emb: int, queries: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, queries, dim) / math.sqrt(dim))
        self.read = nn.MultiheadAttention(dim, 4, batch_first=True)
        self.proj = nn.Sequential(nn.Linear(queries * dim, emb), nn.SiLU(), nn.Linear(emb, emb))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self.queries.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        out, _ = self.read(q, tokens, tokens, key_padding_mask=mask < 0.5, need_weights=False)
        return self.proj(out.flatten(1))


class ClipUNet(nn.Module):
    """``net(x, t, cond)``: x [B, T, 3, H, W] (T >= window), t [B], cond with the text
    encoder's ``tokens`` [B, L, D] and ``mask`` [B, L], and ``context`` [B, T, 3, H, W] (the
    known frames, zero elsewhere) with ``known`` [B, T] (1 where a frame is given)."""

    def __init__(self, window: int = 8, channels: int = 48, mults=(1, 2, 2), depth: int = 1,
                 cond_dim: int = 384, queries: int = 4):
        super().__init__()
        self.config = dict(window=window, channels=channels, mults=list(mults), depth=depth,
                           cond_dim=cond_dim, queries=queries)
        self.window = window
        emb = 4 * channels
        self.clock = nn.Sequential(nn.Linear(channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.prompt = PromptReader(cond_dim, emb, queries)
        self.stem = nn.Conv2d(window * 7 + 2, channels, 3, padding=1)  # noisy, context, flag, x/y
        widths = [channels * m for m in mults]
        # the encoder: `depth` blocks per resolution, a strided conv between resolutions;
        # `kept` lists the width of every feature map the decoder takes back as a skip
        layers, kept = [], [channels] + [w for i, w in enumerate(widths) for _ in range(depth + (i + 1 < len(widths)))]
        for i, width in enumerate(widths):
            ins = [widths[i - 1] if i else channels] + [width] * (depth - 1)
            layers += [Block(c, width, emb) for c in ins]
            layers += [nn.Conv2d(width, width, 4, stride=2, padding=1)] if i + 1 < len(widths) else []
        self.encoder = nn.ModuleList(layers)
        cin = widths[-1]
        self.middle = nn.ModuleList([Block(cin, cin, emb), SelfAttention(cin), Block(cin, cin, emb)])
        self.decoder = nn.ModuleList()
        for i in reversed(range(len(widths))):
            for _ in range(depth + 1):
                self.decoder.append(Block(cin + kept.pop(), widths[i], emb))
                cin = widths[i]
            if i > 0:
                self.decoder.append(nn.ConvTranspose2d(cin, cin, 4, stride=2, padding=1))
        self.head = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, 3 * window, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        frames = x.shape[1]
        if frames < self.window:
            raise ValueError(f"clips need at least {self.window} frames, got {frames}")
        if frames == self.window:
            return self._window(x, t, cond)
        starts = list(range(0, frames - self.window, self.window // 2)) + [frames - self.window]
        pick = lambda v, s: v[:, s:s + self.window]  # noqa: E731
        n = x.shape[0]
        out = self._window(
            torch.cat([pick(x, s) for s in starts]), t.repeat(len(starts)),
            {"tokens": cond["tokens"].repeat(len(starts), 1, 1), "mask": cond["mask"].repeat(len(starts), 1),
             "context": torch.cat([pick(cond["context"], s) for s in starts]),
             "known": torch.cat([pick(cond["known"], s) for s in starts])})
        total = torch.zeros_like(x)
        count = x.new_zeros(1, frames, 1, 1, 1)
        for j, s in enumerate(starts):
            total[:, s:s + self.window] += out[j * n:(j + 1) * n]
            count[:, s:s + self.window] += 1
        return total / count

    def _window(self, x, t, cond):
        b, w, c, h, wd = x.shape
        known = cond["known"].to(x.dtype)
        flags = known[:, :, None, None].expand(-1, -1, h, wd)
        grid = ramps(x[:, 0]).expand(b, -1, -1, -1)
        inp = torch.cat([x.reshape(b, w * c, h, wd), cond["context"].to(x.dtype).reshape(b, w * c, h, wd),
                         flags, grid], dim=1)
        e = self.clock(sinusoid(t, self.config["channels"])) + self.prompt(cond["tokens"].to(x.dtype), cond["mask"])
        feats = [self.stem(inp)]
        for layer in self.encoder:
            feats.append(layer(feats[-1], e) if isinstance(layer, Block) else layer(feats[-1]))
        y = feats[-1]
        for layer in self.middle:
            y = layer(y, e)
        for layer in self.decoder:
            y = layer(torch.cat([y, feats.pop()], 1), e) if isinstance(layer, Block) else layer(y)
        return self.head(y).reshape(b, w, c, h, wd)

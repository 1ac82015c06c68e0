"""The slice denoiser: a small UNet over two channels, the image and its lesion mask, that is
told which channels are already known.

Trained on (image, mask) pairs with either nothing known (a joint prior: it generates slices
with their masks, and its image channel is the prior reconstruction and enhancement need) or
the image known (it then generates the mask given the image: segmentation). One checkpoint
serves every task; the task only chooses what is known.
"""
from __future__ import annotations

import math

import torch
from torch import nn

CHANNELS = 2  # image, lesion mask


def time_features(t: torch.Tensor, width: int) -> torch.Tensor:
    """[B] diffusion times in [0, 1] -> [B, width] sines and cosines at geometric frequencies."""
    half = width // 2
    freq = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(1e4) / half))
    angle = 1000.0 * t.float()[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a time-dependent scale and shift between them."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.film = nn.Linear(emb, 2 * cout)
        self.conv2 = nn.Sequential(nn.GroupNorm(8, cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = self.conv1(x) * (1 + scale) + shift
        return self.skip(x) + self.conv2(h)


class Attention(nn.Module):
    """Global self-attention at the coarsest resolution (the head outline is a global shape)."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.attn = nn.MultiheadAttention(ch, 4, batch_first=True)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        y, _ = self.attn(q, q, q, need_weights=False)
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class SliceUNet(nn.Module):
    """``net(x, t, cond)``: x [B, 2, H, W]; cond ``context`` [B, 2, H, W] (known channels,
    zero elsewhere) and ``known`` [B, 2] (1 for a known channel)."""

    def __init__(self, channels: int = 32, mults=(1, 2, 2, 2), attention: bool = True):
        super().__init__()
        self.config = dict(channels=channels, mults=list(mults), attention=attention)
        emb = 4 * channels
        self.time = nn.Sequential(nn.Linear(channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(3 * CHANNELS, channels, 3, padding=1)
        widths = [channels * m for m in mults]
        self.down, self.pool = nn.ModuleList(), nn.ModuleList()
        cin = channels
        for i, w in enumerate(widths):
            self.down.append(ResBlock(cin, w, emb))
            self.pool.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i + 1 < len(widths) else nn.Identity())
            cin = w
        self.mid = nn.ModuleList([ResBlock(cin, cin, emb), Attention(cin) if attention else nn.Identity(),
                                  ResBlock(cin, cin, emb)])
        self.up, self.unpool = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.up.append(ResBlock(cin + widths[i], widths[i], emb))
            cin = widths[i]
            self.unpool.append(nn.Upsample(scale_factor=2, mode="nearest") if i > 0 else nn.Identity())
        self.out = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, CHANNELS, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        known = cond["known"].to(x.dtype)[:, :, None, None].expand_as(x)
        h = self.inp(torch.cat([x, cond["context"].to(x.dtype), known], dim=1))
        e = self.time(time_features(t, self.config["channels"]))
        skips = []
        for block, pool in zip(self.down, self.pool):
            h = block(h, e)
            skips.append(h)
            h = pool(h)
        for layer in self.mid:
            h = layer(h, e)
        for block, unpool in zip(self.up, self.unpool):
            h = unpool(block(torch.cat([h, skips.pop()], dim=1), e))
        return self.out(h)

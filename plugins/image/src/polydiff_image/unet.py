"""A small text-conditioned UNet for 32x32 images: FiLM from (time + prompt embedding) in every
residual block, self-attention at 8x8.

Plain FiLM is the same at every pixel, so "on the left" has no direct way to move anything:
each block's FiLM therefore also predicts a horizontal and a vertical ramp (a spatially linear
shift), and the input carries two coordinate channels."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = 1000 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def coordinates(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, x) coordinate maps in [-1, 1], each [1, 1, H, W], at the size of x."""
    h, w = x.shape[-2:]
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_y[None, None], grid_x[None, None]


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 4 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift, ramp_x, ramp_y = self.film(e)[:, :, None, None].chunk(4, dim=1)
        ys, xs = coordinates(h)
        h = self.norm2(h) * (1 + scale) + shift + ramp_x * xs + ramp_y * ys
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = nn.GroupNorm(8, ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1), heads

    def forward(self, x, e=None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


class TextPool(nn.Module):
    """Learned queries attend over the prompt's token states, so a word that changes the
    sentence embedding only a little ("left" vs "right") still gets its own slot."""

    def __init__(self, dim: int, queries: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim) * dim**-0.5)
        self.key = nn.Linear(dim, dim)

    def forward(self, tokens, mask) -> torch.Tensor:
        scores = torch.einsum("qd,bld->bql", self.queries, self.key(tokens)) / tokens.shape[-1] ** 0.5
        scores = scores.masked_fill(mask[:, None, :] < 0.5, float("-inf"))
        return torch.einsum("bql,bld->bqd", scores.softmax(-1), tokens).flatten(1)


class UNet(nn.Module):
    """``net(x, t, cond)`` with x [B, 3, 32, 32], t [B] in [0, 1] and cond
    {"tokens": [B, L, cond_dim], "mask": [B, L]} from the text encoder's ``tokens``."""

    def __init__(self, channels: int = 64, mults=(1, 2, 2), blocks: int = 2, cond_dim: int = 384,
                 dropout: float = 0.0, text_queries: int = 4):
        super().__init__()
        self.config = dict(channels=channels, mults=list(mults), blocks=blocks, cond_dim=cond_dim,
                           dropout=dropout, text_queries=text_queries)
        emb = 4 * channels
        self.time = nn.Sequential(nn.Linear(channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.pool = TextPool(cond_dim, text_queries)
        self.text = nn.Sequential(nn.Linear(text_queries * cond_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(3 + 2, channels, 3, padding=1)
        widths = [channels * m for m in mults]
        self.down, skips, cin = nn.ModuleList(), [channels], channels
        for level, width in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResBlock(cin, width, emb, dropout))
                cin = width
                skips.append(cin)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(cin, cin, 3, stride=2, padding=1))
                skips.append(cin)
        self.mid = nn.ModuleList([ResBlock(cin, cin, emb, dropout), Attention(cin), ResBlock(cin, cin, emb, dropout)])
        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(cin + skips.pop(), width, emb, dropout))
                cin = width
            if level == len(widths) - 1:
                self.up.append(Attention(cin))
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.out = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, 3, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x, t, cond) -> torch.Tensor:
        text = self.pool(cond["tokens"].to(x.dtype), cond["mask"])
        e = self.time(time_features(t, self.config["channels"])) + self.text(text)
        grid_y, grid_x = coordinates(x)
        coords = torch.cat([grid_y, grid_x], dim=1).expand(x.shape[0], -1, -1, -1)
        h = self.inp(torch.cat([x, coords], dim=1))
        hs = [h]
        for layer in self.down:
            h = layer(h, e) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, e)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), e)
            else:
                h = layer(h) if isinstance(layer, nn.Upsample) else layer(h, e)
        return self.out(h)

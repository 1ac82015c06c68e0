"""A text-conditioned 1-D UNet over log-mel frames: the 128 mel bands are the channels and the
network convolves along time. Every layer mixes all bands, which suits pitched sound (a note
is a fixed pattern of harmonics across bands) at a fraction of a 2-D UNet's cost.

Conditioning: time + prompt by FiLM in every block; the prompt's word tokens first pass one
small transformer layer (so "a" the article and "A" the chord root can differ by their
neighbours), then learned queries pool them. Each block's FiLM also predicts a ramp along
time and the input carries a time-coordinate channel, so "rising" and "falling" have a direct
way to order notes. Self-attention along time sits at the coarsest level.
"""
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


def ramp(x: torch.Tensor) -> torch.Tensor:
    """[1, 1, T] from -1 to 1 along time."""
    return torch.linspace(-1, 1, x.shape[-1], device=x.device, dtype=x.dtype)[None, None]


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, cin), nn.Conv1d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 3 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(8, cout), nn.Conv1d(cout, cout, 3, padding=1)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift, slope = self.film(e)[:, :, None].chunk(3, dim=1)
        h = self.norm2(h) * (1 + scale) + shift + slope * ramp(h)
        return self.skip(x) + self.conv2(F.silu(h))


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = nn.GroupNorm(8, ch), nn.Conv1d(ch, 3 * ch, 1), nn.Conv1d(ch, ch, 1), heads

    def forward(self, x, e=None) -> torch.Tensor:
        b, c, t = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, t).unbind(1)
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(y.transpose(-1, -2).reshape(b, c, t))


class PromptEncoder(nn.Module):
    """Word tokens [B, L, cond_dim] + mask -> one vector [B, emb]."""

    def __init__(self, cond_dim: int, width: int, emb: int, max_tokens: int, queries: int = 4):
        super().__init__()
        self.proj = nn.Linear(cond_dim, width)
        self.position = nn.Parameter(torch.zeros(max_tokens, width))
        self.mix = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.queries = nn.Parameter(torch.randn(queries, width) * width**-0.5)
        self.out = nn.Sequential(nn.Linear(queries * width, emb), nn.SiLU(), nn.Linear(emb, emb))

    def forward(self, tokens, mask) -> torch.Tensor:
        h = self.proj(tokens) + self.position[: tokens.shape[1]]
        pad = mask < 0.5
        h = self.mix(h, src_key_padding_mask=pad)
        scores = torch.einsum("qd,bld->bql", self.queries, h) / h.shape[-1] ** 0.5
        scores = scores.masked_fill(pad[:, None, :], float("-inf"))
        return self.out(torch.einsum("bql,bld->bqd", scores.softmax(-1), h).flatten(1))


class UNet1d(nn.Module):
    """``net(x, t, cond)`` with x [B, mels, T] (T divisible by 2 ** (levels - 1)), t [B] in
    [0, 1], cond {"tokens": [B, L, cond_dim], "mask": [B, L]} and, when ``pitch_classes`` > 0,
    "pitch": [B, pitch_classes] (the notes the prompt names, see ``score``)."""

    def __init__(self, mels: int = 128, channels: int = 192, mults=(1, 1, 2), blocks: int = 2,
                 cond_dim: int = 384, max_tokens: int = 16, text_width: int = 128, emb: int = 256,
                 pitch_classes: int = 0):
        super().__init__()
        self.config = dict(mels=mels, channels=channels, mults=list(mults), blocks=blocks, cond_dim=cond_dim,
                           max_tokens=max_tokens, text_width=text_width, emb=emb, pitch_classes=pitch_classes)
        self.time = nn.Sequential(nn.Linear(channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.text = PromptEncoder(cond_dim, text_width, emb, max_tokens)
        self.pitch = nn.Sequential(nn.Linear(pitch_classes, emb), nn.SiLU(), nn.Linear(emb, emb)) if pitch_classes else None
        self.inp = nn.Conv1d(mels + 1, channels, 3, padding=1)
        widths = [channels * m for m in mults]
        self.down, skips, cin = nn.ModuleList(), [channels], channels
        for level, width in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResBlock(cin, width, emb))
                cin = width
                skips.append(cin)
            if level < len(widths) - 1:
                self.down.append(nn.Conv1d(cin, cin, 3, stride=2, padding=1))
                skips.append(cin)
        self.mid = nn.ModuleList([ResBlock(cin, cin, emb), Attention(cin), ResBlock(cin, cin, emb)])
        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(cin + skips.pop(), width, emb))
                cin = width
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.out = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv1d(cin, mels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        # a per-band gain on the input itself, set by the noise level: at low noise the target
        # is mostly the noise in x, which a few channels per frame could not carry through
        self.skip_gain = nn.Linear(emb, mels)
        nn.init.zeros_(self.skip_gain.weight)
        nn.init.zeros_(self.skip_gain.bias)

    @property
    def multiple(self) -> int:
        """Frame counts must be a multiple of this."""
        return 2 ** (len(self.config["mults"]) - 1)

    def forward(self, x, t, cond) -> torch.Tensor:
        e_time = self.time(time_features(t, self.config["channels"]))
        e = e_time + self.text(cond["tokens"].to(x.dtype), cond["mask"])
        if self.pitch is not None:
            e = e + self.pitch(cond["pitch"].to(e.dtype))
        h = self.inp(torch.cat([x, ramp(x).expand(x.shape[0], -1, -1)], dim=1))
        hs = [h]
        for layer in self.down:
            h = layer(h, e) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, e)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), e) if isinstance(layer, ResBlock) else layer(h)
        return self.out(h) + self.skip_gain(e_time)[:, :, None] * x

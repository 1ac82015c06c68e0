"""The text denoiser: a small transformer over the fixed 48-token layout (:mod:`.layout`).

``Transformer(tokens, t, cond) -> logits [n, L, V]``. Bidirectional for masked diffusion; the
same network with ``causal=True`` is the autoregressive baseline (each position sees only the
positions before it and predicts its own token from them). The condition is the MiniLM
sentence vector of the caption, projected to one prefix token the sequence attends to (the
causal model sees it too, as position 0). ``t`` (the masked process's time) is embedded
sinusoidally and added to every position; the causal model is always called at t = 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.dropout = dropout

    def forward(self, h: torch.Tensor, causal: bool) -> torch.Tensor:
        n, length, dim = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=p)
        h = h + self.proj(att.transpose(1, 2).reshape(n, length, dim))
        return h + F.dropout(self.ff(self.norm2(h)), p, self.training)


class Transformer(nn.Module):
    """Pre-norm transformer: token + learned position embeddings, a time embedding, the
    condition as a prefix token, ``layers`` blocks, tied output projection."""

    def __init__(self, vocab: int, length: int = 48, dim: int = 256, layers: int = 4, heads: int = 4,
                 cond_dim: int = 384, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.config = dict(vocab=vocab, length=length, dim=dim, layers=layers, heads=heads, cond_dim=cond_dim,
                           causal=causal, dropout=dropout)
        self.causal = causal
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(length + 1, dim) * 0.02)
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.cond = nn.Linear(cond_dim, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab))
        nn.init.normal_(self.embed.weight, std=0.02)

    def _time(self, t: torch.Tensor, n: int, device) -> torch.Tensor:
        dim = self.embed.weight.shape[1]
        t = torch.as_tensor(t, dtype=torch.float32, device=device).reshape(-1).expand(n)
        freqs = torch.exp(-math.log(1000.0) * torch.arange(dim // 2, device=device) / (dim // 2))
        angles = 1000.0 * t[:, None] * freqs[None]
        return self.time(torch.cat([angles.sin(), angles.cos()], dim=-1))

    def forward(self, tokens: torch.Tensor, t, cond=None) -> torch.Tensor:
        n, length = tokens.shape
        h = self.embed(tokens)
        if cond is None:
            prefix = torch.zeros(n, 1, h.shape[-1], device=h.device, dtype=h.dtype)
        else:
            sentence = cond["sentence"] if isinstance(cond, dict) else cond
            prefix = self.cond(sentence.to(h.dtype)).expand(n, -1)[:, None]
        h = torch.cat([prefix, h], dim=1) + self.position[: length + 1]
        h = h + self._time(t, n, h.device)[:, None]
        for block in self.blocks:
            h = block(h, self.causal)
        h = self.norm(h)
        # bidirectional: position l's logits come from its own state; causal: from the state
        # before it (the prefix predicts the first token)
        h = h[:, :-1] if self.causal else h[:, 1:]
        return h @ self.embed.weight.t() + self.bias

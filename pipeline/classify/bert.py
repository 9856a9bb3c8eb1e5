"""A BERT encoder for inference, in plain torch: what `seci score` and `seci batch` run instead of transformers'.

Importing transformers' `BertModel` costs more than the rest of a `seci score` run (its modelling stack pulls in
generation, masking, hub and kernel modules); this is the same computation in 80 lines. It has the same module
and parameter names as `transformers.BertModel` (so the saved weights, `fuse.py` and `SeciModel` work with it
unchanged) and makes the same torch calls in the same order, so its outputs are the same bit for bit
(tests/test_engine.py compares them). It covers what the shipped bases use: absolute positions, exact GELU, an
encoder without cross-attention; `supports` says whether a base's config is one of those, and the model falls back
to transformers otherwise. Training always uses transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

TOKENIZER = "tokenizer.json"


def base_config(base_dir: str | Path) -> dict[str, Any] | None:
    """The base encoder's config.json as a dict, or None when there is none."""
    path = Path(base_dir) / "config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def supports(config: dict[str, Any] | None) -> bool:
    """Whether `LiteBert` computes exactly what transformers' `BertModel` does for this config."""
    return (
        config is not None
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
        and not config.get("chunk_size_feed_forward", 0)
    )


def sdpa_mask(mask: torch.Tensor) -> torch.Tensor | None:
    """The SDPA mask for a (batch, tokens) padding mask: None without padding, else (batch, 1, 1, tokens) booleans,
    True where a token may be attended to. Transformers expands it to (batch, 1, tokens, tokens); broadcast, the
    CPU kernel reads a tenth of the bytes and the attention runs ~10% faster (same result)."""
    keep = mask.bool()
    if keep.all():
        return None
    return keep[:, None, None, :]


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch, length = input_ids.shape
        positions = torch.arange(length, device=input_ids.device)[None, :]
        token_types = torch.zeros((batch, length), dtype=torch.long, device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_types)
        x = x + self.position_embeddings(positions)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.head_size = cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.head_size**-0.5
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        shape = (*x.shape[:-1], -1, self.head_size)
        q = self.query(x).view(*shape).transpose(1, 2)
        k = self.key(x).view(*shape).transpose(1, 2)
        v = self.value(x).view(*shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=0.0, scale=self.scaling, is_causal=False
        )
        out = out.transpose(1, 2).contiguous()
        return out.reshape(*x.shape[:-1], -1).contiguous()


class _DenseNorm(nn.Module):
    """`dense`, then LayerNorm over the sum with the block's input (BertSelfOutput, BertOutput)."""

    def __init__(self, n_in: int, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = _DenseNorm(cfg.hidden_size, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.intermediate_act_fn: nn.Module = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = _DenseNorm(cfg.intermediate_size, cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        attended = self.attention(x, mask)
        return self.output(self.intermediate(attended), attended)


class BertStack(nn.Module):
    def __init__(self, cfg: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class LiteBert(nn.Module):
    """`transformers.BertModel` without the pooler (seci mean-pools), for inference."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        defaults = {"pad_token_id": 0, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
        self.config = SimpleNamespace(**{**defaults, **config})
        self.embeddings = BertEmbeddings(self.config)
        self.encoder = BertStack(self.config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        x = self.embeddings(input_ids)
        mask = sdpa_mask(attention_mask)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return SimpleNamespace(last_hidden_state=x)


class LiteTokenizer:
    """What the engine needs of a fast tokenizer (its Rust backend and special ids), read from tokenizer.json
    alone: the same backend transformers' `AutoTokenizer` builds for the shipped base, without importing it."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_file(str(path))
        self.cls_token_id = self.backend_tokenizer.token_to_id("[CLS]")
        self.sep_token_id = self.backend_tokenizer.token_to_id("[SEP]")
        self.pad_token_id = self.backend_tokenizer.token_to_id("[PAD]")


def lite_tokenizer(base_dir: str | Path) -> LiteTokenizer | None:
    """The base's tokenizer.json as a `LiteTokenizer`, if it is a BERT WordPiece tokenizer with the usual specials."""
    path = Path(base_dir) / TOKENIZER
    config = base_config(base_dir)
    if not path.is_file() or not supports(config):
        return None
    tokenizer = LiteTokenizer(path)
    if None in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id):
        return None
    return tokenizer

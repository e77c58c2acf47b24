"""ALBERT, Kokoro's "PL-BERT": its modules under the names the checkpoint gives them, and one
pass over a padded batch.

Our own rather than ``transformers.AlbertModel``: the forward is our own pass over the modules
(masks for padded keys, no per-call Python work), so transformers would only build them, and
importing it slows every engine process's start (torch.distributed, dynamo and image utilities
come with it; docs/lab/2026-11-29-start-up.md). The names, shapes and
arithmetic are ALBERT's: embeddings of width ``embedding_size`` (128) with word, position and
token-type (always type 0) tables and a layer norm, a linear map to ``hidden_size``, then one
shared layer (self-attention, post-norm; feed-forward with tanh GELU, post-norm) run
``num_hidden_layers`` times; layer norms with eps 1e-12. ``tests/engine/test_albert.py`` holds
it to ``transformers.AlbertModel`` on the same weights.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realtime.model.config import PLBertConfig

EMBEDDING_SIZE = 128  # ALBERT's default; Kokoro's config does not set it
TOKEN_TYPES = 2
LAYER_NORM_EPS = 1e-12
INIT_STD = 0.02  # ALBERT's initializer range (random models: the tiny test model)


class AlbertEmbeddings(nn.Module):
    def __init__(self, vocab: int, positions: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, EMBEDDING_SIZE, padding_idx=0)
        self.position_embeddings = nn.Embedding(positions, EMBEDDING_SIZE)
        self.token_type_embeddings = nn.Embedding(TOKEN_TYPES, EMBEDDING_SIZE)
        self.LayerNorm = nn.LayerNorm(EMBEDDING_SIZE, eps=LAYER_NORM_EPS)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = (self.word_embeddings(ids) + self.token_type_embeddings.weight[0]
             + self.position_embeddings(positions))
        return self.LayerNorm(x)


class AlbertAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"ALBERT width {width} is not a multiple of {heads} heads")
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        b, t, c = h.shape
        q, k, v = (proj(h).view(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             scale=1.0 / math.sqrt(c // self.heads))
        return self.LayerNorm(h + self.dense(ctx.transpose(1, 2).reshape(b, t, c)))


class AlbertLayer(nn.Module):
    def __init__(self, width: int, heads: int, inner: int) -> None:
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attention = AlbertAttention(width, heads)
        self.ffn = nn.Linear(width, inner)
        self.ffn_output = nn.Linear(inner, width)

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        h = self.attention(h, mask)
        return self.full_layer_layer_norm(
            h + self.ffn_output(F.gelu(self.ffn(h), approximate="tanh")))


class AlbertLayerGroup(nn.Module):
    def __init__(self, width: int, heads: int, inner: int) -> None:
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(width, heads, inner)])


class AlbertEncoder(nn.Module):
    def __init__(self, width: int, heads: int, inner: int) -> None:
        super().__init__()
        self.embedding_hidden_mapping_in = nn.Linear(EMBEDDING_SIZE, width)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(width, heads, inner)])


class Albert(nn.Module):
    """``forward(ids [B, T], pad mask [B, T] True at padding or None)`` -> the last hidden state
    [B, T, hidden_size]. Padded keys are masked out of attention; queries at padding give
    values that nobody reads."""

    def __init__(self, config: PLBertConfig, vocab: int) -> None:
        super().__init__()
        self.layers = config.num_hidden_layers
        self.embeddings = AlbertEmbeddings(vocab, config.max_position_embeddings)
        self.encoder = AlbertEncoder(config.hidden_size, config.num_attention_heads,
                                     config.intermediate_size)
        self._init_random()

    def _init_random(self) -> None:
        """ALBERT's initialisation (only random models keep it; loading replaces every weight)."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Embedding):
                    module.weight.normal_(0.0, INIT_STD)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    module.bias.zero_()
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
                if isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def forward(self, ids: Tensor, pad: Tensor | None) -> Tensor:
        h = self.encoder.embedding_hidden_mapping_in(self.embeddings(ids))
        mask = None if pad is None else ~pad[:, None, None, :]  # [B, 1, 1, T], True: attend
        group = cast(AlbertLayerGroup, self.encoder.albert_layer_groups[0])
        layer = cast(AlbertLayer, group.albert_layers[0])  # shared by every layer
        for _ in range(self.layers):
            h = layer(h, mask)
        return h

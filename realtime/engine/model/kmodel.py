"""KModel: Kokoro-82M's text-to-speech network, written for this project.

phoneme ids -> ALBERT -> prosody predictor (durations, F0, energy) + text encoder
-> alignment by durations -> decoder (AdaIN blocks + iSTFTNet) -> 24 kHz audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import AlbertConfig, AlbertModel

from realtime.errors import InputError

from .config import MAX_PHONEMES, KModelConfig
from .decoder import Decoder
from .text import ProsodyPredictor, TextEncoder


@dataclass(frozen=True, slots=True)
class KOutput:
    """One utterance's result.

    ``audio`` is float32 at 24 kHz; ``durations`` are frames per token (``frame_samples`` audio
    samples each), including the boundary tokens at both ends, so ``len(durations)`` is the
    phoneme count + 2 and ``durations.sum() * frame_samples == len(audio)``.
    """

    audio: Tensor
    durations: Tensor


class KModel(nn.Module):
    """The network. Build it from a :class:`KModelConfig`, then load weights (``weights.py``)."""

    PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")

    def __init__(self, config: KModelConfig) -> None:
        super().__init__()
        self.config = config
        pl = config.plbert
        albert = AlbertConfig(
            vocab_size=config.n_token, hidden_size=pl.hidden_size,
            num_attention_heads=pl.num_attention_heads, intermediate_size=pl.intermediate_size,
            max_position_embeddings=pl.max_position_embeddings,
            num_hidden_layers=pl.num_hidden_layers, hidden_dropout_prob=pl.dropout,
            attention_probs_dropout_prob=pl.dropout)
        self.bert = AlbertModel(albert, add_pooling_layer=False)
        self.bert_encoder = nn.Linear(pl.hidden_size, config.hidden_dim)
        self.predictor = ProsodyPredictor(config.style_dim, config.hidden_dim, config.n_layer,
                                          config.max_dur)
        self.text_encoder = TextEncoder(config.hidden_dim, config.text_encoder_kernel_size,
                                        config.n_layer, config.n_token)
        self.decoder = Decoder(config.hidden_dim, config.style_dim, config.istftnet,
                               config.decoder_hidden, config.decoder_res)
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.bert_encoder.weight.device

    def phonemes_to_ids(self, phonemes: str) -> list[int]:
        """Map a phoneme string onto the vocab; an unknown symbol is an error naming it."""
        vocab = self.config.vocab
        unknown = sorted({c for c in phonemes if c not in vocab})
        if unknown:
            raise InputError("unknown phoneme symbol(s): " + ", ".join(repr(c) for c in unknown))
        return [vocab[c] for c in phonemes]

    @torch.inference_mode()
    def forward(self, phonemes: str | Sequence[int] | Tensor, style: Tensor, speed: float = 1.0,
                seed: int | None = None) -> KOutput:
        """Synthesise one utterance.

        ``phonemes``: a phoneme string, or phoneme ids without the boundary tokens.
        ``style``: the 256-wide style vector (``[256]`` or ``[1, 256]``) for this utterance.
        ``seed``: ``None`` leaves the harmonic source's noise off (deterministic, as the ONNX
        export); an integer draws it from a generator seeded with it (reproducible).
        """
        ids, style, lengths = self._inputs(phonemes, style, speed)
        noise = None
        if seed is not None:
            noise = torch.Generator(device=self.device)
            noise.manual_seed(seed)
        s_dec, s_pro = style[:, :self.config.style_dim], style[:, self.config.style_dim:]
        d, dur = self._durations(ids, s_pro, lengths, speed)
        frames = torch.round(dur[0]).clamp(min=1).long()
        index = torch.repeat_interleave(torch.arange(ids.shape[1], device=self.device), frames)
        en = d.transpose(1, 2)[:, :, index]
        f0, n = self.predictor.f0_n(en, s_pro)
        asr = self.text_encoder(ids, lengths)[:, :, index]
        audio = self.decoder(asr, f0, n, s_dec, noise)
        return KOutput(audio=audio[0].float(), durations=frames)

    @torch.inference_mode()
    def predict_durations(self, phonemes: str | Sequence[int] | Tensor, style: Tensor,
                          speed: float = 1.0) -> Tensor:
        """Continuous (unrounded) frames per token, boundary tokens included: the prosody
        predictor alone, without decoding (cheap: for estimates and diagnostics)."""
        ids, style, lengths = self._inputs(phonemes, style, speed)
        return self._durations(ids, style[:, self.config.style_dim:], lengths, speed)[1][0]

    def _durations(self, ids: Tensor, s_pro: Tensor, lengths: Tensor,
                   speed: float) -> tuple[Tensor, Tensor]:
        hidden = self.bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        d_en = self.bert_encoder(hidden).transpose(1, 2)
        d = self.predictor.text_encoder(d_en, s_pro, lengths)
        speed_t = torch.tensor([float(speed)], device=self.device)
        return d, self.predictor.durations(d, lengths, speed_t)

    def _inputs(self, phonemes: str | Sequence[int] | Tensor, style: Tensor,
                speed: float) -> tuple[Tensor, Tensor, Tensor]:
        ids = self._ids(phonemes)
        style = style.reshape(1, -1).to(self.device, torch.float32)
        if style.shape[1] != 2 * self.config.style_dim:
            raise InputError(f"style vector must have {2 * self.config.style_dim} values, "
                             f"got {style.shape[1]}")
        if not speed > 0:
            raise InputError(f"speed must be positive, got {speed}")
        return ids, style, torch.tensor([ids.shape[1]], device=self.device)

    def _ids(self, phonemes: str | Sequence[int] | Tensor) -> Tensor:
        if isinstance(phonemes, str):
            body = self.phonemes_to_ids(phonemes)
        elif isinstance(phonemes, Tensor):
            body = [int(v) for v in phonemes.reshape(-1).tolist()]
        else:
            body = [int(v) for v in phonemes]
        if not body:
            raise InputError("no phonemes to synthesise")
        if len(body) > MAX_PHONEMES:
            raise InputError(f"{len(body)} phonemes exceed the limit of {MAX_PHONEMES} per chunk")
        bad = [v for v in body if not 0 < v < self.config.n_token]
        if bad:
            raise InputError(f"phoneme ids out of range 1..{self.config.n_token - 1}: {bad[:10]}")
        return torch.tensor([[0, *body, 0]], dtype=torch.long, device=self.device)

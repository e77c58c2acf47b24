"""KModel: Kokoro-82M's text-to-speech network, written for this project.

phoneme ids -> ALBERT -> prosody predictor (durations, F0, energy) + text encoder
-> alignment by durations -> decoder (AdaIN blocks + iSTFTNet) -> 24 kHz audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import AlbertConfig, AlbertModel

from realtime.errors import InputError

from .config import MAX_PHONEMES, KModelConfig
from .decoder import Decoder
from .text import ProsodyPredictor, TextEncoder, pad_mask


@dataclass(frozen=True, slots=True)
class KOutput:
    """One utterance's result.

    ``audio`` is float32 at 24 kHz; ``durations`` are frames per token (``frame_samples`` audio
    samples each), including the boundary tokens at both ends, so ``len(durations)`` is the
    phoneme count + 2 and ``durations.sum() * frame_samples == len(audio)``.
    """

    audio: Tensor
    durations: Tensor


@dataclass(frozen=True, slots=True)
class SynthItem:
    """One utterance for :meth:`KModel.forward_batch` (make it with :meth:`KModel.item`)."""

    ids: tuple[int, ...]  # phoneme ids, without the boundary tokens
    style: Tensor  # [2 * style_dim]
    speed: float = 1.0
    seed: int | None = None  # None: the harmonic source's noise is off


@dataclass(frozen=True, slots=True)
class _TextSide:
    d: list[Tensor]  # per item [T, d_model + style]: the predictor's features
    asr: list[Tensor]  # per item [C, T]: the text encoder's features
    frames: list[Tensor]  # per item [T]: rounded durations in frames


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
        return self.forward_batch([self.item(phonemes, style, speed, seed)])[0]

    def item(self, phonemes: str | Sequence[int] | Tensor, style: Tensor, speed: float = 1.0,
             seed: int | None = None) -> SynthItem:
        """A validated :class:`SynthItem` for :meth:`forward_batch`."""
        ids = self._ids(phonemes)
        style = style.reshape(-1).to(self.device, torch.float32)
        if style.shape[0] != 2 * self.config.style_dim:
            raise InputError(f"style vector must have {2 * self.config.style_dim} values, "
                             f"got {style.shape[0]}")
        if not speed > 0:
            raise InputError(f"speed must be positive, got {speed}")
        return SynthItem(ids, style, float(speed), seed)

    def forward_batch(self, items: Sequence[SynthItem], decoder_batch: int | None = None,
                      batch_text: bool = False) -> list[KOutput]:
        """Synthesise several utterances in one pass; each result equals running it alone.

        The decoder (about 90% of the work) runs over groups of at most ``decoder_batch`` items
        (None: all), padded and masked, taken in order of length so that a group wastes little
        padding. Each item's audio equals its audio alone to float rounding (about 1e-6).

        The text side (ALBERT, the prosody predictor, the text encoder, the F0 and energy
        curves) is cheap and runs item by item unless ``batch_text``. Batched, it is padded and
        masked too and equal to float rounding (about 1e-5), but the harmonic source integrates
        F0 into a phase over the whole utterance, which turns such rounding into sample
        differences of up to ~0.05 late in a long item: inaudible, but not equal.
        """
        out = dict(self.iter_batch(items, decoder_batch, batch_text))
        return [out[b] for b in range(len(items))]

    @torch.inference_mode()
    def iter_batch(self, items: Sequence[SynthItem], decoder_batch: int | None = None,
                   batch_text: bool = False) -> Iterator[tuple[int, KOutput]]:
        """:meth:`forward_batch`, yielding ``(index, output)`` as each decoder group finishes,
        so that a caller can deliver early items before the batch is done. With
        ``decoder_batch=1`` (and the text side item by item) items go in the order given, each
        one's text side just before its decoding."""
        if not items:
            return
        if decoder_batch == 1 and not batch_text:
            for b, it in enumerate(items):
                side = self._text_side([it])
                yield b, self._decode([it], side.d, side.asr, side.frames, batch_text)[0]
            return
        # Row by row unless asked: see forward_batch.
        sides = [self._text_side(items)] if batch_text else [self._text_side([it]) for it in items]
        d_rows = [row for side in sides for row in side.d]
        asr_rows = [row for side in sides for row in side.asr]
        frames = [row for side in sides for row in side.frames]
        totals = [int(f.sum()) for f in frames]
        order = sorted(range(len(items)), key=totals.__getitem__)
        size = decoder_batch or len(items)
        for start in range(0, len(order), size):
            group = order[start:start + size]
            outs = self._decode([items[b] for b in group], [d_rows[b] for b in group],
                                [asr_rows[b] for b in group], [frames[b] for b in group],
                                batch_text)
            yield from zip(group, outs, strict=True)

    def _decode(self, items: Sequence[SynthItem], d_rows: Sequence[Tensor],
                asr_rows: Sequence[Tensor], frames: Sequence[Tensor],
                batch_curves: bool) -> list[KOutput]:
        """Align, F0/energy curves (row by row unless ``batch_curves``), decode one group."""
        style = torch.stack([it.style.to(self.device) for it in items])
        s_dec, s_pro = style[:, :self.config.style_dim], style[:, self.config.style_dim:]
        totals = [int(f.sum()) for f in frames]
        width = max(totals)
        en = d_rows[0].new_zeros(len(items), d_rows[0].shape[1], width)
        asr = asr_rows[0].new_zeros(len(items), asr_rows[0].shape[0], width)
        for j in range(len(items)):
            index = torch.repeat_interleave(torch.arange(len(frames[j]), device=self.device),
                                            frames[j])
            en[j, :, :totals[j]] = d_rows[j].transpose(0, 1)[:, index]
            asr[j, :, :totals[j]] = asr_rows[j][:, index]
        fr = torch.tensor(totals, device=self.device)
        if batch_curves:
            f0, n = self.predictor.f0_n(en, s_pro, fr)
        else:
            f0 = en.new_zeros(len(items), 2 * width)
            n = en.new_zeros(len(items), 2 * width)
            for j in range(len(items)):
                cf, cn = self.predictor.f0_n(en[j:j + 1, :, :totals[j]], s_pro[j:j + 1])
                f0[j, :cf.shape[1]], n[j, :cn.shape[1]] = cf[0], cn[0]
        noise = [self._noise(it.seed) for it in items]
        wave = self.decoder(asr, f0, n, s_dec, noise, fr)
        return [KOutput(audio=wave[j, :totals[j] * self.config.frame_samples].float(),
                        durations=frames[j]) for j in range(len(items))]

    @torch.inference_mode()
    def predict_durations(self, phonemes: str | Sequence[int] | Tensor, style: Tensor,
                          speed: float = 1.0) -> Tensor:
        """Continuous (unrounded) frames per token, boundary tokens included: the prosody
        predictor alone, without decoding (cheap: for estimates and diagnostics)."""
        it = self.item(phonemes, style, speed)
        ids = torch.tensor([[0, *it.ids, 0]], dtype=torch.long, device=self.device)
        lengths = torch.tensor([ids.shape[1]], device=self.device)
        s_pro = it.style[None, self.config.style_dim:]
        speed_t = torch.tensor([it.speed], device=self.device)
        return self._durations(ids, s_pro, lengths, speed_t)[1][0]

    def _text_side(self, items: Sequence[SynthItem]) -> _TextSide:
        """ALBERT, the duration predictor and the text encoder over padded, masked rows."""
        dev = self.device
        lengths = torch.tensor([len(it.ids) + 2 for it in items], device=dev)
        ids = torch.zeros(len(items), int(lengths.max()), dtype=torch.long, device=dev)
        for b, it in enumerate(items):
            ids[b, 1:len(it.ids) + 1] = torch.tensor(it.ids, dtype=torch.long, device=dev)
        s_pro = torch.stack([it.style.to(dev)[self.config.style_dim:] for it in items])
        speed = torch.tensor([it.speed for it in items], device=dev)
        d, dur = self._durations(ids, s_pro, lengths, speed)
        asr = self.text_encoder(ids, lengths)
        sizes = lengths.tolist()
        return _TextSide(
            d=[d[b, :n] for b, n in enumerate(sizes)],
            asr=[asr[b, :, :n] for b, n in enumerate(sizes)],
            frames=[torch.round(dur[b, :n]).clamp(min=1).long() for b, n in enumerate(sizes)])

    def _noise(self, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return gen

    def _durations(self, ids: Tensor, s_pro: Tensor, lengths: Tensor,
                   speed: Tensor) -> tuple[Tensor, Tensor]:
        """ids [B, T] (0-padded past ``lengths``) -> features d [B, T, C] and durations [B, T]."""
        mask = (~pad_mask(lengths, ids.shape[1])).long()
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        d_en = self.bert_encoder(hidden).transpose(1, 2)
        d = self.predictor.text_encoder(d_en, s_pro, lengths)
        return d, self.predictor.durations(d, lengths, speed)

    def _ids(self, phonemes: str | Sequence[int] | Tensor) -> tuple[int, ...]:
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
        return tuple(body)

"""KModel on a tiny random-weight config: shapes, determinism, input validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from realtime.errors import InputError
from realtime.model import KModel, layers
from realtime.model.layers import WNConv1d, conv1d_tiled
from tests.conftest import count_calls

PHONEMES = "hˈɛloʊ wˈɜːld, ðɪs ɪz ə tˈɛst."


def _style(model: KModel) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2 * model.config.style_dim, generator=g) * 0.2


def _clean(model: KModel, text: str) -> str:
    return "".join(c for c in text if c in model.config.vocab)


def test_audio_length_matches_durations(tiny: KModel) -> None:
    text = _clean(tiny, PHONEMES)
    out = tiny(text, _style(tiny))
    assert out.durations.shape == (len(text) + 2,)
    assert bool((out.durations >= 1).all())
    assert out.audio.shape == (int(out.durations.sum()) * tiny.config.frame_samples,)
    assert out.audio.dtype == torch.float32
    assert bool(torch.isfinite(out.audio).all())


def test_ids_and_string_give_the_same_audio(tiny: KModel) -> None:
    text = _clean(tiny, PHONEMES)
    a = tiny(text, _style(tiny))
    b = tiny(tiny.phonemes_to_ids(text), _style(tiny))
    assert torch.equal(a.audio, b.audio)


def test_noise_off_is_deterministic_and_seeds_reproduce(tiny: KModel) -> None:
    text, style = _clean(tiny, PHONEMES), _style(tiny)
    off1, off2 = tiny(text, style).audio, tiny(text, style).audio
    assert torch.equal(off1, off2)
    s7a, s7b = tiny(text, style, seed=7).audio, tiny(text, style, seed=7).audio
    assert torch.equal(s7a, s7b)
    s8 = tiny(text, style, seed=8).audio
    assert not torch.equal(s7a, s8)
    assert not torch.equal(s7a, off1)


def test_faster_speed_means_no_more_frames(tiny: KModel) -> None:
    text, style = _clean(tiny, PHONEMES), _style(tiny)
    slow = tiny(text, style, speed=0.5).durations.sum()
    fast = tiny(text, style, speed=2.0).durations.sum()
    assert fast < slow


def test_unknown_symbol_is_named(tiny: KModel) -> None:
    with pytest.raises(InputError, match="'Q'"):
        tiny("hɛQlo", _style(tiny))


@pytest.mark.parametrize(
    ("phonemes", "message"),
    [("", "no phonemes"), ("a" * 511, "exceed"), ([0, 1], "out of range")],
)
def test_bad_phoneme_input(tiny: KModel, phonemes: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        tiny(phonemes, _style(tiny))  # type: ignore[arg-type]


def test_bad_style_and_speed(tiny: KModel) -> None:
    with pytest.raises(InputError, match="style vector"):
        tiny("ab", torch.zeros(5))
    with pytest.raises(InputError, match="speed"):
        tiny("ab", _style(tiny), speed=0.0)


def test_kokoro_v1_shape_has_the_official_parameter_count() -> None:
    """Built from Kokoro v1.0's config, the model has the checkpoint's tensors and sizes."""
    from realtime.weights.embedded import embedded_config

    model = KModel(embedded_config())
    counts = {p: sum(t.numel() for t in getattr(model, p).parameters()) for p in model.PARTS}
    # 81,763,410 in the checkpoint, less ALBERT's unused pooler (590,592).
    assert sum(counts.values()) == 81_763_410 - 590_592
    assert counts["predictor"] == 16_194_612
    assert sum(len(getattr(model, p).state_dict()) for p in model.PARTS) == 546
    assert model.config.frame_samples == 600


@pytest.mark.parametrize(("rows", "length", "k", "dilation"),
                         [(1, 4001, 11, 1), (3, 2500, 7, 5), (2, 2048, 3, 3), (1, 3000, 1, 1)])
def test_tiled_convolution_equals_one_convolution(rows: int, length: int, k: int,
                                                  dilation: int) -> None:
    g = torch.Generator().manual_seed(k)
    x = torch.randn(rows, 8, length, generator=g)
    w, b = torch.randn(6, 8, k, generator=g), torch.randn(6, generator=g)
    pad = dilation * (k - 1) // 2
    want = F.conv1d(x, w, b, padding=pad, dilation=dilation)
    for tile in (256, 1000):
        got = conv1d_tiled(x, w, b, pad, dilation, tile)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_long_cpu_float32_convolutions_take_the_tiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = WNConv1d(4, 4, 11, dilation=3, padding=15)
    calls = count_calls(monkeypatch, layers, "conv1d_tiled")
    x = torch.randn(2, 4, 2 * layers.CPU_CONVS.tile)
    with torch.inference_mode():
        want = F.conv1d(x, conv.weight, conv.bias, padding=15, dilation=3)
        torch.testing.assert_close(conv(x), want, rtol=1e-5, atol=1e-4)
        assert len(calls) == 1
        conv(x[..., :layers.CPU_CONVS.tile])  # short: one convolution
        with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 kernels: not measured
            conv(x)
        conv.convs = layers.CpuConvs(tile=0)
        conv(x)
    assert len(calls) == 1

"""The FFT convolution (model/fftconv.py) and where the model uses it: the same sums as
``F.conv1d``, rows that do not mix, and the tiny model's batches through it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from realtime.bench.quality import mel_distance_db
from realtime.model import layers
from realtime.model.fftconv import block_length, conv1d_fft, weight_spectrum
from realtime.model.layers import WNConv1d
from tests.conftest import count_calls, quiet_tiny_model
from tests.engine.test_batch import FLOOR_DB, items


@pytest.mark.parametrize(("rows", "width", "taps", "dilation", "padding"),
                         [(1, 4001, 11, 1, 5), (3, 700, 7, 5, 15), (2, 300, 11, 3, 15),
                          (1, 12, 7, 1, 3), (2, 1000, 7, 2, 0), (1, 257, 3, 1, 4),
                          (4, 100, 11, 5, 25)])
def test_the_fft_convolution_equals_f_conv1d(rows: int, width: int, taps: int, dilation: int,
                                             padding: int) -> None:
    """In float64 the sums agree to rounding; in float32 to about 1e-6 of the output's scale.
    Widths shorter than a block, several rows, every dilation the model uses, padding from none
    to more than the kernel needs."""
    g = torch.Generator().manual_seed(taps * 100 + dilation)
    x = torch.randn(rows, 9, width, generator=g, dtype=torch.float64)
    w = torch.randn(5, 9, taps, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    length = block_length(taps)
    for bias in (b, None):
        want = F.conv1d(x, w, bias, padding=padding, dilation=dilation)
        got = conv1d_fft(x, weight_spectrum(w, length), bias, padding, taps, dilation)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    want = F.conv1d(x.float(), w.float(), b.float(), padding=padding, dilation=dilation)
    got = conv1d_fft(x.float(), weight_spectrum(w.float(), length), b.float(), padding, taps,
                     dilation)
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_segments_give_the_same_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long row goes through in segments of blocks; one block per segment, or all in one,
    the output is the same."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3000, generator=g, dtype=torch.float64)
    w = torch.randn(4, 6, 11, generator=g, dtype=torch.float64)
    spectrum = weight_spectrum(w, block_length(11))
    whole = conv1d_fft(x, spectrum, None, 15, 11, 3)
    monkeypatch.setattr("realtime.model.fftconv.SEGMENT_BYTES", 1)
    torch.testing.assert_close(conv1d_fft(x, spectrum, None, 15, 11, 3), whole,
                               rtol=1e-12, atol=1e-12)


def test_block_lengths() -> None:
    assert [block_length(k) for k in (3, 7, 9, 11, 17, 19)] == [32, 32, 32, 64, 64, 128]


def test_rows_do_not_mix() -> None:
    """A row's output does not move when the other rows change (same shapes): each block is
    its own column of the product."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 64, 2000, generator=g)
    w = torch.randn(64, 64, 11, generator=g) * 0.05
    spectrum = weight_spectrum(w, block_length(11))
    first = conv1d_fft(x, spectrum, None, 25, 11, 5)
    x[1:] = torch.randn(2, 64, 2000, generator=g) * 100
    assert torch.equal(conv1d_fft(x, spectrum, None, 25, 11, 5)[0], first[0])


def test_input_shorter_than_the_kernel_is_refused() -> None:
    w = torch.randn(2, 2, 11)
    with pytest.raises(ValueError, match="shorter than the kernel"):
        conv1d_fft(torch.randn(1, 2, 9), weight_spectrum(w, 64), None, 0, 11)


def test_wide_cpu_float32_convolutions_take_the_fft_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which layers go through the FFT: k >= 7 between layers of >= 64 channels, float32 on a
    CPU, under inference mode, rows of at least 4 blocks; the spectra are kept and follow the
    weights; ``fft = False`` turns it off."""
    calls = count_calls(monkeypatch, layers, "conv1d_fft")
    conv = WNConv1d(64, 64, 7, dilation=3, padding=9)
    narrow = (WNConv1d(64, 32, 7, padding=3), WNConv1d(64, 64, 5, padding=2),
              WNConv1d(64, 64, 7, stride=2, padding=3))
    x = torch.randn(2, 64, 600)
    with torch.inference_mode():
        want = F.conv1d(x, conv.weight, conv.bias, padding=9, dilation=3)
        got = conv(x)
        assert len(calls) == 1
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())
        spectrum = conv.spectrum(block_length(7))
        conv(x)
        assert conv.spectrum(block_length(7)) is spectrum  # kept
        conv(x[..., :4 * block_length(7) - 1])  # under 4 blocks: directly
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x)
        for other in narrow:
            assert other.fft_length() == 0
            other(x)
        assert len(calls) == 2
    conv(x)  # outside inference mode (training): directly, nothing kept for autograd
    assert len(calls) == 2
    with torch.no_grad():
        conv.weight_g.mul_(2)  # new weights: new spectra
    with torch.inference_mode():
        want = F.conv1d(x, conv.weight, conv.bias, padding=9, dilation=3)
        got = conv(x)
        assert len(calls) == 3
        assert conv.spectrum(block_length(7)) is not spectrum
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())
        conv.convs = layers.CpuConvs(fft=False)
        conv(x)
    assert len(calls) == 3


def test_the_tiny_model_through_the_fft(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny model's layers are too narrow for the FFT; with the thresholds lowered every
    convolution of 3 taps or more goes through it: its audio sounds the same as the direct
    path's, and a batch's rows as each alone, within test_batch's floor for float ordering
    (0.01 dB log-mel; measured up to 0.0007, and 4.7 dB with the output shifted by one
    sample), and a row ignores its neighbours."""
    fft_model = quiet_tiny_model(seed=3)
    batch = items(fft_model, [40, 5, 160, 12], seed=4)
    direct = fft_model.forward_batch(batch)
    assert fft_model.use_fft_convs() == 0  # nothing wide enough at the default thresholds
    calls = count_calls(monkeypatch, layers, "conv1d_fft")
    held = fft_model.use_fft_convs(convs=layers.CpuConvs(fft_taps=3, fft_channels=1))
    assert held > 0
    together = fft_model.forward_batch(batch)
    assert len(calls) > 20
    for d, t, it in zip(direct, together, batch, strict=True):
        assert torch.equal(d.durations, t.durations)
        assert float(d.audio.abs().max()) > 1e-3
        assert mel_distance_db(d.audio.numpy(), t.audio.numpy()) <= FLOOR_DB
        alone = fft_model.forward_batch([it])[0]
        assert mel_distance_db(alone.audio.numpy(), t.audio.numpy()) <= FLOOR_DB
    row = batch[1]
    first = fft_model.forward_batch([row, *items(fft_model, [200, 3], seed=10)])[0].audio
    other = fft_model.forward_batch([row, *items(fft_model, [200, 90], seed=20)])[0].audio
    assert float((first - other).abs().max()) <= 1e-5
    assert fft_model.use_fft_convs(False) == 0
    calls.clear()
    fft_model.forward_batch(batch[:1])
    assert not calls

"""Wide convolutions through the FFT (overlap-save), for the generator's k = 7 and k = 11
kernels on a CPU.

Directly, a convolution with k taps costs ``2 * k * C_in`` flops per output sample and channel.
Through the FFT, the input is cut into overlapping blocks of L samples, each block's spectrum
is multiplied bin by bin with the kernel's (a complex ``C_out x C_in`` product per bin, one
batched matrix product for all blocks) and transformed back, giving ``L - k + 1`` outputs per
block: ``8 * C_in * (L / 2 + 1) / (L - k + 1)`` flops per output sample and channel, 5.2 * C_in
for k = 7 in blocks of 32 and 4.9 * C_in for k = 11 in blocks of 64, against 14 and 22 * C_in
directly. The transforms cost ``O(log L)`` per sample and channel. A dilated kernel reads every
d-th sample, so it is the dense kernel over each of the input's d phases (samples r, r + d,
...): the same spectra and cost as the dense one, whatever the dilation.

The sums are those of the convolution, rounded differently: about 1e-6 of the output's scale
in float32. The kernel's spectra are computed once and kept (``WNConv1d.spectrum``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def block_length(taps: int) -> int:
    """The FFT length for a kernel of ``taps`` taps: the power of two from 32 that is at least
    ``4 * (taps - 1)``, so that at most a quarter of each block's outputs are discarded (32 for
    k = 7, 64 for k = 11). Longer blocks waste less on the wrap-around but make the spectra
    larger, for little or no gain in speed (docs/lab/2026-11-29-cpu-fft-convolutions.md)."""
    length = 32
    while length < 4 * (taps - 1):
        length *= 2
    return length


def weight_spectrum(weight: Tensor, length: int) -> Tensor:
    """weight [C_out, C_in, k] (a cross-correlation, as ``F.conv1d`` reads it) -> the spectra
    [length // 2 + 1, C_out, C_in] (complex) of its reversed taps. A dilated kernel has the
    same spectra as its dense one: :func:`conv1d_fft` runs it over the input's phases."""
    return torch.fft.rfft(weight.flip(-1), n=length).permute(2, 0, 1).contiguous()


def conv1d_fft(x: Tensor, spectrum: Tensor, bias: Tensor | None, padding: int, taps: int,
               dilation: int = 1) -> Tensor:
    """``F.conv1d`` (stride 1, one group) of x [B, C_in, T] with zero ``padding`` at both ends,
    for the ``taps``-tap kernel whose :func:`weight_spectrum` is ``spectrum``, at ``dilation``
    -> [B, C_out, T + 2 * padding - dilation * (taps - 1)].

    A kernel at dilation d reads every d-th sample, so the input's d phases (samples r, r + d,
    r + 2d, ...) are convolved with the dense kernel each on their own and their outputs
    interleaved; the blocks of every phase and row go through the product together. Each
    output sample is computed from its own block alone: rows do not mix."""
    bins, c_out, c_in = spectrum.shape
    length = 2 * (bins - 1)
    step = length - taps + 1
    rows, _, width = x.shape
    out = width + 2 * padding - dilation * (taps - 1)
    if out < 1:
        raise ValueError(f"input of {width} samples is shorter than the kernel")
    per_phase = -(-out // dilation)
    n = -(-per_phase // step)
    padded = dilation * ((n - 1) * step + length)
    x = F.pad(x, (padding, padded - width - padding)).contiguous()
    # blocks[b, c, r, i, l] = x[b, c, (i * step + l) * d + r]: phase r's block i, as a view.
    blocks = x.as_strided((rows, c_in, dilation, n, length),
                          (c_in * padded, padded, 1, step * dilation, dilation))
    # A segment's columns (blocks of every row and phase) go through the transforms and the
    # product together, in layouts that read contiguous memory: their spectra [bins, C_in,
    # cols], the product [bins, C_out, cols], transformed back from [C_out, cols, bins]. The
    # bias goes into bin 0 (a constant b adds L * b there). Segments keep those arrays near
    # SEGMENT_BYTES, within the CPU's caches: a long row in one piece is slower
    # (docs/lab/2026-11-29-cpu-fft-convolutions.md).
    y = x.new_empty(rows, c_out, n, step, dilation)
    column = spectrum.element_size() * bins * max(c_in, c_out)  # one block's spectra, bytes
    per = max(1, SEGMENT_BYTES // (column * rows * dilation))
    for first in range(0, n, per):
        part = blocks[:, :, :, first:first + per]
        m = part.shape[3]
        spectra = torch.fft.rfft(part, dim=-1).permute(4, 1, 0, 2, 3)
        product = torch.bmm(spectrum, spectra.reshape(bins, c_in, -1).contiguous())
        if bias is not None:
            product[0].add_(bias[:, None], alpha=length)
        back = torch.fft.irfft(product.permute(1, 2, 0).contiguous(), n=length, dim=-1)
        # Each block's last ``step`` samples (its first taps - 1 wrap around); output sample
        # (i * step + l) * d + r is phase r's, block i's, sample l.
        back = back.view(c_out, rows, dilation, m, length)[..., taps - 1:]
        y[:, :, first:first + m] = back.permute(1, 0, 3, 4, 2)
    return y.view(rows, c_out, n * step * dilation)[..., :out]


SEGMENT_BYTES = 8 << 20

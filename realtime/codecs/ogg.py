"""Ogg Opus (RFC 3533 pages, RFC 7845 mapping), written page by page for HTTP streaming.

Granule positions count 48 kHz samples decoded through the last packet of a page, pre-skip
included; the last page's granule is trimmed to the real audio, so decoders drop the padding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from realtime.codecs.config import INPUT_RATE
from realtime.codecs.encoder import Frame, StreamEncoder, make_encoder
from realtime.codecs.opus import OPUS_RATE

_BOS, _EOS = 0x02, 0x04
_MAX_SEGMENTS = 255


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, initial 0, not reflected, no final xor."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def _lacing(packet: bytes) -> bytes:
    return bytes([255] * (len(packet) // 255) + [len(packet) % 255])


def ogg_page(
    packets: list[bytes], granule: int, serial: int, sequence: int, flags: int = 0
) -> bytes:
    """One page holding whole packets (each must fit: at most 255 lacing values in all)."""
    lacing = b"".join(_lacing(p) for p in packets)
    if len(lacing) > _MAX_SEGMENTS:
        raise ValueError("packets do not fit one Ogg page")
    header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + lacing + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


def opus_head(pre_skip: int, input_rate: int) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, input_rate, 0, 0)


def opus_tags(vendor: str = "realtime") -> bytes:
    v = vendor.encode()
    return b"OpusTags" + struct.pack("<I", len(v)) + v + struct.pack("<I", 0)


class OggOpusWriter:
    """Wraps Opus packets (``Frame``s from an opus ``StreamEncoder``) into Ogg pages.

    ``sample_rate`` is the encoder's rate and ``lookahead`` its ``StreamEncoder.lookahead``.

    ``header()`` first, then ``write(frames)`` returns the pages completed (a page closes once it
    holds ``page_ms`` of audio), then ``finish(last_frames)`` the rest with the EOS flag.
    """

    def __init__(
        self, sample_rate: int, lookahead: int, input_rate: int = INPUT_RATE,
        serial: int = 0x7EA1, page_ms: int = 100,
    ) -> None:
        self.scale = OPUS_RATE // sample_rate  # all Opus rates divide 48000
        self.pre_skip = lookahead * self.scale  # the encoder's lookahead, counted at 48 kHz
        self._input_rate = input_rate
        self._serial = serial
        self._page_ms = page_ms
        self._sequence = 0
        self._granule = 0  # decoded 48 kHz samples through the last packet written
        self._valid = 0  # real audio in those, at 48 kHz
        self._pending: list[Frame] = []
        self.packets = 0  # packets written to pages so far

    def header(self) -> bytes:
        head = self._page([opus_head(self.pre_skip, self._input_rate)], 0, _BOS)
        return head + self._page([opus_tags()], 0, 0)

    def write(self, frames: Iterable[Frame]) -> bytes:
        out = []
        for frame in frames:
            if self._segments([*self._pending, frame]) > _MAX_SEGMENTS:
                out.append(self._emit(0))
            self._pending.append(frame)
            if sum(f.frame_ms for f in self._pending) >= self._page_ms:
                out.append(self._emit(0))
        return b"".join(out)

    def finish(self, frames: Iterable[Frame] = ()) -> bytes:
        """The last page, flagged EOS, holding ``frames`` (the encoder's flush: all the padding
        is in them, so the final granule can trim it)."""
        frames = list(frames)
        head = b""
        if self._segments([*self._pending, *frames]) > _MAX_SEGMENTS:
            head = self._emit(0)
        self._pending.extend(frames)
        return head + self._emit(_EOS)

    @staticmethod
    def _segments(frames: list[Frame]) -> int:
        return sum(len(f.data) // 255 + 1 for f in frames)

    def _emit(self, flags: int) -> bytes:
        previous = self._granule
        for f in self._pending:
            self._granule += f.samples * self.scale
            self._valid += f.valid_samples * self.scale
        granule = self._granule
        if flags & _EOS:
            # End trimming: only the real audio plays (never below the previous page's granule).
            granule = min(granule, max(previous, self.pre_skip + self._valid))
        page = self._page([f.data for f in self._pending], granule, flags)
        self.packets += len(self._pending)
        self._pending = []
        return page

    def _page(self, packets: list[bytes], granule: int, flags: int) -> bytes:
        page = ogg_page(packets, granule, self._serial, self._sequence, flags)
        self._sequence += 1
        return page


class OggOpusStream:
    """Float samples at 24 kHz in, Ogg Opus bytes out, for ``response_format=opus`` over HTTP."""

    def __init__(
        self, sample_rate: int = 48000, frame_ms: int = 20, page_ms: int = 100,
        bitrate: int | None = None, complexity: int = 9, input_rate: int = INPUT_RATE,
    ) -> None:
        self.encoder: StreamEncoder = make_encoder(
            "opus", sample_rate, frame_ms, bitrate=bitrate, complexity=complexity,
            input_rate=input_rate,
        )
        self.writer = OggOpusWriter(
            sample_rate, self.encoder.lookahead, input_rate=input_rate, page_ms=page_ms
        )

    def header(self) -> bytes:
        return self.writer.header()

    def push(self, samples: np.ndarray) -> bytes:
        return self.writer.write(self.encoder.push(samples))

    def finish(self) -> bytes:
        frames = self.encoder.flush()
        if not frames and not self.writer.packets:
            # No audio at all: one silent packet trimmed to nothing keeps the file valid.
            config = self.encoder.config
            silence = np.zeros(config.input_rate * config.frame_ms // 1000, dtype=np.float32)
            frames = self.encoder.push(silence) + self.encoder.flush()
            frames = [replace(f, valid_samples=0) for f in frames]
        return self.writer.finish(frames)


def ogg_opus_bytes(samples: np.ndarray, sample_rate: int = 48000, **opts: int) -> bytes:
    """A whole Ogg Opus file from float samples at 24 kHz."""
    stream = OggOpusStream(sample_rate, **opts)
    return stream.header() + stream.push(samples) + stream.finish()

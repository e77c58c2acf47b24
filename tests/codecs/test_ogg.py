from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.codecs.ogg import OggOpusStream, ogg_crc, ogg_opus_bytes, ogg_page
from realtime.codecs.resample import resample
from tests.codecs.helpers import best_snr_db, speech_like, split

SIGNAL = speech_like(1.0)[:23999]  # not a whole number of frames: the end must be trimmed


def parse_pages(data: bytes) -> list[dict[str, Any]]:
    """A small independent Ogg reader: checks capture pattern and CRC, splits packets."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        version, flags, granule, serial, seq, crc, n = struct.unpack_from("<BBqIIIB", data, pos + 4)
        lacing = data[pos + 27:pos + 27 + n]
        end = pos + 27 + n + sum(lacing)
        raw = bytearray(data[pos:end])
        raw[22:26] = b"\0\0\0\0"
        assert version == 0 and ogg_crc(bytes(raw)) == crc
        packets, body, current = [], pos + 27 + n, b""
        for value in lacing:
            current += data[body:body + value]
            body += value
            if value < 255:
                packets.append(current)
                current = b""
        pages.append({"flags": flags, "granule": granule, "serial": serial, "seq": seq,
                      "packets": packets})
        pos = end
    return pages


def test_crc_check_value() -> None:
    # CRC-32 with polynomial 0x04C11DB7, init 0, no reflection, no final xor ("123456789").
    assert ogg_crc(b"123456789") == 0x89A1897F
    assert ogg_crc(b"") == 0


def test_long_packets_use_255_lacing() -> None:
    page = ogg_page([b"x" * 600, b"y" * 255], granule=7, serial=1, sequence=0)
    assert parse_pages(page)[0]["packets"] == [b"x" * 600, b"y" * 255]
    assert page[26] == 3 + 2  # 255, 255, 90 | 255, 0


@pytest.mark.parametrize(("rate", "frame_ms"), [(48000, 20), (8000, 60), (16000, 10)])
def test_headers_granules_and_end_trimming(rate: int, frame_ms: int) -> None:
    stream = OggOpusStream(rate, frame_ms)
    data = stream.header() + stream.push(SIGNAL) + stream.finish()
    pages = parse_pages(data)
    head = pages[0]["packets"][0]
    assert pages[0]["flags"] == 0x02 and head[:8] == b"OpusHead" and pages[0]["granule"] == 0
    version, channels, pre_skip, input_rate, gain, family = struct.unpack("<BBHIhB", head[8:])
    assert (version, channels, input_rate, gain, family) == (1, 1, 24000, 0, 0)
    assert pre_skip == stream.encoder.lookahead * 48000 // rate
    assert pages[1]["packets"][0][:8] == b"OpusTags" and pages[1]["granule"] == 0
    assert [p["seq"] for p in pages] == list(range(len(pages)))
    assert {p["serial"] for p in pages} == {pages[0]["serial"]}
    audio = pages[2:]
    assert all(p["flags"] == 0 for p in audio[:-1]) and audio[-1]["flags"] == 0x04
    granules = [p["granule"] for p in audio]
    assert granules == sorted(granules)
    per_packet = 48 * frame_ms
    counted = 0
    for page in audio[:-1]:
        counted += len(page["packets"]) * per_packet
        assert page["granule"] == counted
    # The last page's granule ends at the real audio: pre-skip + the input's length at 48 kHz.
    expected = len(resample(SIGNAL, 24000, rate)) * (48000 // rate)
    assert granules[-1] == pre_skip + expected
    assert granules[-1] <= counted + len(audio[-1]["packets"]) * per_packet


def test_streaming_equals_whole() -> None:
    stream = OggOpusStream(48000, 20)
    parts = [stream.header()] + [stream.push(p) for p in split(SIGNAL, [777, 3000])]
    assert b"".join(parts) + stream.finish() == ogg_opus_bytes(SIGNAL, 48000)
    assert parts[1] == b""  # less than a page of audio so far: nothing to send yet


@pytest.mark.skipif(shutil.which("opusdec") is None, reason="opusdec (opus-tools) not installed")
@pytest.mark.parametrize(("rate", "frame_ms"), [(48000, 20), (24000, 60), (8000, 10)])
def test_opusdec_decodes_to_the_expected_duration(
    tmp_path: Path, rate: int, frame_ms: int
) -> None:
    src, dst = tmp_path / "speech.opus", tmp_path / "speech.wav"
    src.write_bytes(ogg_opus_bytes(SIGNAL, rate, frame_ms=frame_ms))
    done = subprocess.run(["opusdec", "--quiet", "--rate", "48000", str(src), str(dst)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with wave.open(str(dst)) as w:
        assert w.getframerate() == 48000
        n = w.getnframes()
        out = np.frombuffer(w.readframes(n), "<i2").astype(np.float32) / 32768
    # 23999 samples at 24 kHz; at the codec rate the resampler rounds to the nearest sample.
    expected = len(resample(SIGNAL, 24000, rate)) * (48000 // rate)
    assert n == expected
    assert abs(n - 2 * len(SIGNAL)) <= 48000 // rate
    # The pre-skip lines the audio up with the input (within a few samples).
    assert best_snr_db(resample(SIGNAL, 24000, 48000), out, max_lag=6) > 6.0


@pytest.mark.parametrize("length", [1, 239, 240, 241, 479, 480, 2400, 4797, 12000])
def test_end_trimming_for_any_length(length: int) -> None:
    # 10 ms frames and 20 ms pages: the flush's padding frames must all land on the EOS page.
    stream = OggOpusStream(48000, 10, page_ms=20)
    data = stream.header() + stream.push(SIGNAL[:length]) + stream.finish()
    pages = parse_pages(data)
    assert pages[-1]["flags"] == 0x04
    assert pages[-1]["granule"] == stream.writer.pre_skip + 2 * length
    assert pages[-1]["granule"] >= pages[-2]["granule"]


@pytest.mark.skipif(shutil.which("opusdec") is None, reason="opusdec (opus-tools) not installed")
def test_empty_input_is_still_a_valid_file(tmp_path: Path) -> None:
    data = ogg_opus_bytes(np.zeros(0, np.float32))
    pages = parse_pages(data)
    (pre_skip,) = struct.unpack_from("<H", pages[0]["packets"][0], 10)
    assert pages[-1]["flags"] == 0x04 and pages[-1]["granule"] == pre_skip
    (tmp_path / "empty.opus").write_bytes(data)
    done = subprocess.run(["opusdec", "--quiet", "--rate", "48000", str(tmp_path / "empty.opus"),
                           str(tmp_path / "empty.wav")], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with wave.open(str(tmp_path / "empty.wav")) as w:
        assert w.getnframes() == 0

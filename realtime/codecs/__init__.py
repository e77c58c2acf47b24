"""Audio codecs and containers. Takes samples, knows nothing else.

- ``make_encoder(codec, sample_rate, frame_ms)`` -> ``StreamEncoder``: push 24 kHz float chunks,
  get fixed-duration ``Frame``s (Opus packets, PCM16-LE, mu-law, A-law); ``flush``, ``reset``.
- ``CODECS``, ``SAMPLE_RATES``, ``FRAME_MS``: what is supported (for ``ready``).
- ``wav``: WAV files and the streaming WAV header; ``ogg``: Ogg Opus for HTTP; ``mp3``:
  streaming MP3 (LAME) for HTTP.
- ``twilio``: Twilio Media Streams messages for mu-law/8000.
"""

from realtime.codecs.config import CODECS, FRAME_MS, INPUT_RATE, SAMPLE_RATES, EncoderConfig
from realtime.codecs.encoder import Frame, StreamEncoder, make_encoder

__all__ = [
    "CODECS", "FRAME_MS", "INPUT_RATE", "SAMPLE_RATES", "EncoderConfig", "Frame",
    "StreamEncoder", "make_encoder",
]

"""Stream LLM-like text deltas through ``realtime.integrations.livekit.TTS`` and save the audio.

Start a server (``make serve``), then::

    python examples/livekit_tts.py [out.wav] [--url ws://127.0.0.1:8000/v1/stream]

The script drives the plugin as LiveKit's agent pipeline does (``push_text`` per delta,
``flush``, ``end_input``, then the ``SynthesizedAudio`` events), writes the audio to a WAV
file and prints the aligned transcript: each word with its start and end on the stream's
audio timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import wave
from pathlib import Path

from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, TimedString

from realtime.integrations.livekit import DEFAULT_URL, TTS

TEXT = ("Hi! I'm your voice assistant. The weather in Paris is sunny today, "
        "with a high of 24 degrees. Would you like me to book a table for dinner?")


def deltas(text: str, rng: random.Random) -> list[str]:
    """The text cut as an LLM streams it: pieces of a few characters, split anywhere."""
    out, i = [], 0
    while i < len(text):
        n = rng.randint(2, 7)
        out.append(text[i:i + n])
        i += n
    return out


async def main(args: argparse.Namespace) -> None:
    async with TTS(url=args.url, voice=args.voice, api_key=args.api_key) as tts:
        stream = tts.stream()

        async def feed() -> None:
            for delta in deltas(args.text, random.Random(0)):
                stream.push_text(delta)
                await asyncio.sleep(0.02)  # an LLM's pace: ~50 deltas a second
            stream.flush()
            stream.end_input()

        feeder = asyncio.create_task(feed())
        frames: list[rtc.AudioFrame] = []
        words: list[TimedString] = []
        async with stream:
            async for ev in stream:
                frames.append(ev.frame)
                words.extend(ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, []))
        await feeder

    audio = rtc.combine_audio_frames(frames)
    with wave.open(str(args.out), "wb") as wav:
        wav.setnchannels(audio.num_channels)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.data.tobytes())
    print(f"wrote {args.out}: {audio.duration:.2f} s at {audio.sample_rate} Hz")
    for word in words:
        if word.strip():
            print(f"{word.strip():>12}  {word.start_time:6.3f}  {word.end_time:6.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("livekit_tts.wav"))
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--text", default=TEXT)
    asyncio.run(main(parser.parse_args()))

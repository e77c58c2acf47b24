"""A pipecat pipeline speaking an LLM-like token stream through realtime.

    make serve                                  # in another shell
    .venv/bin/python examples/pipecat_agent.py -o agent.wav

The "LLM" here is a processor that streams a canned answer a few characters at a time, as a
model's tokens arrive; ``RealtimeTTSService`` speaks it; a sink writes the audio to a WAV file and
prints each word as pipecat times it (the server's word alignment). See docs/integrations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import wave
from pathlib import Path

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from realtime.integrations.pipecat import RealtimeTTSService

ANSWER = ("Sure! Your order of $4.50 shipped on March 3rd. It should arrive by Friday, "
          "and I'll text you the tracking number as soon as it's ready.")


class TokenStream(FrameProcessor):
    """Plays an LLM: once the pipeline starts, the answer in 3-character tokens, 30 a second."""

    def __init__(self, answer: str, tokens_per_s: float = 30.0) -> None:
        super().__init__()
        self._answer, self._pause = answer, 1.0 / tokens_per_s

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._speak(), name="tokens")

    async def _speak(self) -> None:
        await self.push_frame(LLMFullResponseStartFrame())
        for i in range(0, len(self._answer), 3):
            await self.push_frame(LLMTextFrame(self._answer[i:i + 3]))
            await asyncio.sleep(self._pause)
        await self.push_frame(LLMFullResponseEndFrame())


class WavSink(FrameProcessor):
    """Writes the audio to a WAV file and prints each word with its time in the audio."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._wav: wave.Wave_write | None = None
        self._start_ns: int | None = None  # the pipeline clock at the first audio
        self._words: list[tuple[int, str]] = []  # (pts, word): a word may come before audio

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            if self._wav is None:
                self._start_ns = self.get_clock().get_time()
                self._wav = wave.open(str(self._path), "wb")  # noqa: SIM115 (closed at EndFrame)
                self._wav.setnchannels(1)
                self._wav.setsampwidth(2)
                self._wav.setframerate(frame.sample_rate)
            self._wav.writeframes(frame.audio)
        elif isinstance(frame, TTSTextFrame) and frame.pts:
            self._words.append((frame.pts, frame.text))
        elif isinstance(frame, EndFrame) and self._wav is not None:
            self._wav.close()
            for pts, word in self._words:
                print(f"{(pts - (self._start_ns or 0)) / 1e9:7.2f} s  {word}")
        await self.push_frame(frame, direction)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/stream")
    p.add_argument("--voice", default="af_heart")
    p.add_argument("--api-key", default=None)
    p.add_argument("--rate", type=int, default=24000, help="the pipeline's output rate")
    p.add_argument("--text", default=ANSWER)
    p.add_argument("-o", "--output", type=Path, default=Path("pipecat_agent.wav"))
    args = p.parse_args()

    tts = RealtimeTTSService(url=args.url, voice=args.voice, api_key=args.api_key)
    sink = WavSink(args.output)
    worker = PipelineWorker(Pipeline([TokenStream(args.text), tts, sink]),
                            params=PipelineParams(audio_out_sample_rate=args.rate,
                                                  enable_metrics=True),
                            cancel_on_idle_timeout=False)

    @worker.event_handler("on_pipeline_started")
    async def started(worker: PipelineWorker, frame: Frame) -> None:
        # the answer takes about len/90 s to stream; its audio ends a little after that
        await asyncio.sleep(len(args.text) / 90 + 1.0)
        await worker.queue_frame(EndFrame())  # ends once all the audio is out

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await runner.run()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    asyncio.run(main())

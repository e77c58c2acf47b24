"""The ``realtime`` command line: ``say``, ``bench``, ``models``, ``voices``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from realtime.config import DTYPES
from realtime.errors import ConfigError, InputError, RealtimeError
from realtime.text.languages import AUTO, LANGUAGES

if TYPE_CHECKING:
    from realtime.config import ServerConfig
    from realtime.weights.registry import LoadedModel

log = logging.getLogger("realtime")


def _model_args(p: argparse.ArgumentParser) -> None:
    from realtime.catalog import DEFAULT_MODEL, MODEL_DESCRIPTIONS

    p.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODEL_DESCRIPTIONS),
                   help=f"registered weight set (default {DEFAULT_MODEL})")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="directory with config.json, kokoro-v1_0.pth and voices/ "
                        "(for --model kokoro-v1.0; without it, kokoro-v1.0 is downloaded from "
                        "the Hugging Face hub into the cache dir)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where the embedded import and hub downloads are cached (default "
                        "$REALTIME_CACHE_DIR or ~/.cache/realtime)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realtime", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="synthesise text (or phonemes) to a 24 kHz WAV file")
    say.add_argument("text", help="text to speak (phonemes with --phonemes)")
    say.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    say.add_argument("--voice", default=None, help="voice or blend, e.g. jf_alpha(2)+jm_kumo(1)")
    say.add_argument("--speed", type=float, default=1.0, help="speaking rate (1.0 = normal)")
    say.add_argument("--phonemes", action="store_true", help="TEXT is phonemes, not English")
    say.add_argument("--language", default=AUTO, choices=[AUTO, *LANGUAGES],
                     help="G2P language (default auto: the voice's own)")
    say.add_argument("--seed", type=int, default=None,
                     help="draw the harmonic-source noise from this seed (default: noise off)")
    say.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                     help="precision (default auto: float16 on CUDA; on a CPU bfloat16 where it "
                          "has bfloat16 arithmetic, else float32)")
    _model_args(say)

    bench = sub.add_parser(
        "bench", help="engine throughput and latency at several concurrencies: sequential, "
                      "batched and onnxruntime on the same chunks (--single: one utterance)")
    bench.add_argument("--concurrency", default=None,
                       help="comma-separated session counts (default 1,2,4,8,16 on a CPU, "
                            "1,8,32,64,128,256 on CUDA)")
    bench.add_argument("--chunks", type=int, default=2, help="chunks per session (default 2)")
    bench.add_argument("--dtype", default="auto",
                       choices=["auto", "float32", "bfloat16", "float16"],
                       help="precision (default auto: float16 on CUDA; on a CPU bfloat16 where "
                            "it has bfloat16 arithmetic, else float32)")
    bench.add_argument("--no-graphs", action="store_true",
                       help="on CUDA, run batches eagerly instead of through CUDA graphs")
    bench.add_argument("--windows", action="store_true",
                       help="the batched mode decodes chunks in windows (1 s, then 3 s), many "
                            "sessions' windows in one batch, eagerly (no CUDA graphs)")
    bench.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime baseline")
    bench.add_argument("--no-cpu-fused-norms", action="store_true",
                       help="on a CPU, run the decoder's norm-and-Snake pairs eagerly (default: "
                            "compiled into fused kernels, as `realtime serve` runs them)")
    bench.add_argument("--png", type=Path, default=Path("bench.png"),
                       help="plot to write (default bench.png)")
    bench.add_argument("--single", action="store_true",
                       help="single-stream comparison only: one utterance, repeated")
    bench.add_argument("--text", default=None, help="English text (--single)")
    bench.add_argument("--repeats", type=int, default=5, help="runs to take the median of "
                                                              "(--single)")
    bench.add_argument("--voice", default=None)
    bench.add_argument("--speed", type=float, default=1.0, help="(--single)")
    bench.add_argument("--json", type=Path, default=None,
                       help="write the figures as JSON (default bench.json without --single)")
    _model_args(bench)

    serve = sub.add_parser(
        "serve", help="run the server: WebSocket streaming, HTTP speech, the web client at /",
        description="The essential settings. Every setting, these too, can be set by an "
                    "environment variable REALTIME_<NAME> (e.g. REALTIME_PORT=9000, "
                    "REALTIME_API_KEYS=k1,k2, REALTIME_MAX_CONTEXTS=4; the whole list: "
                    "docs/configuration.md); flags win.")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    _model_args(serve)
    serve.add_argument("--dtype", default=None, choices=list(DTYPES),
                       help="inference precision (default auto: float16 on CUDA; on a CPU "
                            "bfloat16 where it has bfloat16 arithmetic, else float32)")
    serve.add_argument("--workers", type=int, default=None,
                       help="session worker processes around one engine process (default: the "
                            "CPU cores less one; 0: everything in one process)")
    serve.add_argument("--voice", default=None, help="default voice (default: the model's)")
    serve.add_argument("--language", default=None, help=f"default G2P language: {AUTO} (each "
                       f"voice's own; default) or one of {', '.join(LANGUAGES)}")
    serve.add_argument("--api-key", dest="api_keys", action="append", default=None,
                       help="accept this key (Authorization: Bearer KEY or ?token=KEY); "
                            "repeat for several; none: no authentication")
    serve.add_argument("--allowed-origin", dest="allowed_origins", action="append",
                       default=None, help="WebSocket Origin allow-list; repeat (default: any)")
    serve.add_argument("--max-sessions", type=int, default=None,
                       help="WebSocket sessions at once; one more is closed with 1013 (64)")
    serve.add_argument("--log-level", default=None, help="debug, info, warning (info)")
    serve.add_argument("--drain-timeout", dest="drain_timeout_s", type=float, default=None,
                       help="on SIGTERM, let sessions finish this long before 1001 (30)")
    serve.add_argument("--web-client", default=None, action=argparse.BooleanOptionalAction,
                       help="serve the browser client at / (default on)")
    serve.add_argument("--windows", default=None, choices=["auto", "on", "off"],
                       help="decode chunks in windows, the first audio early (default auto: "
                            "on a CPU)")
    serve.add_argument("--eager", default=None, action="store_true",
                       help="no compiled or captured forms (CUDA graphs, compiled kernels): "
                            "for debugging")

    models = sub.add_parser("models", help="list the registered weight sets")
    models.set_defaults(threads=None)
    voices = sub.add_parser("voices", help="list the voices of a model")
    _model_args(voices)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s [%(session_id)s] %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_session_field)
    try:
        return _run(args)
    except RealtimeError as exc:
        print(f"realtime: error [{exc.code}]: {exc.reason}", file=sys.stderr)
        return 2


def _session_field(record: logging.LogRecord) -> bool:
    """Every record gets a ``session_id`` (``-`` outside a session) for the log format; the
    session layers set theirs through a LoggerAdapter."""
    if not hasattr(record, "session_id"):
        record.session_id = "-"
    return True


def _run(args: argparse.Namespace) -> int:
    if args.command == "models":
        from realtime.catalog import MODEL_DESCRIPTIONS

        for name, description in MODEL_DESCRIPTIONS.items():
            print(f"{name:<18} {description}")
        return 0
    if args.command == "serve":
        return _serve(args)  # the supervisor spawns the processes that import torch
    import torch

    from realtime.weights.registry import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model, args.model_dir, args.cache_dir, args.device)
    print(f"model: {lm.name} ({lm.path}) on {lm.device}", file=sys.stderr)
    if args.command == "voices":
        for info in lm.voices.info():
            default = "  (default)" if info.name == lm.default_voice else ""
            print(f"{info.name:<16} {info.language:<6} {info.gender:<8} {info.family}{default}")
        return 0
    if args.command == "say":
        return _say(args, lm)
    return _bench(args, lm)


def serve_config(argv: list[str], env: Mapping[str, str] | None = None) -> ServerConfig:
    """The ServerConfig that ``realtime serve ARGV`` runs with (flags, then ``env``)."""
    return _serve_config(_build_parser().parse_args(["serve", *argv]), env)


def _serve(args: argparse.Namespace) -> int:
    from realtime.server.processes import default_workers, serve_workers

    config = _serve_config(args)
    workers = default_workers() if config.workers is None else config.workers
    shape = (f"{workers} session worker{'s' if workers > 1 else ''} and an engine process"
             if workers else "one process")
    print(f"realtime: serving on http://{config.host}:{config.port} (model {config.model}; "
          f"{shape}; /readyz turns 200 once it is loaded and warm)", file=sys.stderr)
    if workers == 0:
        from realtime.engine.runner.local import local_engine
        from realtime.server.app import serve

        serve(config, local_engine())
        return 0
    return serve_workers(config, workers)


def _serve_config(args: argparse.Namespace, env: Mapping[str, str] | None = None
                  ) -> ServerConfig:
    import os

    from realtime.catalog import DEFAULT_MODEL
    from realtime.config import load_config

    env = os.environ if env is None else env
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "verbose")}
    # --model and --device have defaults of their own: an environment variable beats those.
    for name, default in (("model", DEFAULT_MODEL), ("device", "auto")):
        if flags[name] == default and f"REALTIME_{name.upper()}" in env:
            del flags[name]
    for name in ("api_keys", "allowed_origins"):
        if flags.get(name) is not None:
            flags[name] = tuple(flags[name])
    return load_config(flags, env)


def _phonemize(text: str, language: str) -> str:
    """Benchmark input: text through the server's text path (normalise, G2P, chunks; see
    docs/text.md), the chunks' phonemes joined."""
    from realtime.session.scheduler import TextScheduler
    from realtime.text.phonemize import Phonemizer

    scheduler = TextScheduler(Phonemizer(language))
    chunks = scheduler.push(text, 0.0) + scheduler.end(0.0)
    phonemes = " ".join(c.phonemes for c in chunks if c.phonemes)
    if not phonemes:
        raise InputError("nothing to say: the text has no speakable words")
    return phonemes


def _say(args: argparse.Namespace, lm: LoadedModel) -> int:
    """A WebSocket session's path, one-shot: an engine in this process, the utterance through
    the session protocol (``realtime.server.utterance``), the audio into a WAV file."""
    import asyncio

    from realtime.codecs import INPUT_RATE
    from realtime.codecs.wav import wav_header
    from realtime.config import EngineConfig
    from realtime.engine.runner.local import start_engine
    from realtime.server.utterance import Utterance, synthesize
    from realtime.text.phonemize import Phonemizer

    utterance = Utterance(args.text, args.voice, args.speed, args.language,
                          phonemes=args.phonemes, seed=args.seed)
    # One utterance: no warm-up, CUDA graph capture or compiled CPU norms (they pay off over
    # many requests), and whole-chunk decoding: a file has no listener waiting for its first
    # audio.
    engine = start_engine(lm, EngineConfig(device=args.device, threads=args.threads,
                                           dtype=args.dtype, warm_up=False, cuda_graphs=False,
                                           windows="off", cpu_fused_norms=False))
    try:
        pcm = asyncio.run(synthesize(utterance, engine, Phonemizer, owner="say"))
    finally:
        engine.stop()
    args.output.write_bytes(wav_header(INPUT_RATE, len(pcm) // 2) + pcm)
    print(f"wrote {args.output}: {len(pcm) / 2 / INPUT_RATE:.2f} s at {INPUT_RATE} Hz",
          file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace, lm: LoadedModel) -> int:
    import torch

    threads = args.threads or torch.get_num_threads()
    if not args.single:
        from realtime.bench.engine import SENTENCES, engine_report, run_engine_bench, write_outputs
        from realtime.engine.buckets import Buckets
        from realtime.engine.plan import WindowPlan

        cuda = lm.device.type == "cuda"
        default_levels = "1,8,32,64,128,256" if cuda else "1,2,4,8,16"
        try:
            levels = [int(c) for c in (args.concurrency or default_levels).split(",")]
        except ValueError as exc:
            raise ConfigError(f"--concurrency takes numbers like 1,2,4: {exc}") from exc
        if not levels or min(levels) < 1 or args.chunks < 1:
            raise ConfigError("--concurrency and --chunks must be at least 1")
        sentences = [_phonemize(t, "en-us") for t in SENTENCES]
        graphs = None if not cuda or args.no_graphs or args.windows else Buckets()
        result = run_engine_bench(lm, sentences, levels, args.chunks, threads, args.voice,
                                  args.cache_dir, onnx=not args.no_onnx, dtype=args.dtype,
                                  graphs=graphs, windows=WindowPlan() if args.windows else None,
                                  cpu_fused_norms=not args.no_cpu_fused_norms)
        print(engine_report(result))
        json_path = args.json or Path("bench.json")
        write_outputs(result, json_path, args.png)
        print(f"wrote {json_path} and {args.png}", file=sys.stderr)
        return 0

    from realtime.bench.single import DEFAULT_TEXT, bench_single_stream, report, write_json

    phonemes = _phonemize(args.text or DEFAULT_TEXT, "en-us")
    result = bench_single_stream(lm, phonemes, args.voice or lm.default_voice, args.speed,
                                 args.repeats, threads, args.cache_dir,
                                 fused_norms=not args.no_cpu_fused_norms)
    print(report(result))
    if args.json:
        write_json(result, args.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Benchmarks: one stream, the engine, codecs, quality (log-mel distance) and memory traffic."""

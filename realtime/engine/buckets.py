"""The static shapes a GPU engine pads its batches to (CUDA graphs are captured for each), and
the bound the scheduling policy keeps batches within; ``GRAPH_BUCKETS``, the server's, written
here once. Pure: no torch."""

from __future__ import annotations

from dataclasses import dataclass

from realtime.errors import ConfigError

__all__ = ["GRAPH_BUCKETS", "Buckets"]


@dataclass(frozen=True, slots=True)
class Buckets:
    """The shapes graphs are captured for. ``rows``: batch sizes; ``tokens``: phonemes + 2 per
    row; ``frames``: frames per row (25 ms each); ``max_cells``: rows x frames of the largest
    decoder graph (its activations grow with it)."""

    rows: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    tokens: tuple[int, ...] = (32, 64, 128, 256, 512)
    frames: tuple[int, ...] = (64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
    max_cells: int = 16_384

    def __post_init__(self) -> None:
        for name in ("rows", "tokens", "frames"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)) or values[0] < 1:
                raise ConfigError(f"graph {name} buckets must be increasing positive integers, "
                                  f"got {values}")
        if self.tokens[-1] < 3:
            raise ConfigError("the largest token bucket must hold at least one phoneme")

    @staticmethod
    def _fit(values: tuple[int, ...], n: int) -> int | None:
        return next((v for v in values if v >= n), None)

    def rows_for(self, n: int) -> int | None:
        return self._fit(self.rows, n)

    def tokens_for(self, n: int) -> int | None:
        return self._fit(self.tokens, n)

    def frames_for(self, rows: int, n: int) -> int | None:
        found = self._fit(self.frames, n)
        return found if found is not None and rows * found <= self.max_cells else None

    def text_shapes(self) -> list[tuple[int, int]]:
        return [(r, t) for r in self.rows for t in self.tokens]

    def decoder_shapes(self) -> list[tuple[int, int]]:
        return [(r, f) for r in self.rows for f in self.frames if r * f <= self.max_cells]


# The shapes a GPU engine captures CUDA graphs for (rows: up to the GPU's largest batch).
GRAPH_BUCKETS = Buckets()

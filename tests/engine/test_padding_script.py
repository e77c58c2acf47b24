"""scripts/padding.py's arithmetic: what a batch's decoder side costs in padded cells, in one
graph or split in two, and the efficiency of a burst (no model: frames given)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from realtime.engine.buckets import Buckets
from realtime.engine.policy import EDFPolicy

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "padding.py"


@pytest.fixture(scope="module")
def padding() -> ModuleType:
    spec = importlib.util.spec_from_file_location("padding_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)  # the script puts the repository on sys.path
    finally:
        sys.path[:] = path
    return module


def test_one_graph_pads_rows_and_frames_to_their_buckets(padding: ModuleType) -> None:
    b = Buckets()
    assert padding.one_graph(b, [100, 60]) == 2 * 128
    assert padding.one_graph(b, [100, 60, 30]) == 4 * 128  # 3 rows run as 4
    assert padding.one_graph(b, [129]) == 192
    # Beyond the buckets (128 rows x 192 frames > max_cells): eagerly, at its own shape.
    assert padding.one_graph(b, [150] * 128) == 128 * 150


def test_a_split_is_taken_only_where_it_saves_cells(padding: ModuleType) -> None:
    b = Buckets()
    mixed = [60, 60, 60, 300]
    assert padding.one_graph(b, mixed) == 4 * 384
    assert padding.split_in_two(0)(b, mixed) == 4 * 64 + 384  # three short rows pad to 4
    assert padding.split_in_two(2000)(b, mixed) == 4 * 384 + 2000  # the split costs more
    even = [120] * 8
    assert padding.split_in_two(0)(b, even) == padding.one_graph(b, even)


def test_a_burst_of_equal_chunks_wastes_only_the_frame_bucket(padding: ModuleType) -> None:
    texts = ["a", "b", "c"]
    frames = {"a": 96, "b": 96, "c": 96}
    policy = EDFPolicy(max_batch=128, buckets=Buckets())
    eff, batches, mean = padding.burst(policy, texts, frames, 64, 0, padding.one_graph)
    assert eff == pytest.approx(96 / 128)
    assert batches * mean == 64
    # Lengths far apart (the policy estimates 3 frames a phoneme) are batched apart, by the
    # length ratio; what is left is the spread within each batch and the bucket rounding.
    texts = ["a" * 13, "b" * 100, "c" * 32]
    frames = dict(zip(texts, (40, 300, 96), strict=True))
    mixed, batches, _ = padding.burst(policy, texts, frames, 64, 0, padding.one_graph)
    assert batches >= 2
    assert 0.4 < mixed < 0.9

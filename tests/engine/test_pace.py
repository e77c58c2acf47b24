"""Adaptive windows: the pace the engine measures, a later window cut to what it makes in
time, the rest of the chunk re-planned, and the engine doing it (tiny model, a made-up clock)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from realtime.engine.loop import Engine
from realtime.engine.pace import GeneratorPace, fit_windows
from realtime.engine.plan import WindowPlan
from realtime.engine.policy import EDFPolicy
from realtime.engine.request import ChunkRequest, Pending
from realtime.engine.runner.runner import ModelRunner
from realtime.engine.runner.windows import Cursor, next_pieces, start_windows
from realtime.weights.registry import LoadedModel
from tests.conftest import chunk_pieces, tiny_loaded

LONG = ("sʌmtɪŋ lɑŋə ðæn ðə ʌðəz, wɪð ə kɑmə ænd mɔ wədz, ænd ə fu mɔ æftə ðæt. "
        "ænd ðɛn sʌm mɔ, tu mek ɪt lɑŋ ɪnʌf fɔ mɛni wɪndoz.")
# The tiny model: 8 samples a generator frame, 3,000 frames a second.
PLAN = WindowPlan(first_s=0.02, later_s=0.2, margin_s=0.01, fade_ms=4.0, adaptive=True)


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    return tiny_loaded()


def cursor_after_first(lm: LoadedModel, plan: WindowPlan = PLAN) -> Cursor:
    ids = lm.model.phonemes_to_ids(LONG)
    (cursor,) = start_windows(lm.model, [lm.model.item(ids, lm.voices.style("a", len(ids)))],
                              plan)
    next_pieces(lm.model, [cursor])  # the first window
    return cursor


def covers(cursor: Cursor) -> bool:
    cores = cursor.cores
    return (cores[0][0] == 0 and cores[-1][1] == cursor.frames and all(a < b for a, b in cores)
            and all(b == a2 for (_, b), (a2, _) in pairwise(cores)))


def test_plan_from_a_point_is_the_rest_of_the_plan() -> None:
    for plan in (WindowPlan(first_s=1.0, later_s=3.0), WindowPlan(first_s=0.5, later_s=2.0)):
        for frames in range(90, 900, 13):
            cores = plan.cores(frames, 80)
            for i in range(1, len(cores)):
                a, b = cores[i - 1]
                assert plan.cores(frames, 80, start=b, previous=b - a) == cores[i:]


def test_pace_follows_what_it_sees() -> None:
    pace = GeneratorPace()
    assert pace.frames_within(1.0) is None  # nothing seen: no cut
    pace.observe(2.0, 100, first=True)  # 20 ms a frame, first windows
    assert pace.frames_within(1.0) == 50  # judged by the first windows until a later one
    pace.observe(1.0, 100)  # 10 ms a frame, later windows
    assert pace.frames_within(1.0) == 100
    assert pace.frames_within(1.0, rows=4) == 25  # a batch of four rows shares the time
    pace.observe(3.0, 100)  # each new batch counts for half: (10 + 30) / 2 ms
    assert pace.later == pytest.approx(0.02)
    pace.observe(0.0, 100)  # a clock that did not move says nothing
    pace.observe(1.0, 0)
    assert pace.later == pytest.approx(0.02)
    assert pace.frames_within(-1.0) == 0


def test_a_later_window_is_cut_and_the_rest_replanned(lm: LoadedModel) -> None:
    cursor = cursor_after_first(lm)
    planned = list(cursor.cores)
    a, b = planned[1]
    first = planned[0][1]
    assert b - a > 2 * first and cursor.frames - a > 3 * first  # room to cut
    assert cursor.cap_next(b - a) is False and cursor.cores == planned  # fits: untouched
    assert cursor.cap_next(first + 10)
    assert cursor.cores[1] == (a, a + first + 10)
    assert covers(cursor)
    # The rest as the plan goes on after a window of that size (later_s each, here).
    assert cursor.cores[2:] == PLAN.cores(cursor.frames, 3000, a + first + 10, first + 10)
    # Never below the first window's size: such a window would come late all the same.
    cut = list(cursor.cores)
    assert cursor.cap_next(first - 1) is False and cursor.cores == cut
    assert cursor.cap_next(first)
    assert cursor.cores[1] == (a, a + first)
    assert covers(cursor)


def test_the_first_window_is_never_cut(lm: LoadedModel) -> None:
    ids = lm.model.phonemes_to_ids(LONG)
    (cursor,) = start_windows(lm.model, [lm.model.item(ids, lm.voices.style("a", len(ids)))],
                              PLAN)
    planned = list(cursor.cores)
    assert cursor.cap_next(1) is False and cursor.cores == planned


def test_a_short_rest_is_split_evenly(lm: LoadedModel) -> None:
    """Cut just short of the chunk's end, the rest would be a sliver of a last window: the
    rest goes in two equal windows instead."""
    def at_last_window(plan: WindowPlan = PLAN) -> Cursor:
        cursor = cursor_after_first(lm, plan)
        while cursor.index < len(cursor.cores) - 1:
            next_pieces(lm.model, [cursor])
        return cursor

    cursor = at_last_window()
    (a, b), i = cursor.cores[-1], cursor.index
    rest = b - a
    assert rest > 200
    assert cursor.cap_next(rest - 40)  # would leave 40 frames
    assert cursor.cores[i:] == [(a, a + -(-rest // 2)), (a + -(-rest // 2), b)]
    # A cut whose right margin reaches the end would cost what the whole rest does: none
    # (margins of 0.15 s, 450 frames: half the last window with a margin is all of it).
    cursor = at_last_window(WindowPlan(first_s=0.02, later_s=0.2, margin_s=0.15, fade_ms=4.0))
    (a, b), before = cursor.cores[-1], list(cursor.cores)
    assert (b - a) // 2 + cursor.margin >= b - a
    assert cursor.cap_next(60) is False and cursor.cores == before


def test_fit_windows_cuts_to_the_budget(lm: LoadedModel) -> None:
    pace = GeneratorPace()
    cursor = cursor_after_first(lm)
    planned = list(cursor.cores)
    assert fit_windows([cursor], [0.01], pace) == 0 and cursor.cores == planned  # no pace yet
    pace.observe(0.1, 1000)  # 0.1 ms a frame
    a, b = planned[1]
    # Room for the planned window and its margins, with the safety share: untouched.
    roomy = (b - a + 2 * cursor.margin) * 1e-4 / 0.85 + 1e-3
    assert fit_windows([cursor], [roomy], pace) == 0 and cursor.cores == planned
    # Room for 100 frames less both margins, at the safety share of the budget.
    budget = (100 + 2 * cursor.margin) * 1e-4 / 0.85 + 1e-6
    assert fit_windows([cursor], [budget], pace) == 1
    assert cursor.cores[1] == (a, a + 100)
    # Two rows in the batch halve it.
    budget = 2 * (100 + 2 * cursor.margin) * 1e-4 / 0.85 + 1e-6
    cursor = cursor_after_first(lm)
    assert fit_windows([cursor], [budget], pace, rows=2) == 1
    assert cursor.cores[1] == (a, a + 100)
    # A budget that holds less than the first window's size: left as planned.
    cursor = cursor_after_first(lm)
    assert fit_windows([cursor], [-1.0], pace) == 0 and cursor.cores == planned


def test_played_until() -> None:
    p = Pending(ChunkRequest("s", "c", "x", "v", deadline=10.0), 9.0, 0, 0)
    p.started, p.sent = 9.5, 24_000
    assert p.played_until() == 11.0  # no piece out yet: from its deadline
    p.first_out = 12.0
    assert p.played_until() == 13.0  # its first piece came after its deadline
    p.first_out = 9.8
    assert p.played_until() == 11.0  # it came before: it plays from the deadline


class Clock:
    """The engine's clock, moved only by the runner below: a window takes ``PER_FRAME`` seconds
    a frame (rows x the widest window, margins included)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Slower than the tiny model's audio: a 0.2 s window with its margins (660 frames) takes
# 0.053 s, while the first window's piece holds 0.018 s; a window of the first's size with its
# margins (120 frames) takes 0.0096 s.
PER_FRAME = 8e-5


class SlowRunner(ModelRunner):
    """The real runner, its windows timed by :class:`Clock`; records when each piece is done
    and how long its audio is."""

    def __init__(self, lm: LoadedModel, plan: WindowPlan, clock: Clock) -> None:
        super().__init__(lm, "float32", windows=plan)
        self.clock = clock
        self.done: list[tuple[float, int]] = []

    def next_pieces(self, cursors):  # type: ignore[no-untyped-def]
        width = max(hi - lo for lo, hi in (c.bounds() for c in cursors))
        pieces = super().next_pieces(cursors)
        self.clock.now += PER_FRAME * len(cursors) * width
        self.done += [(self.clock.now, len(p.audio)) for p in pieces]
        return pieces


@pytest.mark.parametrize("adaptive", [True, False])
def test_engine_cuts_windows_that_would_come_late(lm: LoadedModel, adaptive: bool) -> None:
    """With windows slower than the audio they make, an adaptive engine cuts the second window
    to what is ready before the first one's audio has played, and every piece is then done in
    time (by the clock the windows are timed with); the pieces still join to the chunk (its
    length, its durations). A fixed plan keeps its windows, and its second piece comes late."""
    plan = WindowPlan(first_s=0.02, later_s=0.2, margin_s=0.01, fade_ms=4.0, adaptive=adaptive)
    clock = Clock()
    runner = SlowRunner(lm, plan, clock)
    engine = Engine(runner, EDFPolicy(max_batch=1), clock=clock)
    engine.start(warm_up=False)
    try:
        results = chunk_pieces(engine.submit(ChunkRequest("s", "c", LONG, "a", 0.0)).result(30))
    finally:
        engine.stop()
    ids = lm.model.phonemes_to_ids(LONG)
    whole = lm.model.forward_batch([lm.model.item(ids, lm.voices.style("a", len(ids)))])[0]
    audio = np.concatenate([r.audio for r in results])
    assert len(audio) == len(whole.audio)
    assert np.array_equal(results[0].durations, whole.durations.numpy())
    planned = plan.cores(2 * int(whole.durations.sum()), 3000)
    # Each piece against the moment the audio before it has played (from the first piece on).
    (start, _), *_ = runner.done
    late = []
    played = start
    for done, samples in runner.done:
        late.append(done > played + 1e-9)
        played = max(played, done) + samples / 24_000
    if adaptive:
        assert len(results) > len(planned)
        assert not any(late)
    else:
        assert len(results) == len(planned)
        assert late[1]

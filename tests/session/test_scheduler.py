"""The sentence-boundary scheduler: synchronous, no model, the clock passed in."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.errors import ConfigError, InputError
from realtime.session.scheduler import Chunk, SchedulerConfig, TextScheduler
from realtime.text.g2p import vocab_symbols
from realtime.text.phonemize import Phonemizer

PHONEMIZER = Phonemizer("en-us")  # shared, as a server shares one per language


def run(text: str | list[str], config: SchedulerConfig | None = None) -> list[Chunk]:
    """Feed deltas at time 0 (no timeouts), then end."""
    scheduler = TextScheduler(PHONEMIZER, config)
    chunks: list[Chunk] = []
    for delta in [text] if isinstance(text, str) else text:
        chunks += scheduler.push(delta, 0.0)
    return chunks + scheduler.end(0.0)


def check_chunks(text: str, chunks: list[Chunk], limit: int = 510) -> None:
    assert "".join(c.text for c in chunks) == text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    vocab = vocab_symbols()
    for c in chunks:
        assert text[c.char_start:c.char_end] == c.text
        assert len(c.phonemes) <= limit
        assert set(c.phonemes) <= vocab
        for w in c.words:
            assert c.char_start <= w.char_start <= w.char_end <= c.char_end
            assert 0 <= w.ph_start <= w.ph_end <= len(c.phonemes)
            assert " " not in c.phonemes[w.ph_start:w.ph_end]


# (deltas, expected chunk texts, expected spoken words of each chunk)
TABLE = [
    (["Sure! Dr. Sm", "ith paid $4", ".50 on 3/14.", " Then he left."],
     ["Sure! ", "Dr. Smith paid $4.50 on 3/14. Then he left."],
     ["Sure", "doctor Smith paid four dollars and fifty cents on March fourteenth Then he left"]),
    (["Well... I th", "ink so, yes. OK."],
     ["Well... I think so, ", "yes. OK."],
     ["Well I think so", "yes OK"]),
    (["J. R. R. Tolkien wrote The Hobbit in 1937. ", "It sold well."],
     ["J. R. R. Tolkien wrote The Hobbit in 1937. ", "It sold well."],
     ["J R R Tolkien wrote The Hobbit in nineteen thirty seven", "It sold well"]),
    (["Visit https://exa", "mple.com/docs. It is", " free."],
     ["Visit https://example.com/docs. ", "It is free."],
     ["Visit example dot com slash docs", "It is free"]),
    (["Mail help@exam", "ple.com, e.g. today. Bye."],
     ["Mail help@example.com, ", "e.g. today. Bye."],
     ["Mail help at example dot com", "for example today Bye"]),
    (["Pi is 3", ".14159. That is all."],
     ["Pi is 3.14159. ", "That is all."],
     ["Pi is three point one four one five nine", "That is all"]),
    (["It costs 1,", "200 dollars, roughly. Fine."],
     ["It costs 1,200 dollars, ", "roughly. Fine."],
     ["It costs one thousand two hundred dollars", "roughly Fine"]),
    (["**Note:** save ", "often.\n- one\n- two"],
     ["**Note:** save often.\n", "- one\n- two"],
     ["Note save often", "one two"]),
    (["Hi! Short one. Another short. Then a much longer sentence that keeps going ",
      "for quite a while. End."],
     ["Hi! ", "Short one. Another short. Then a much longer sentence that keeps going "
      "for quite a while. ", "End."],
     ["Hi", "Short one Another short Then a much longer sentence that keeps going for quite "
      "a while", "End"]),
    (["Mr. Smith met St. Paul at 10:30am. He smiled."],
     ["Mr. Smith met St. Paul at 10:30am. ", "He smiled."],
     ["mister Smith met saint Paul at ten thirty A M", "He smiled"]),
]


@pytest.mark.parametrize(("deltas", "texts", "spoken"), TABLE)
def test_tricky_inputs(deltas: list[str], texts: list[str], spoken: list[str]) -> None:
    chunks = run(deltas)
    assert [c.text for c in chunks] == texts
    assert [" ".join(w.text for w in c.words) for c in chunks] == spoken
    check_chunks("".join(deltas), chunks)
    assert chunks == run("".join(deltas))


def test_first_chunk_is_eager_and_words_map_to_the_source() -> None:
    scheduler = TextScheduler(PHONEMIZER)
    assert scheduler.push("Sure! Dr. Sm", 0.0)[0].text == "Sure! "
    assert scheduler.push("ith paid $4", 0.0) == []
    assert scheduler.push(".50 on 3/14.", 0.0) == []  # "14." may still be "14.5"
    chunks = scheduler.push(" Then", 0.0) + scheduler.end(0.0)
    text = "Sure! Dr. Smith paid $4.50 on 3/14. Then"
    check_chunks(text, [TextScheduler(PHONEMIZER).push("Sure! D", 0.0)[0], *chunks])
    words = chunks[0].words
    assert [(w.text, text[w.char_start:w.char_end]) for w in words[:3]] == [
        ("doctor", "Dr."), ("Smith", "Smith"), ("paid", "paid")]
    assert {text[w.char_start:w.char_end] for w in words[3:8]} == {"$4.50"}
    ph = chunks[0].phonemes
    assert ph[words[0].ph_start:words[0].ph_end] == "dˈɑktəɹ"


def test_never_cut_inside_a_number_still_arriving() -> None:
    scheduler = TextScheduler(PHONEMIZER, SchedulerConfig(first_min_words=1))
    assert scheduler.push("It is 4", 0.0) == []
    assert scheduler.push(".", 0.0) == []
    assert scheduler.push("5, I said", 0.0)[0].text == "It is 4.5, "


def test_clause_needs_a_few_words_for_the_first_chunk() -> None:
    chunks = run(["Yes, well, I think that, ", "maybe."])
    assert chunks[0].text == "Yes, well, I think that, "


def test_max_buffer_delay_sends_what_is_safe() -> None:
    scheduler = TextScheduler(PHONEMIZER, SchedulerConfig(max_buffer_delay_ms=400))
    assert scheduler.next_deadline() is None
    assert scheduler.push("Hello there my fri", 10.0) == []
    assert scheduler.next_deadline() == pytest.approx(10.4)
    assert scheduler.poll(10.3) == []
    chunks = scheduler.poll(10.4)
    assert [(c.text, c.reason) for c in chunks] == [("Hello there my ", "timeout")]
    assert scheduler.pending_text == "fri"
    assert scheduler.next_deadline() == pytest.approx(10.8)


def test_timeout_waits_for_a_word_in_progress() -> None:
    scheduler = TextScheduler(PHONEMIZER, SchedulerConfig(max_buffer_delay_ms=100))
    scheduler.push("Supercalifragilistic", 0.0)
    assert scheduler.poll(1.0) == []
    assert scheduler.next_deadline() is None  # nothing to wait for until more text
    chunks = scheduler.push("expialidocious is a", 1.1)
    assert [c.text for c in chunks] == ["Supercalifragilisticexpialidocious is "]


def test_timeout_does_not_split_a_title_from_its_name() -> None:
    scheduler = TextScheduler(PHONEMIZER, SchedulerConfig(max_buffer_delay_ms=0))
    assert scheduler.push("Dr. ", 0.0) == []
    assert [c.text for c in scheduler.push("Smith is", 0.0)] == ["Dr. Smith "]


def test_flush_and_end() -> None:
    scheduler = TextScheduler(PHONEMIZER)
    chunks = scheduler.push("Hello there", 0.0) + scheduler.flush(0.0)
    assert [(c.text, c.reason) for c in chunks] == [("Hello there", "flush")]
    assert scheduler.flush(0.0) == []
    assert scheduler.push("  ", 0.0) == [] and scheduler.flush(0.0) == []  # whitespace waits
    last = scheduler.end(0.0)
    assert [(c.text, c.phonemes, c.words) for c in last] == [("  ", "", ())]
    assert scheduler.ended and scheduler.next_deadline() is None
    with pytest.raises(InputError):
        scheduler.push("more", 0.0)


def test_unspeakable_text_gives_a_silent_chunk() -> None:
    chunks = run("Great! 🎉")
    assert [(c.text, bool(c.phonemes)) for c in chunks] == [("Great! ", True), ("🎉", False)]


def test_phoneme_input_passes_through_in_order() -> None:
    scheduler = TextScheduler(PHONEMIZER)
    scheduler.push("Say", 0.0)
    chunks = scheduler.push_phonemes("kˈOkəɹO  nˈW", 0.0)
    assert [(c.text, c.reason) for c in chunks] == [("Say", "flush"), ("", "phonemes")]
    assert chunks[1].phonemes == "kˈOkəɹO nˈW"
    assert [(w.text, w.char_start, w.char_end) for w in chunks[1].words] == [
        ("kˈOkəɹO", 3, 3), ("nˈW", 3, 3)]
    scheduler.push(" please", 0.0)
    with pytest.raises(InputError, match="'7'"):
        scheduler.push_phonemes("ab7", 0.0)
    assert scheduler.pending_text == " please"  # unchanged by the refused input
    assert [c.index for c in scheduler.end(0.0)] == [2]


def test_session_lexicon() -> None:
    scheduler = TextScheduler(PHONEMIZER, lexicon={"Kokoro": "kˈOkəɹO"})
    chunks = scheduler.push("Kokoro speaks.", 0.0) + scheduler.end(0.0)
    assert chunks[0].phonemes.startswith("kˈOkəɹO ")
    other = TextScheduler(PHONEMIZER)
    assert not (other.push("Kokoro speaks.", 0.0) + other.end(0.0))[0].phonemes.startswith(
        "kˈOkəɹO ")


def test_inline_phonemes_in_text() -> None:
    text = "I said [Kokoro](/kˈOkəɹO/) twice."
    chunks = run([text[:12], text[12:20], text[20:]])
    assert len(chunks) == 1 and "kˈOkəɹO" in chunks[0].phonemes
    word = chunks[0].words[2]
    assert text[word.char_start:word.char_end] == "[Kokoro](/kˈOkəɹO/)"


def test_long_run_on_text_is_split_under_the_limits() -> None:
    text = " ".join(f"item {n} costs ${n}.{n:02d} and weighs {n} kg" for n in range(60))
    chunks = run(text)
    check_chunks(text, chunks)
    assert len(chunks) > 3 and all(len(c.text) <= 330 for c in chunks)
    small = SchedulerConfig(max_phonemes=120, max_chunk_chars=300)
    tight = run(text, small)
    check_chunks(text, tight, limit=120)
    assert any(c.reason == "length" for c in tight)


def test_one_huge_token_is_cut_after_it() -> None:
    text = "x" * 400 + " and more words here"
    chunks = run([text[:200], text[200:405], text[405:]])
    check_chunks(text, chunks)
    assert chunks[0].text == "x" * 400 + " "


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        SchedulerConfig(max_buffer_delay_ms=-1)
    with pytest.raises(ConfigError):
        SchedulerConfig(max_phonemes=511)
    with pytest.raises(ConfigError):
        SchedulerConfig(min_chunk_chars=400, max_chunk_chars=300)


def test_not_eager_first_chunk_merges_like_later_ones() -> None:
    chunks = run("Hi! How are you? I am fine, thanks for asking me today.",
                 SchedulerConfig(eager_first=False))
    assert chunks[0].text == "Hi! How are you? I am fine, thanks for asking me today."


# Property tests: any split of a text gives the same chunks as the whole text.

FRAGMENTS = [
    "Sure!", "Dr. Smith paid $4.50 on 3/14.", "J. R. R. Tolkien wrote it.", "Well...",
    "Visit https://example.com/a?b=1.", "Mail help@example.com, please.", "It is 3.14159.",
    "e.g. apples, i.e. fruit, etc.", "Call 555-123-4567 at 10:30am!", "**Bold** text:",
    "- a list item\n", "# Heading\n", "It costs €1,200 (approx.) or £3.", "Mr. and Mrs. Jones",
    "up 15% in 2024", "Is it?", "Yes; no: maybe -- fine.", "[Kokoro](/kˈOkəɹO/) talks.",
    "The U.S. economy grew.", "so am I.", "😀", "Really?!", "\n\n", "a", "1,000", "St. Paul",
]


@st.composite
def texts_and_splits(draw: st.DrawFn) -> tuple[str, list[str]]:
    parts = draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14))
    seps = draw(st.lists(st.sampled_from([" ", " ", "  ", "\n", ""]), min_size=len(parts),
                         max_size=len(parts)))
    text = "".join(p + s for p, s in zip(parts, seps, strict=True))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(texts_and_splits())
def test_any_split_gives_the_same_chunks(case: tuple[str, list[str]]) -> None:
    text, deltas = case
    whole = run(text)
    assert run(deltas) == whole
    check_chunks(text, whole)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*"ab Dr.,!?$45:/@-\n[](", "x ", "ok "]), max_size=60).map("".join),
       st.sets(st.integers(0, 80), max_size=8))
def test_any_split_of_noise_gives_the_same_chunks(text: str, cuts: set[int]) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    deltas = [text[a:b] for a, b in itertools.pairwise(bounds)]
    small = SchedulerConfig(min_chunk_chars=10, max_chunk_chars=40)
    whole = run(text, small)
    assert run(deltas, small) == whole
    check_chunks(text, whole)


@settings(max_examples=60, deadline=None)
@given(texts_and_splits(), st.sampled_from([0.5, 0.7, 0.9]))
def test_any_split_gives_the_same_chunks_under_a_plan(case: tuple[str, list[str]],
                                                      rtf: float) -> None:
    text, deltas = case
    planned = SchedulerConfig(plan_rtf=rtf)
    whole = run(text, planned)
    assert run(deltas, planned) == whole
    check_chunks(text, whole)


AGENT = ("Sure, I can help with that. "
         "I found two tables for four people, one at seven and one at half past eight. "
         "Would you like me to send the confirmation to the email address on file, or to your "
         "phone? Your subscription renews on the first of every month, and you can cancel at "
         "any time.")


def estimated_gaps(chunks: list[Chunk], rtf: float) -> list[float]:
    """Silence before each chunk if chunks are made back to back at ``rtf``, with the
    scheduler's own audio estimate."""
    from realtime.session.scheduler import estimate_audio_s

    audio = [estimate_audio_s(len(c.text.strip())) for c in chunks]
    ready = list(itertools.accumulate(rtf * a for a in audio))
    return [max(0.0, ready[k] - ready[0] - sum(audio[:k])) for k in range(len(audio))]


@pytest.mark.parametrize("rtf", [0.5, 0.7, 0.9])
def test_a_plan_cuts_at_clauses_so_chunks_are_ready_sooner(rtf: float) -> None:
    planned = run(AGENT, SchedulerConfig(plan_rtf=rtf))
    free = run(AGENT)
    assert "".join(c.text for c in planned) == AGENT
    assert planned[0] == free[0]  # the first chunk follows the eager rule either way
    for c in planned:  # never inside a clause: at a sentence or clause mark, or the end
        assert c.text.rstrip()[-1] in ".,;:?!" or c.reason == "end", c.text
    assert sum(estimated_gaps(planned, rtf)) < 0.6 * sum(estimated_gaps(free, rtf))
    assert max(len(c.text) for c in planned[-2:]) > len(planned[1].text)  # caps grow


def test_plan_is_validated() -> None:
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ConfigError):
            SchedulerConfig(plan_rtf=bad)


def test_scheduling_cost_per_chunk() -> None:
    """A rough bound (2 shared CPU cores): G2P + scheduling stays far below a chunk's audio."""
    text = ("Sure! Dr. Smith paid $4.50 on 3/14 for 2 coffees, then walked 5 km home. " * 20)
    run(text)  # warm the word cache the way a live server would be
    started = time.perf_counter()
    chunks = run([text[i:i + 7] for i in range(0, len(text), 7)])  # token-sized deltas
    per_chunk = (time.perf_counter() - started) / len(chunks)
    assert per_chunk < 0.05


def test_a_stray_bracket_does_not_block_forever() -> None:
    text = "See [note " + "and more words here " * 10 + "so. Then we go on."
    chunks = run([text[:50], text[50:]])
    check_chunks(text, chunks)
    assert len(chunks) >= 2


# windowed decoding: sentence-sized chunks

def windowed_gaps(chunks: list[Chunk], rtf: float, window_s: float) -> list[float]:
    """``estimated_gaps`` when each chunk's audio starts after its first ``window_s`` (the
    rest is decoded while that plays, faster than real time)."""
    from realtime.session.scheduler import estimate_audio_s

    audio = [estimate_audio_s(len(c.text.strip())) for c in chunks]
    done = list(itertools.accumulate(rtf * a for a in audio))
    start = [d - rtf * a for d, a in zip(done, audio, strict=True)]
    first = [s + rtf * min(a, window_s) for s, a in zip(start, audio, strict=True)]
    return [max(0.0, first[k] - first[0] - sum(audio[:k])) for k in range(len(audio))]


def test_windows_keep_the_first_chunk_a_sentence() -> None:
    clause = run(["Yes, well, I think that, ", "maybe."])
    assert clause[0].text == "Yes, well, I think that, "
    whole = run(["Yes, well, I think that, ", "maybe."], SchedulerConfig(window_s=1.0))
    assert [c.text for c in whole] == ["Yes, well, I think that, maybe."]


@pytest.mark.parametrize("rtf", [0.5, 0.7])
def test_windows_let_planned_chunks_stay_sentences(rtf: float) -> None:
    planned = run(AGENT, SchedulerConfig(plan_rtf=rtf))
    windowed = run(AGENT, SchedulerConfig(plan_rtf=rtf, window_s=1.0))
    assert "".join(c.text for c in windowed) == AGENT
    assert any(c.text.rstrip()[-1] == "," for c in planned)  # whole decoding cuts clauses
    assert all(c.text.rstrip()[-1] in ".?!" for c in windowed), [c.text for c in windowed]
    # and, with each chunk's audio starting after its first window, still no gap
    assert sum(windowed_gaps(windowed, rtf, 1.0)) <= sum(estimated_gaps(planned, rtf)) + 1e-9

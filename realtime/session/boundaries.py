"""Where streamed text may be cut into chunks: sentence, clause and word boundaries.

Pure functions of the text seen so far. A boundary is reported only once it is *settled*:
the character after the punctuation and its whitespace has arrived (or the input has ended),
so a later delta can never turn it into something else (``Dr.`` + `` Smith``, ``4.`` + ``50``,
``example.`` + ``com``). A cut position is always the start of the next chunk: the chunk
before it keeps its trailing whitespace, so the chunks' texts join back into the input.

The language matters for what may follow a mark (French puts a space before ``?``, ``!`` and a
closing ``»``; Spanish opens with ``¿`` and ``¡``; Hindi ends a sentence with ``।``) and for
which words take a period without ending a sentence (``Dr.``, ``Sr.``, ``Mme.``).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from realtime.text.languages import language as find_language
from realtime.text.normalize import ABBREVIATIONS, SENTENCE_ABBREVIATIONS

__all__ = ["Boundary", "Kind", "find_boundaries", "word_cuts"]


class Kind(enum.IntEnum):
    WORD = 0
    CLAUSE = 1
    SENTENCE = 2


@dataclass(frozen=True, slots=True)
class Boundary:
    pos: int  # where the next chunk starts
    kind: Kind


# Punctuation (a run), closing quotes/brackets/emphasis (a French » may follow a space), then
# whitespace.
_CANDIDATE = re.compile(r"(\.{2,}|…|[.!?।]+|[,;:]|—|--|–|\n)"
                        r"((?:[\"'”’)\]*_]|[ \u00a0\u202f]*»)*)(\s*)")
_TOKEN_BEFORE = re.compile(r"(\S+)$")
_OPENERS = "\"'“‘([*_¿¡«"
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")


_REACH = 160  # a construct left open longer than this is a stray bracket, not a link


def _blocked(text: str, start: int, pos: int) -> bool:
    """Is ``pos`` inside a Markdown link / inline phonemes / inline code opened just before?"""
    span = text[max(start, pos - _REACH):pos]
    if span.count("`") % 2:
        return True
    opened = span.rfind("[")
    if opened > span.rfind("]"):
        return True
    link = span.rfind("](")
    return link >= 0 and span.rfind(")") < link


def _is_initial(token: str) -> bool:
    """J. R. R. Tolkien, U.S. (but "so am I." ends a sentence)."""
    return token not in ("I", "a") and _INITIALS.fullmatch(token) is not None


@functools.cache
def _abbreviations(language: str) -> tuple[frozenset[str], frozenset[str]]:
    """(words whose period never ends a sentence, words whose period may) of a language."""
    lang = find_language(language)
    if lang.english:
        return ABBREVIATIONS, SENTENCE_ABBREVIATIONS
    written = frozenset(a for a, _ in lang.abbreviations)
    return written - {"etc"}, written & {"etc"}


def _period_ends_sentence(text: str, at: int, following: str, language: str) -> bool:
    """Does the single '.' at ``text[at]`` end a sentence, given the next visible char?"""
    if following.islower():
        return False
    found = _TOKEN_BEFORE.search(text, 0, at)
    token = found.group(1).lstrip(_OPENERS) if found else ""
    never, maybe = _abbreviations(language)
    if token in maybe:
        return following == "" or following.isupper() or following in "¿¡"
    if token in never or token.lower() in ("e.g", "i.e"):
        return False
    return not _is_initial(token)


def find_boundaries(text: str, start: int = 0, final: bool = False,
                    language: str = "en-us") -> list[Boundary]:
    """Settled clause and sentence boundaries in ``text[start:]`` (``final``: input ended)."""
    found: list[Boundary] = []
    for m in _CANDIDATE.finditer(text, start):
        mark, gap = m.group(1), m.group(3)
        pos = m.end()
        if pos == len(text) and not final:
            continue  # what follows has not arrived yet
        if not gap and pos < len(text) and mark != "\n":
            continue  # 4.50, 1,200, 10:30, example.com, word--word
        if m.start() == start or _blocked(text, start, m.start()):
            continue
        following = text[pos:pos + 1]
        if mark == "\n" or "\n" in gap:
            kind = Kind.SENTENCE
        elif mark in ("...", "…") or (len(mark) > 1 and set(mark) == {"."}):
            kind = Kind.CLAUSE  # an ellipsis pauses; it rarely ends the thought
        elif mark[0] in "!?।" or (len(mark) > 1 and mark[0] == "."):
            kind = Kind.SENTENCE
        elif mark == ".":
            kind = (Kind.SENTENCE if _period_ends_sentence(text, m.start(), following, language)
                    else Kind.WORD)
        else:
            kind = Kind.CLAUSE
        if kind is not Kind.WORD:
            found.append(Boundary(pos, kind))
    return found


def word_cuts(text: str, start: int = 0, language: str = "en-us") -> list[int]:
    """Positions after whitespace where a chunk may start; not after an abbreviation/initial.

    The end of the text counts when it is whitespace (the word before it is complete).
    """
    never, maybe = _abbreviations(language)
    cuts: list[int] = []
    for m in re.finditer(r"\s+", text[start:]):
        pos = start + m.end()
        if m.start() == 0 or _blocked(text, start, start + m.start()):
            continue
        token = text[start:start + m.start()].rsplit(None, 1)[-1].rstrip("\"'”’)*_»")
        if token.endswith("."):
            bare = token[:-1].lstrip(_OPENERS)
            if bare in never or bare in maybe or _is_initial(bare):
                continue
        cuts.append(pos)
    return cuts

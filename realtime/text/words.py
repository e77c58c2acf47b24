"""Spoken words and the rule scanner that every language's normaliser is built on.

A normaliser is an ordered set of ``Rule``s (a regex and a handler); ``scan`` walks the text
once, and at each position the first rule that matches wins. Handlers add ``SpokenWord``s to a
``Collector``; characters no rule claims are not spoken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

__all__ = ["Collector", "Handler", "Rule", "SpokenWord", "markdown_rules", "punctuation_rules",
           "scanner", "spoken_text"]


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """One spoken word; ``start``/``end`` index the source text (several words may share them)."""

    text: str
    start: int
    end: int
    punct: str = ""  # spoken punctuation after the word: , . ! ? ; : — …
    phonemes: str | None = None  # forced by an inline [word](/phonemes/)
    letter: bool = False  # a letter said by its name (initials, "a m", "w w w")


def spoken_text(words: Sequence[SpokenWord]) -> str:
    """The spoken words joined by spaces (what a listener would write down)."""
    return " ".join(w.text for w in words)


class Collector:
    """Collects the words of one normalisation of ``text`` (offsets shifted by ``base``)."""

    def __init__(self, text: str, language: str, base: int) -> None:
        self.text = text
        self.language = language
        self.base = base
        self.words: list[SpokenWord] = []

    def add(self, words: list[str] | str, start: int, end: int, letters: bool = False) -> None:
        """Add spoken words for ``text[start:end]``; ``letters``: single capitals are letters."""
        for w in words.split() if isinstance(words, str) else words:
            letter = letters and len(w) == 1 and w.isupper()
            self.words.append(SpokenWord(w, self.base + start, self.base + end, letter=letter))

    def punct(self, mark: str) -> None:
        if self.words and not self.words[-1].punct:
            self.words[-1] = replace(self.words[-1], punct=mark)

    def next_char(self, pos: int) -> str:
        """The first non-blank character at or after ``pos`` ('' at the end)."""
        rest = self.text[pos:].lstrip()
        return rest[:1]


Handler = Callable[[re.Match[str], Collector], None]


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


def scanner(rules: Sequence[Rule]) -> Callable[[str, str, int], list[SpokenWord]]:
    """A normaliser ``(text, language, base) -> words`` from rules tried in order."""
    # Each rule is one named alternative; the rule's own regex re-matches to get its groups.
    combined = re.compile("|".join(f"(?P<{r.name}>{r.pattern.replace('(?m)', '')})"
                                   for r in rules), re.MULTILINE)
    by_name = {rule.name: rule for rule in rules}

    def run(text: str, language: str, base: int = 0) -> list[SpokenWord]:
        out = Collector(text, language, base)
        for found in combined.finditer(text):
            rule = by_name[found.lastgroup or ""]
            m = rule.regex.match(text, found.start())
            if m is not None:
                rule.handler(m, out)
        return out.words

    return run



def _forced(m: re.Match[str], out: Collector) -> None:
    out.words.append(SpokenWord(m.group(1), out.base + m.start(), out.base + m.end(),
                                phonemes=m.group(2).strip()))


def _skip(m: re.Match[str], out: Collector) -> None:
    pass


def _punct(m: re.Match[str], out: Collector) -> None:
    mark = m.group()
    if mark in ("...", "…"):
        out.punct("…")
    elif mark in ("--", "—", "–", "-"):
        out.punct("—")
    elif mark[0] in ",;:":
        out.punct(mark[0])
    else:  # a run of sentence marks: a question if any is, else the last (the danda is a period)
        out.punct("?" if "?" in mark else "." if mark[-1] == "।" else mark[-1])


def _newline(m: re.Match[str], out: Collector) -> None:
    out.punct(".")  # a line break ends a heading, a list item or a paragraph


def markdown_rules(link: Handler) -> tuple[Rule, ...]:
    """Inline ``[word](/phonemes/)``, images, links (``link`` speaks the text), code fences and
    list bullets: the Markdown that every language's rules start with."""
    return (
        Rule("forced", r"\[([^\]\n]+)\]\(/([^/)\n]+)/\)", _forced),
        Rule("image", r"!\[[^\]\n]*\]\([^)\s]*\)", _skip),
        Rule("link", r"\[([^\]\n]+)\]\([^)\s]+\)", link),
        Rule("fence", r"```[\w+-]*", _skip),
        Rule("bullet", r"(?m)^[ \t]*(?:[-*+•]|\d+[.)])(?=[ \t])", _skip),
    )


def punctuation_rules(sentence_marks: str) -> tuple[Rule, ...]:
    """Spoken punctuation (attached to the word before it) and line breaks: the last rules."""
    marks = re.escape(sentence_marks)
    return (
        Rule("punct", rf"\.{{3}}|…|--|—|–(?=\s)|(?<=\s)-(?=\s)|[{marks}]+|[,;:](?!\S)", _punct),
        Rule("newline", r"\n", _newline),
    )

"""Spanish, French, Hindi, Italian, Portuguese: text -> the words espeak-ng is given.

espeak-ng reads most of these languages well on its own, but not what LLMs write around the
words: it drops the decimal comma (``3,5`` -> "tres cinco"), reads ``1.500`` as "uno
quinientos", and phonemizer cuts numbers at punctuation. So numbers (thousands separators,
decimals), percentages and currency amounts become words here (num2words where it knows the
language; Hindi digits stay digits, which espeak-ng reads), Markdown goes as in English, and
everything else is words and punctuation. The English normaliser never runs on these languages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from num2words import num2words

from realtime.text.languages import Language
from realtime.text.languages import language as find_language
from realtime.text.words import (
    Collector,
    Rule,
    SpokenWord,
    markdown_rules,
    punctuation_rules,
    scanner,
)

__all__ = ["WORD", "normalize_other"]

# A letter, or a combining mark (Devanagari's vowel signs and virama are marks, not letters,
# so `\w` alone would cut every Hindi word apart).
_LETTER = r"(?:[^\W\d_]|[\u0300-\u036f\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963])"
WORD = rf"{_LETTER}+(?:['’\-]{_LETTER}+)*"
_SPACES = "\u00a0\u202f "  # thousands may be grouped by (no-break) spaces


def _number_pattern(lang: Language) -> str:
    if lang.decimal_comma:  # 1.500 / 1 500 (thousands), 3,5 (decimal)
        return rf"\d{{1,3}}(?:[.{_SPACES}]\d{{3}})+(?!\d)(?:,\d+)?|\d+(?:,\d+)?"
    return r"\d+(?:,\d+)*(?:\.\d+)?"  # 1,500 and Indian 1,00,000 (thousands), 3.5 (decimal)


def _integer(digits: str, lang: Language) -> list[str]:
    if lang.num2words is None:
        return [digits]  # espeak-ng reads the digits in the language
    return str(num2words(int(digits), lang=lang.num2words)).split()


def number_words(raw: str, lang: Language) -> list[str]:
    """``3,5`` -> tres coma cinco; ``1.500`` -> mil quinientos (per the language's separators)."""
    point, group = (",", f".{_SPACES}") if lang.decimal_comma else (".", ",")
    whole, _, frac = raw.partition(point)
    words = _integer(re.sub(f"[{group}]", "", whole) or "0", lang)
    if frac:
        zeros = len(frac) - len(frac.lstrip("0"))
        words += [lang.decimal_word, *(_integer("0", lang) * zeros)]
        if frac.lstrip("0"):
            words += _integer(frac.lstrip("0"), lang)
    return [w for w in words if w]


def _is_one(raw: str, lang: Language) -> bool:
    point = "," if lang.decimal_comma else "."
    whole, _, frac = raw.partition(point)
    return whole == "1" and not frac.strip("0")


def _rules(lang: Language) -> tuple[Rule, ...]:
    num = _number_pattern(lang)
    # an amount of money may also be written with a decimal point and cents ($4.50)
    cash = rf"\d+\.\d\d(?![\d.])|{num}" if lang.decimal_comma else num
    currency = dict(lang.currency)
    symbols = "|".join(re.escape(s) for s in sorted(currency, key=len, reverse=True)) or "(?!)"

    def link(m: re.Match[str], out: Collector) -> None:
        out.words.extend(normalize_other(m.group(1), lang.code, base=out.base + m.start(1)))

    def money(m: re.Match[str], out: Collector) -> None:
        symbol = m.group("sa") or m.group("sb")
        amount = m.group("na") or m.group("nb")
        one, many = currency[symbol]
        if lang.decimal_comma and re.fullmatch(r"\d+\.\d\d", amount):
            amount = amount.replace(".", ",")  # $4.50 written the English way: cents
        whole, point, cents = amount.partition("," if lang.decimal_comma else ".")
        if point and not cents.strip("0"):
            amount = whole  # R$ 1.500,00: no cents to say
        out.add([*number_words(amount, lang), one if _is_one(amount, lang) else many],
                m.start(), m.end())

    def percent(m: re.Match[str], out: Collector) -> None:
        out.add([*number_words(m.group(1), lang), *lang.percent.split()], m.start(), m.end())

    def number(m: re.Match[str], out: Collector) -> None:
        out.add(number_words(m.group(), lang), m.start(), m.end())

    def abbreviation(m: re.Match[str], out: Collector) -> None:
        out.add(expansions[m.group().removesuffix(".")], m.start(), m.end())
        after = out.next_char(m.end())
        if m.group() == "etc." and (after == "" or after.isupper() or after in "¿¡"):
            out.punct(".")  # "etc." may end the sentence too

    def word(m: re.Match[str], out: Collector) -> None:
        out.add([m.group().replace("’", "'")], m.start(), m.end())

    expansions = dict(lang.abbreviations)
    written = sorted(expansions, key=len, reverse=True)
    dotted = "|".join(re.escape(a) for a in written) or "(?!)"
    titles = "|".join(re.escape(a) for a in written if a[0].isupper()) or "(?!)"
    return (
        *markdown_rules(link),
        Rule("money", rf"(?P<sb>{symbols})\s?(?P<nb>{cash})|(?P<na>{cash})\s?(?P<sa>{symbols})",
             money),
        Rule("percent", rf"({num})\s?%", percent),
        Rule("number", num, number),
        # "Sr." anywhere; a capitalised one without its period before a name ("Mme Martin").
        Rule("abbr", rf"(?<!\w)(?:(?:{dotted})\.|(?:{titles})(?=\s+[A-ZÀ-Þ]))",
             abbreviation),
        Rule("word", WORD, word),
        *punctuation_rules(lang.sentence_marks),
    )


@functools.cache
def _scanner(code: str) -> Callable[[str, str, int], list[SpokenWord]]:
    return scanner(_rules(find_language(code)))


def normalize_other(text: str, language: str, base: int = 0) -> list[SpokenWord]:
    """Spoken words of ``text`` in a language other than English (see the module doc)."""
    return _scanner(language)(text, language, base)

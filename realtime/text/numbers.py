"""Numbers as spoken English words (num2words for the wording, our rules for the choices).

Every function returns a list of plain words (no commas, no hyphens), ready for G2P.
"""

from __future__ import annotations

from num2words import num2words

__all__ = [
    "cardinal", "decimal", "digits", "fraction", "month_name", "ordinal", "year",
]

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_LONG = 15  # integers longer than this are read digit by digit


def _words(text: str) -> list[str]:
    return text.replace(",", " ").replace("-", " ").split()


def digits(text: str) -> list[str]:
    """Each digit of ``text`` as a word; other characters are skipped."""
    return [_DIGITS[int(c)] for c in text if c.isdigit()]


def cardinal(text: str) -> list[str]:
    """An integer written with optional thousands commas: ``1,200`` -> one thousand two hundred."""
    raw = text.replace(",", "")
    negative = raw.startswith("-")
    raw = raw.lstrip("-")
    if not raw.isdigit():
        return digits(raw)
    if len(raw) > _LONG or (len(raw) > 1 and raw.startswith("0")):
        out = digits(raw)
    else:
        out = _words(num2words(int(raw)))
    return ["minus", *out] if negative else out


def decimal(text: str) -> list[str]:
    """``3.14`` -> three point one four; ``.5`` -> point five; ``-2.5`` -> minus two point five."""
    raw = text.replace(",", "")
    negative = raw.startswith("-")
    whole, _, frac = raw.lstrip("-").partition(".")
    out = cardinal(whole) if whole else []
    out += ["point", *digits(frac)]
    return ["minus", *out] if negative else out


def ordinal(number: int) -> list[str]:
    return _words(num2words(number, to="ordinal"))


def year(number: int) -> list[str]:
    """A year as people say it: 1999 -> nineteen ninety nine, 2024 -> twenty twenty four."""
    if 2000 <= number <= 2009:
        return cardinal(str(number))
    return _words(num2words(number, to="year"))


def fraction(numerator: int, denominator: int) -> list[str]:
    """1/2 -> one half, 3/4 -> three quarters, 2/3 -> two thirds, 5/16 -> five sixteenths."""
    top = cardinal(str(numerator))
    if denominator == 2:
        bottom = ["half"] if numerator == 1 else ["halves"]
    elif denominator == 4:
        bottom = ["quarter"] if numerator == 1 else ["quarters"]
    else:
        bottom = ordinal(denominator)
        if numerator != 1:
            bottom[-1] += "s"
    return [*top, *bottom]


def month_name(number: int) -> str:
    return MONTHS[number - 1]

"""What LLMs write -> the words a speaker says, each mapped back to its characters.

``normalize(text)`` scans the text once with an ordered set of rules (the first rule that
matches at a position wins) and returns ``SpokenWord``s: the spoken form, the span of the
original characters it stands for, the punctuation that follows it (kept for prosody), and,
for inline ``[word](/phonemes/)``, phonemes forced by the writer. Characters no rule claims
(Markdown markers, emoji, stray symbols, whitespace) are simply not spoken.
"""

from __future__ import annotations

import re

from realtime.text import numbers as num
from realtime.text.languages import language as find_language
from realtime.text.multilingual import normalize_other
from realtime.text.words import (
    Collector,
    Rule,
    SpokenWord,
    markdown_rules,
    punctuation_rules,
    scanner,
    spoken_text,
)

__all__ = ["ABBREVIATIONS", "SENTENCE_ABBREVIATIONS", "SpokenWord", "normalize", "spoken_text"]


_MONTHS = {name[:3]: i + 1 for i, name in enumerate(num.MONTHS)}
_MONTH_RE = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|"
             r"Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_UNITS: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "mi": ("mile", "miles"), "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "mL": ("milliliter", "milliliters"), "ml": ("milliliter", "milliliters"),
    "TB": ("terabyte", "terabytes"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz"), "MHz": ("megahertz", "megahertz"),
    "kHz": ("kilohertz", "kilohertz"), "Hz": ("hertz", "hertz"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "min": ("minute", "minutes"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"), "x": ("times", "times"),
}
_GB_SPELLING = {"kilometer": "kilometre", "kilometers": "kilometres",
                "centimeter": "centimetre", "centimeters": "centimetres",
                "millimeter": "millimetre", "millimeters": "millimetres",
                "milliliter": "millilitre", "milliliters": "millilitres"}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "sen", "sen")}
_SCALES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million",
           "b": "billion", "B": "billion", "bn": "billion", "thousand": "thousand",
           "million": "million", "billion": "billion", "trillion": "trillion"}
_ABBREVIATIONS = {
    "Dr": "doctor", "Mr": "mister", "Mrs": "missus", "Ms": "miz", "Prof": "professor",
    "Jr": "junior", "Sr": "senior", "Mt": "mount", "Ave": "avenue", "Blvd": "boulevard",
    "vs": "versus", "etc": "et cetera", "approx": "approximately", "Dept": "department",
    "Inc": "incorporated", "Ltd": "limited", "Co": "company", "Fig": "figure", "Gov": "governor",
    "Sen": "senator", "Rep": "representative", "Gen": "general", "Capt": "captain",
}
# Abbreviations that may also end a sentence (their period then counts twice).
_MAY_END = frozenset({"etc", "Inc", "Ltd", "Co", "Jr", "Sr"})
ABBREVIATIONS = frozenset({*_ABBREVIATIONS, "St", "No", "no", "e.g", "i.e", "a.k.a", "E.g", "I.e",
                           *(m[:3] for m in num.MONTHS if m != "May"), "Sept"})
"""Words whose period does not end a sentence (unless in SENTENCE_ABBREVIATIONS)."""
SENTENCE_ABBREVIATIONS = _MAY_END
_SYMBOLS = {"&": "and", "+": "plus", "@": "at", "=": "equals", "%": "percent",
            "×": "times", "°": "degrees", "#": "number", "~": "about", "$": "dollars",
            "€": "euros", "£": "pounds"}
_TLD = r"(?:com|org|net|io|ai|dev|edu|gov|co|uk|us|app|info|me|tv|ly)"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _link(m: re.Match[str], out: Collector) -> None:
    inner = normalize(m.group(1), out.language, base=out.base + m.start(1))
    out.words.extend(inner)


def _spell_address(text: str) -> list[str]:
    """``john.smith@example.com`` -> john dot smith at example dot com."""
    words: list[str] = []
    for part in re.findall(r"[A-Za-z]+|\d+|[.@/:_\-?=&#+~%]", text):
        if part.isdigit():
            words += num.digits(part) if len(part) > 4 else num.cardinal(part)
        elif part.isalpha():
            words += list(part.upper()) if part.lower() == "www" else [part.lower()]
        else:
            words += {".": ["dot"], "@": ["at"], "/": ["slash"], ":": ["colon"],
                      "_": ["underscore"], "-": ["dash"], "?": ["question", "mark"],
                      "=": ["equals"], "&": ["and"], "#": ["hash"], "+": ["plus"],
                      "~": ["tilde"], "%": ["percent"]}[part]
    return words


def _address(m: re.Match[str], out: Collector) -> None:
    text = re.sub(r"^https?://", "", m.group())
    out.add(_spell_address(text.rstrip("/")), m.start(), m.end(), letters=True)


def _phone(m: re.Match[str], out: Collector) -> None:
    raw = m.group()
    words = ["plus"] if raw.startswith("+") else []
    out.add(words + num.digits(raw), m.start(), m.end())


def _clock(hour: int, minute: int) -> list[str]:
    if minute == 0:
        return [*num.cardinal(str(hour)), "o'clock"]
    if minute < 10:
        return [*num.cardinal(str(hour)), "oh", *num.cardinal(str(minute))]
    return num.cardinal(str(hour)) + num.cardinal(str(minute))


def _time(m: re.Match[str], out: Collector) -> None:
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    meridiem = (m.group(4) or "").replace(".", "").upper()
    if hour > 24 or minute > 59:
        out.add(num.cardinal(str(hour)) + num.cardinal(str(minute)), m.start(), m.end())
        return
    words = _clock(hour, minute)
    if meridiem:
        if words[-1] == "o'clock":
            words.pop()
        words += list(meridiem)
    out.add(words, m.start(1), m.end(), letters=True)


def _date_words(month: int, day: int, year: str | None, language: str) -> list[str]:
    name = num.month_name(month)
    if language == "en-gb":
        words = ["the", *num.ordinal(day), "of", name]
    else:
        words = [name, *num.ordinal(day)]
    if year:
        y = int(year) if len(year) == 4 else 2000 + int(year)
        words += num.year(y)
    return words


def _iso_date(m: re.Match[str], out: Collector) -> None:
    y, mo, d = (int(g) for g in m.groups())
    if 1 <= mo <= 12 and 1 <= d <= 31:
        out.add(_date_words(mo, d, str(y), out.language), m.start(), m.end())
    else:
        out.add(num.cardinal(str(y)) + num.cardinal(str(mo)) + num.cardinal(str(d)),
                m.start(), m.end())


def _month_date(m: re.Match[str], out: Collector) -> None:
    out.add(num.month_name(_MONTHS[m.group(1)[:3]]), m.start(1), m.end(1))
    out.add(num.ordinal(int(m.group(2))), m.start(2), m.end(2))
    if m.group(3):
        out.add(num.year(int(m.group(3))), m.start(3), m.end(3))


def _day_month(m: re.Match[str], out: Collector) -> None:
    out.add(["the", *num.ordinal(int(m.group(1)))], m.start(1), m.end(1))
    out.add(["of", num.month_name(_MONTHS[m.group(2)[:3]])], m.start(2), m.end(2))
    if m.group(3):
        out.add(num.year(int(m.group(3))), m.start(3), m.end(3))


def _slash(m: re.Match[str], out: Collector) -> None:
    a, b, year = int(m.group(1)), int(m.group(2)), m.group(3)
    month, day = (b, a) if out.language == "en-gb" else (a, b)
    if month > 12 >= day:  # 31/12 in en-us, 12/31 in en-gb: only one reading is a date
        month, day = day, month
    if not year and a < b and b in (2, 3, 4, 8, 16):
        words = num.fraction(a, b)
    elif 1 <= month <= 12 and 1 <= day <= 31:
        words = _date_words(month, day, year, out.language)
    else:
        words = [*num.cardinal(str(a)), "over", *num.cardinal(str(b))]
        if year:
            words += ["over", *num.cardinal(year)]
    out.add(words, m.start(), m.end())


def _amount(number: str) -> list[str]:
    return num.decimal(number) if "." in number else num.cardinal(number)


def _currency(m: re.Match[str], out: Collector) -> None:
    sign, symbol, amount, scale = m.group(1), m.group(2), m.group(3), m.group(4)
    one, many, sub_one, sub_many = _CURRENCY[symbol]
    words = ["minus"] if sign else []
    whole, _, cents = amount.replace(",", "").partition(".")
    if scale:
        words += [*_amount(amount), _SCALES[scale], many]
    elif cents and len(cents) == 2 and int(cents):
        words += [*num.cardinal(whole), one if whole == "1" else many] if int(whole) else []
        if int(whole):
            words.append("and")
        words += [*num.cardinal(str(int(cents))), sub_one if cents == "01" else sub_many]
    else:
        words += [*_amount(amount if cents and int(cents) else whole),
                  one if whole == "1" and not (cents and int(cents)) else many]
    out.add(words, m.start(), m.end())


def _percent(m: re.Match[str], out: Collector) -> None:
    out.add([*_amount(m.group(1)), "percent"], m.start(), m.end())


def _ordinal(m: re.Match[str], out: Collector) -> None:
    out.add(num.ordinal(int(m.group(1))), m.start(), m.end())


def _decade(m: re.Match[str], out: Collector) -> None:
    words = num.year(int(m.group(1)))
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    out.add(words, m.start(), m.end())


def _range(m: re.Match[str], out: Collector) -> None:
    a, b = m.group(1), m.group(2)
    out.add(_number_words(a), m.start(1), m.end(1))
    out.add(["to"], m.end(1), m.start(2))
    out.add(_number_words(b), m.start(2), m.end(2))


def _unit(m: re.Match[str], out: Collector) -> None:
    amount, unit = m.group(1), m.group(2)
    singular, plural = _UNITS[unit]
    spoken = singular if amount in ("1", "-1") else plural
    if out.language == "en-gb":
        spoken = " ".join(_GB_SPELLING.get(w, w) for w in spoken.split())
    out.add(_number_words(amount), m.start(1), m.end(1))
    out.add(spoken, m.start(2), m.end(2))


def _number_words(raw: str) -> list[str]:
    raw = raw.replace("−", "-")
    if "." in raw:
        return num.decimal(raw)
    plain = raw.lstrip("-")
    if (len(plain) == 4 and plain.isdigit() and not raw.startswith("-")
            and 1100 <= int(plain) < 2100):
        return num.year(int(plain))
    return num.cardinal(raw)


def _number(m: re.Match[str], out: Collector) -> None:
    out.add(_number_words(m.group()), m.start(), m.end())


def _abbreviation(m: re.Match[str], out: Collector) -> None:
    key = m.group(1) or m.group(2)
    after = out.next_char(m.end())
    if key == "St":
        out.add("saint" if after.isupper() else "street", m.start(), m.end())
    else:
        out.add(_ABBREVIATIONS[key], m.start(), m.end())
    if key in _MAY_END and (after == "" or after.isupper()):
        out.punct(".")


def _latin(m: re.Match[str], out: Collector) -> None:
    key = m.group().lower().replace(".", "")
    out.add({"eg": "for example", "ie": "that is", "aka": "also known as"}[key],
            m.start(), m.end())
    out.punct(",")


def _number_abbreviation(m: re.Match[str], out: Collector) -> None:
    out.add("number", m.start(), m.end())


def _initials(m: re.Match[str], out: Collector) -> None:
    for letter in re.finditer(r"[A-Za-z]", m.group()):
        out.add(letter.group().upper(), m.start() + letter.start(), m.start() + letter.end(),
                letters=True)


def _email_word(m: re.Match[str], out: Collector) -> None:
    out.add(m.group()[0] + "mail", m.start(), m.end())


def _word(m: re.Match[str], out: Collector) -> None:
    out.add(m.group().replace("’", "'"), m.start(), m.end())


def _symbol(m: re.Match[str], out: Collector) -> None:
    out.add(_SYMBOLS[m.group()], m.start(), m.end())


_RULES = (
    *markdown_rules(_link),
    Rule("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", _address),
    Rule("url", r"(?:https?://|www\.)[^\s<>()\[\]\"']*[^\s<>()\[\]\"'.,;:!?]", _address),
    Rule("domain", rf"\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.{_TLD}\b(?:/[^\s<>()\[\]\"']*"
                    r"[^\s<>()\[\]\"'.,;:!?])?", _address),
    Rule("phone", r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b"
                   r"|\b\d{3}-\d{4}\b", _phone),
    Rule("time", r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp]\.?[Mm])\b)?"
                  r"|\b(\d{1,2})\s?([AaPp]\.?[Mm])\b", lambda m, o: _time_any(m, o)),
    Rule("dottime", r"\b(\d{1,2})\.(\d{2})()\s?([AaPp]\.?[Mm])\b", _time),
    Rule("isodate", r"\b(\d{4})-(\d{2})-(\d{2})\b", _iso_date),
    Rule("monthdate", rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?",
          _month_date),
    Rule("daymonth", rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\b"
                      r"(?:,?\s+(\d{4})\b)?", _day_month),
    Rule("slash", r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b", _slash),
    Rule("currency", rf"(?<![\w])([-−])?([$€£¥])\s?({_NUM})(?:\s?(thousand|million|billion|"
                      r"trillion|bn|mn|[kKmMbB])\b)?", _currency),
    Rule("percent", rf"(-?{_NUM})\s?%", _percent),
    Rule("ordinal", r"\b(\d+)(?:st|nd|rd|th)\b", _ordinal),
    Rule("decade", r"\b(1[1-9]\d0|20\d0)s\b", _decade),
    Rule("range", r"\b(\d+(?:\.\d+)?)[-–](\d+(?:\.\d+)?)\b", _range),
    Rule("unit", rf"((?<![\w.])[-−]?{_NUM})\s?({_UNIT_RE})(?![\w/])", _unit),
    Rule("number", rf"(?:(?<![\w.])[-−])?{_NUM}|\.\d+", _number),
    Rule("latin", r"\b(?:[Ee]\.[Gg]|[Ii]\.[Ee]|[Aa]\.[Kk]\.[Aa])\b\.?", _latin),
    Rule("numabbr", r"\b[Nn]o\.(?=\s*\d)", _number_abbreviation),
    Rule("abbr", r"\b(" + "|".join(_ABBREVIATIONS) + r"|St)\."
                  r"|\b(Dr|Mr|Mrs|Ms|Prof|St)(?=\s+[A-Z])", _abbreviation),
    Rule("initials", r"\b(?:[A-Z]\.){2,}|\b[A-Z]\.(?=\s+[A-Z])", _initials),
    Rule("email_word", r"\b[Ee]-mail", _email_word),
    Rule("word", r"[^\W\d_]+(?:['’][^\W\d_]+)*", _word),
    Rule("symbol", r"[&+@=%×°$€£]|#(?=\d)|~(?=\d)", _symbol),
    *punctuation_rules(".!?"),
)


def _time_any(m: re.Match[str], out: Collector) -> None:
    if m.group(1) is None:  # "3pm"
        hour = int(m.group(5))
        words = num.cardinal(str(hour)) + list(m.group(6).replace(".", "").upper())
        out.add(words, m.start(), m.end(), letters=True)
    else:
        _time(m, out)


_ENGLISH = scanner(_RULES)


def normalize(text: str, language: str = "en-us", base: int = 0) -> list[SpokenWord]:
    """Spoken words of ``text``, with spans offset by ``base`` (the text's position in a whole).

    English gets the rules above; the other languages their own (``realtime.text.multilingual``).
    """
    if find_language(language).english:
        return _ENGLISH(text, language, base)
    return normalize_other(text, language, base)

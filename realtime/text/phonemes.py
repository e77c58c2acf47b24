"""Phoneme input from clients: Kokoro's symbols, passed through unchanged once validated."""

from __future__ import annotations

from realtime.errors import InputError
from realtime.text.g2p import vocab_symbols

__all__ = ["validate_phonemes"]


def validate_phonemes(phonemes: str) -> str:
    """Return ``phonemes`` with whitespace runs collapsed to single spaces, or raise.

    Every other character must be one of Kokoro's symbols: an unknown one raises
    ``InputError`` naming it (and its code point, since many look alike: ``g`` vs ``ɡ``).
    """
    text = " ".join(phonemes.split())
    unknown = sorted(set(text) - vocab_symbols())
    if unknown:
        named = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in unknown)
        raise InputError(f"unknown phoneme symbol{'s' if len(unknown) > 1 else ''}: {named}")
    return text

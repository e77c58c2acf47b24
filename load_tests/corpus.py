"""What the simulated agents say: assistant-like sentences, streamed as LLM-like token deltas."""

from __future__ import annotations

import random
import re

SENTENCES = (
    "Sure, I can help you with that.",
    "Let me check the availability for Thursday evening.",
    "I found two tables for four people, one at seven and one at half past eight.",
    "Your order number is 48213, and it should arrive by Friday afternoon.",
    "I'm sorry, that flight is fully booked, but there is a seat on the next one at 6:45.",
    "The total comes to $42.50, including tax and the delivery fee.",
    "Would you like me to send the confirmation to the email address on file?",
    "Okay, I've moved your appointment to Monday the 14th at ten in the morning.",
    "The pharmacy on Main Street is open until nine tonight.",
    "Just to confirm, you'd like the large pepperoni pizza with extra cheese and a side salad.",
    "Your current balance is one thousand two hundred and five dollars.",
    "I can transfer you to a specialist, or I can try to answer your question myself.",
    "It looks like the package was delivered to your front door at 3:12 this afternoon.",
    "Great, you're all set.",
    "Is there anything else I can help you with today?",
    "The weather in Boston tomorrow will be sunny, with a high of seventy-two degrees.",
    "To reset your password, open the app, tap settings, and choose account security.",
    "I understand how frustrating that must be, and I'll do my best to sort it out quickly.",
    "Your subscription renews on the first of every month, and you can cancel at any time.",
    "There's a small fee of five dollars for changing the reservation less than a day ahead.",
    "Hmm, I didn't quite catch that; could you say the date again?",
    "The museum is about a fifteen-minute walk from your hotel, heading north on Park Avenue.",
    "I've added a reminder for your dentist appointment next Wednesday.",
    "Unfortunately, we don't ship to that region yet, but we're working on it.",
    "Thanks for waiting; I have the results of your request right here.",
    "The quickest route avoids the highway and takes about twenty-five minutes.",
    "Yes, the store accepts returns within thirty days if you keep the receipt.",
    "Let me read that back to you: three, one, four, one, five, nine.",
)
_PIECE = re.compile(r"\s*[\w'$.:-]+|\s*[^\w\s]|\s+$")


def tokens(text: str, rng: random.Random) -> list[str]:
    """Split like an LLM tokenizer roughly does: words with their leading space, punctuation
    apart, long words in pieces of 3 to 5 characters (about 4 characters a token)."""
    out: list[str] = []
    for piece in _PIECE.findall(text):
        while len(piece.strip()) > 6:
            cut = rng.randint(3, 5) + (len(piece) - len(piece.lstrip()))
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    return out


def utterance(rng: random.Random, min_sentences: int, max_sentences: int) -> str:
    """One agent turn: a few sentences, each followed by a space."""
    return "".join(s + " " for s in rng.sample(SENTENCES, rng.randint(min_sentences,
                                                                       max_sentences)))

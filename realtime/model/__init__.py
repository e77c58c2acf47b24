"""KModel and its configuration."""

from realtime.model.config import (
           MAX_PHONEMES,
           SAMPLE_RATE,
           ISTFTNetConfig,
           KModelConfig,
           PLBertConfig,
)
from realtime.model.kmodel import KModel, KOutput, SynthItem

__all__ = ["MAX_PHONEMES", "SAMPLE_RATE", "ISTFTNetConfig", "KModel", "KModelConfig", "KOutput",
           "PLBertConfig", "SynthItem"]

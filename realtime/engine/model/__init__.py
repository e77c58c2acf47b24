"""KModel and its configuration."""

from .config import MAX_PHONEMES, SAMPLE_RATE, ISTFTNetConfig, KModelConfig, PLBertConfig
from .kmodel import KModel, KOutput, SynthItem

__all__ = ["MAX_PHONEMES", "SAMPLE_RATE", "ISTFTNetConfig", "KModel", "KModelConfig", "KOutput",
           "PLBertConfig", "SynthItem"]

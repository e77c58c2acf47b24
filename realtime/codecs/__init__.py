"""Audio codecs and containers. Takes samples, knows nothing else."""

"""Engine: the KModel, its weights and voices, and (later) the batching runner."""

"""The runner: torch. Batches in, audio pieces out; CUDA graphs, windows and kernels."""

"""The engine across a process boundary: the ZeroMQ channel and the engine process's entry."""

"""realtime: a real-time WebSocket text-to-speech server built on Kokoro-82M."""

__version__ = "0.1.0"

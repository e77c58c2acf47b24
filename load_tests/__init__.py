"""Load tests against a server on loopback: simulated voice-agent sessions, abusive clients
beside them, and a capacity search. ``python -m load_tests --help``; see docs/performance.md."""

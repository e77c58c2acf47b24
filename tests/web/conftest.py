"""The server tests' fixtures, for the web client's tests."""

from tests.server.conftest import tiny_server  # noqa: F401  (a fixture, used by name)

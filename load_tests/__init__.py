"""Load tests against a server on loopback (to come with the server)."""

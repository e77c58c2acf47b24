"""The HTTP and WebSocket server: Starlette routes, wiring, no logic of its own."""

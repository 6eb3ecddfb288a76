"""How calls arrive: REST (an ASGI gateway on uvicorn's HTTP/1.1) and gRPC.

The transports serve ``bindings``: services with the functions that admit
and run their calls. They know neither the servicer, the emulator nor storage.
"""

"""What makes the server an emulator: the admin API, its faults, inspection and the console.

It plugs into the domain (faults, the decisions answered) and into the
transports (a binding of its own); ``client`` is the typed Python client of
its admin API.
"""

"""Where the server keeps its state: the seam the domain sees, and the SQLite store behind it.

``seam`` is the whole interface (records, ``Repository``, ``Store``,
``UserActivity``); the other modules are the SQLite implementation: the store,
its repository's SQL, the database thread, the row batches and the writer
process with its client.
"""

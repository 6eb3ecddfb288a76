"""The validation proxy (``auxia-decision proxy``), and ``drift-check`` of its recordings."""

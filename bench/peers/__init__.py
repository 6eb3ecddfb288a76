"""Baseline servers measured in the same run as the reference server."""

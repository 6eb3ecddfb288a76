"""The command line's argument types shared by its commands: ports and seconds."""

from __future__ import annotations

import argparse
import math


def port(text: str) -> int:
    """Parse a TCP port: 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        msg = f"not a port (0 to 65535; 0: any free one): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def seconds(text: str) -> float:
    """Parse a duration in seconds: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        msg = f"not a number of seconds above 0: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value

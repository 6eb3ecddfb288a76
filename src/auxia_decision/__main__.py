"""``python -m auxia_decision``: the ``auxia-decision`` command line."""

from __future__ import annotations

import sys

from auxia_decision._cli import main

sys.exit(main())

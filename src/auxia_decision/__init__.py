"""Hand-written companions of the generated ``auxia.decision.model`` package."""

from __future__ import annotations

from auxia_decision._protos import proto_include_path

__all__ = ["proto_include_path"]

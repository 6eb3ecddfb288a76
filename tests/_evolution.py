"""What an evolution fault added to an answer, read off the JSON document itself."""

from __future__ import annotations

from typing import Final

ADDED_MEMBERS: Final = ("evolvedField", "evolvedObject")
ADDED_ENUM_VALUE: Final = "EVOLVED_VALUE"


def evolution_paths(value: object, path: str = "") -> set[str]:
    """Return the JSON path of every member and enum value an evolution fault added.

    Read from the document alone (members by name, the value by its text), not
    from the schema: what a test holds the drift findings to.
    """
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            item_path = f"{path}.{key}" if path else key
            if key in ADDED_MEMBERS:
                found.add(item_path)
            else:
                found |= evolution_paths(item, item_path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= evolution_paths(item, f"{path}[{index}]")
    elif value == ADDED_ENUM_VALUE:
        found.add(path)
    return found

"""The conditions of the listings' queries, for either store's SQL (its placeholder given)."""

from __future__ import annotations

from auxia_decision.server._storage.seam import InteractionFilter


def interaction_conditions(
    project_id: str, after: int, matching: InteractionFilter, mark: str
) -> tuple[list[str], list[object]]:
    """Return the conditions and values that select logged interactions after ``after``.

    ``mark`` is the SQL placeholder (``?`` or ``%s``); an empty project is any.
    """
    conditions = [f"interaction_id > {mark}"]
    values: list[object] = [after]
    for column, value in (
        ("project_id", project_id),
        ("user_id", matching.user_id),
        ("tracking_id", matching.tracking_id),
        ("treatment_id", matching.treatment_id),
    ):
        if value:
            conditions.append(f"{column} = {mark}")
            values.append(value)
    if matching.interaction_type:
        conditions.append(f"kind = {mark}")
        values.append(matching.interaction_type + 1)
    _window(conditions, values, matching.start_micros, matching.end_micros, mark)
    return conditions, values


def served_conditions(
    project_id: str,
    after: int,
    user_id: str,
    window: tuple[int | None, int | None],
    mark: str,
) -> tuple[list[str], list[object]]:
    """Return the conditions and values that select served treatments after ``after``.

    ``window`` is (start inclusive, end exclusive), None for unbounded.
    """
    conditions = [f"served_id > {mark}"]
    values: list[object] = [after]
    for column, value in (("project_id", project_id), ("user_id", user_id)):
        if value:
            conditions.append(f"{column} = {mark}")
            values.append(value)
    _window(conditions, values, *window, mark)
    return conditions, values


def _window(
    conditions: list[str], values: list[object], start: int | None, end: int | None, mark: str
) -> None:
    """Add a time window's conditions (start inclusive, end exclusive) to a query's."""
    if start is not None:
        conditions.append(f"time_micros >= {mark}")
        values.append(start)
    if end is not None:
        conditions.append(f"time_micros < {mark}")
        values.append(end)

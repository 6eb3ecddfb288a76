"""A PostgreSQL URL as start-up errors show it: every password as ***, whatever its shape."""

from __future__ import annotations

import pytest

from auxia_decision.server._startup import StartupError, open_store, password_apart, redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cretPW@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u:s3c#retPW@db/x", "postgresql://u:***@db/x"),
        ("postgres://u:s3c/retPW@db/x", "postgres://u:***@db/x"),
        ("postgresql://u:p@ss@word@db/x", "postgresql://u:***@db/x"),
        (
            "postgresql://db/x?password=s3cretPW&sslmode=off",
            "postgresql://db/x?password=***&sslmode=off",
        ),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("postgresql://db/x", "postgresql://db/x"),
    ],
)
def test_redacted_hides_every_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.parametrize(
    ("url", "without", "password"),
    [
        ("postgresql://u:s3cret@db:5432/x", "postgresql://u@db:5432/x", "s3cret"),
        ("postgresql://u:p%40ss%2Fw@db/x", "postgresql://u@db/x", "p@ss/w"),
        ("postgresql://u:@db/x", "postgresql://u:@db/x", None),  # an empty one: nothing to hide
        ("postgresql://db/x?password=a%26b&sslmode=off", "postgresql://db/x?sslmode=off", "a&b"),
        ("postgresql://u:one@db/x?password=two", "postgresql://u@db/x", "two"),
        (
            "postgresql://db:5432/app?user=svc@tenant&password=S3cret",
            "postgresql://db:5432/app?user=svc@tenant",
            "S3cret",
        ),
        (
            "postgresql://u:pw@db:5432/app?application_name=ci@host",
            "postgresql://u@db:5432/app?application_name=ci@host",
            "pw",
        ),
        # libpq reads these otherwise than a split would: kept whole, the password on the line.
        ("postgresql://u:p@ss@db/x", "postgresql://u:p@ss@db/x", None),
        ("postgresql://db/x?PASSWORD=c", "postgresql://db/x?PASSWORD=c", None),
        ("postgresql://u@db/x?sslmode=off", "postgresql://u@db/x?sslmode=off", None),
        ("postgresql://db/x", "postgresql://db/x", None),
    ],
)
def test_password_apart_leaves_a_url_without_a_password(
    url: str, without: str, password: str | None
) -> None:
    assert password_apart(url) == (without, password)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cret%zzPW@127.0.0.1:1/x",
        "postgresql://u:s3cretPW@127.0.0.1:abc/x",
        "postgresql://u:s3cretPW@127.0.0.1:99999/x",
        "postgresql://u:s3cret@s3cretPW@127.0.0.1:1/x",
        "postgresql://127.0.0.1:1/x?password=s3cretPW&connect_timeout=1",
    ],
    ids=["bad escape", "port not a number", "port out of range", "an @ in it", "a parameter"],
)
def test_a_malformed_or_unreachable_url_is_one_line_without_its_password(url: str) -> None:
    with pytest.raises(StartupError) as raised:
        open_store(url, 10)
    message = str(raised.value)
    assert message.startswith("the database postgresql://"), message
    assert "s3cret" not in message
    assert "\n" not in message

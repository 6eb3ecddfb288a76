"""Keys and base URLs a client refuses before sending anything, never showing a key."""

from __future__ import annotations

import pytest

from auxia_decision import AsyncClient, Client
from auxia_decision._sendable import check_base_url, check_key

SECRET = "S3CRET_KEY"


@pytest.mark.parametrize(
    "key",
    [f"{SECRET}\n", f"{SECRET}\r\n", f"\t{SECRET}", f"{SECRET} ", f"{SECRET}\x00x", "S3CRÉT_KEY"],
    ids=["newline", "crlf", "tab", "trailing space", "nul", "non-ascii"],
)
@pytest.mark.parametrize("client_type", [Client, AsyncClient])
def test_a_key_no_header_can_carry_is_refused_unshown(
    key: str, client_type: type[Client] | type[AsyncClient]
) -> None:
    with pytest.raises(
        ValueError, match="api_key holds a character a header cannot carry"
    ) as caught:
        client_type(api_key=key, base_url="http://127.0.0.1:8080")
    assert "S3CR" not in str(caught.value)


def test_a_key_from_the_environment_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUXIA_API_KEY", f"{SECRET}\n")
    with pytest.raises(ValueError, match=r"the API key \(AUXIA_API_KEY\) holds") as caught:
        Client(base_url="http://127.0.0.1:8080")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("key", ["KEY", "A B", "k-._~+/=:0123456789"])
def test_keys_a_header_carries_pass(key: str) -> None:
    check_key(key, "the key")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://user:pw_S3CRET@127.0.0.1:8080", "carries credentials"),
        ("http://user@127.0.0.1:8080", "carries credentials"),
        ("http://127.0.0.1:8080/?api-key=S3CRET", "must not carry a query or a fragment"),
        ("http://127.0.0.1:8080/#S3CRET", "must not carry a query or a fragment"),
        ("ftp://127.0.0.1", "not an http:// or https:// URL"),
        ("ftp://127.0.0.1/?api-key=S3CRET", "not an http:// or https:// URL"),
        ("127.0.0.1:8080", "not an http:// or https:// URL"),
    ],
)
def test_a_base_url_with_secrets_or_no_http_is_refused(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        Client(api_key="KEY", base_url=url)
    assert "S3CRET" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://apis.auxia.io/", "http://h/p"])
def test_http_base_urls_pass(url: str) -> None:
    check_base_url(url)

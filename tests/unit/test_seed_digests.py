"""A seed shared through a store holds its keys as digests, and works as the seed does."""

from __future__ import annotations

import pytest

from auxia.decision.server import seed_pb2
from auxia_decision.server._domain.auth import as_digest, key_digest, seed_key_digest
from auxia_decision.server._domain.seed import apply_seed, digested, load_seed
from auxia_decision.server._storage.seam import ProjectRecord, Repository
from auxia_decision.server._storage.sqlite_store import SqliteStore


@pytest.mark.parametrize("key", ["TEST_API_KEY", "k", "a key with spaces"])
def test_a_key_written_as_its_digest_reads_back_as_the_same_digest(key: str) -> None:
    written = as_digest(key)
    assert key not in written
    assert seed_key_digest(written) == key_digest(key) == seed_key_digest(key)
    assert as_digest(written) == written


def test_a_digested_seed_holds_no_key_and_stores_the_same_keys() -> None:
    seed = load_seed()
    shared = digested(seed)
    text = shared.SerializeToString()
    keys = [*seed.admin_keys, *(key for project in seed.projects for key in project.api_keys)]
    assert keys
    assert not [key for key in keys if key.encode() in text]
    assert _stored_keys(seed) == _stored_keys(shared)
    api_keys = [key for project in seed.projects for key in project.api_keys]
    assert set(_stored_keys(seed)) == {key_digest(key) for key in api_keys}


def _stored_keys(seed: seed_pb2.Seed) -> dict[bytes, ProjectRecord]:
    """Return the projects by key digest a store holds once the seed is applied."""

    def apply(repository: Repository) -> None:
        apply_seed(repository, seed, 0)

    store = SqliteStore(":memory:")
    try:
        store.run_sync(apply)
        return store.run_sync(lambda repository: repository.projects_by_key_digest())
    finally:
        store.close()

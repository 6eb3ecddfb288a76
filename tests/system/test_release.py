"""tools/release.py on repositories of our own: the changelog rule, tags, the previous schema."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from tools import release


def _git(repo: pathlib.Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _write(repo: pathlib.Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)


def _commit(repo: pathlib.Path, message: str, files: dict[str, str]) -> None:
    _write(repo, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: pathlib.Path) -> pathlib.Path:
    """A repository with a proto, a changelog and a version, in one commit."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _commit(
        tmp_path,
        "start",
        {
            "proto/a.proto": "message A {}\n",
            "CHANGELOG.md": "# Changelog\n\n## Unreleased\n\n- A.\n",
            "src/auxia_decision/_version.py": '__version__ = "0.1.0"\n',
        },
    )
    return tmp_path


def test_a_repository_that_keeps_the_rules_passes(repo: pathlib.Path) -> None:
    _commit(repo, "B", {"proto/a.proto": "message A {}\nmessage B {}\n", "CHANGELOG.md": "- B.\n"})
    assert release.unlisted_schema_changes(repo) == []
    assert release.release_mismatches(repo) == []


def test_a_proto_changed_in_the_work_tree_alone_is_found(repo: pathlib.Path) -> None:
    _write(repo, {"proto/a.proto": "message A { string b = 1; }\n"})
    assert release.unlisted_schema_changes(repo) == [
        "proto changed and CHANGELOG.md did not: add an entry under ## Unreleased"
    ]
    _write(repo, {"CHANGELOG.md": "- b.\n"})
    assert release.unlisted_schema_changes(repo) == []


def test_a_commit_that_changes_a_proto_alone_is_found(repo: pathlib.Path) -> None:
    _commit(repo, "emulator grows", {"server-proto/e.proto": "message E {}\n"})
    [problem] = release.unlisted_schema_changes(repo)
    assert problem.endswith(" emulator grows: changes server-proto, not CHANGELOG.md")


def test_a_merge_counts_as_one_change(repo: pathlib.Path) -> None:
    _git(repo, "checkout", "-q", "-b", "topic")
    _commit(repo, "proto first", {"proto/a.proto": "message A { int32 c = 1; }\n"})
    _commit(repo, "entry later", {"CHANGELOG.md": "- c.\n"})
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    assert release.unlisted_schema_changes(repo) == []


def test_tags_agree_with_the_version_and_the_changelog(repo: pathlib.Path) -> None:
    _commit(repo, "0.1.0", {"CHANGELOG.md": "# Changelog\n\n## 0.1.0 - 2026-12-06\n\n- A.\n"})
    _git(repo, "tag", "v0.1.0")
    assert release.release_mismatches(repo) == []
    assert release.latest_release(repo) == "v0.1.0"
    assert release.previous_schema(repo) == "v0.1.0"
    _git(repo, "tag", "v0.2.0")  # the version file and the changelog still say 0.1.0
    assert release.release_mismatches(repo) == [
        "v0.2.0: src/auxia_decision/_version.py there says 0.1.0",
        "v0.2.0: CHANGELOG.md there has no section ## 0.2.0",
    ]
    _git(repo, "tag", "v0.10.0")
    assert release.latest_release(repo) == "v0.10.0"  # versions compare as numbers


def test_before_the_first_release_the_previous_schema_is_before_its_last_change(
    repo: pathlib.Path,
) -> None:
    first = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    _commit(repo, "B", {"proto/b.proto": "message B {}\n", "CHANGELOG.md": "- B.\n"})
    _commit(repo, "docs", {"README.md": "hello\n"})
    assert release.latest_release(repo) is None
    assert release.previous_schema(repo) == first


def test_the_command_line(repo: pathlib.Path) -> None:
    script = pathlib.Path(release.__file__)
    _write(repo, {"proto/a.proto": "message A { string b = 1; }\n"})
    done = subprocess.run(
        ["python3", str(script), "check"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (
        1,
        "release check: proto changed and CHANGELOG.md did not: add an entry under ## Unreleased\n",
    )

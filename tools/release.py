"""Release discipline, read from git: release tags, the changelog, the schema's previous version.

``python tools/release.py check`` fails (exit 1, one line per problem) when
a change to the protos is not in CHANGELOG.md, or a release tag disagrees
with the version and the changelog; ``latest`` prints the latest
release tag (``make breaking`` checks against it), ``previous`` the
revision whose protos the compatibility test holds the current ones to.
The policy these enforce is docs/versioning.md.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

SCHEMA_PATHS = ("proto", "server-proto")
"""The folders whose changes are changes of a published schema (the API's; the emulator's)."""
CHANGELOG = "CHANGELOG.md"
VERSION_FILE = "src/auxia_decision/_version.py"
_TAG = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
_VERSION = re.compile(r'__version__ = "([^"]+)"')


def git(repo: pathlib.Path, *args: str) -> str:
    """Return what a git command prints in ``repo``, stripped; raise on failure."""
    done = subprocess.run(  # noqa: S603 - git, with arguments we build
        ["git", *args],  # noqa: S607 - git from PATH
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def release_tags(repo: pathlib.Path) -> list[str]:
    """Return the release tags (``vMAJOR.MINOR.PATCH``), oldest version first."""
    tags = [tag for tag in git(repo, "tag", "--list", "v*").split() if _TAG.fullmatch(tag)]
    return sorted(tags, key=lambda tag: tuple(int(part) for part in _TAG.fullmatch(tag).groups()))  # type: ignore[union-attr]


def latest_release(repo: pathlib.Path) -> str | None:
    """Return the latest release tag reachable from HEAD, or None before the first release."""
    reachable = set(git(repo, "tag", "--list", "v*", "--merged", "HEAD").split())
    tags = [tag for tag in release_tags(repo) if tag in reachable]
    return tags[-1] if tags else None


def previous_schema(repo: pathlib.Path) -> str:
    """Return the revision whose protos the current ones must stay compatible with.

    The latest release tag; before the first release, the version of the
    protos before their last change (the parent of the last commit that
    changed them), so that the comparison always has two versions.
    """
    tag = latest_release(repo)
    if tag is not None:
        return tag
    last_change = git(repo, "log", "-1", "--format=%H", "HEAD", "--", *SCHEMA_PATHS)
    if not last_change:
        raise RuntimeError("no commit changes the protos: there is no previous schema")
    return git(repo, "rev-parse", f"{last_change}^")


def _changed(repo: pathlib.Path, *diff: str) -> set[str]:
    """Return the top-level paths of the schema and the changelog a diff touches."""
    names = git(repo, "diff", "--name-only", *diff, "--", *SCHEMA_PATHS, CHANGELOG).splitlines()
    return _top_level(names)


def _top_level(names: list[str]) -> set[str]:
    """Return the schema folders and the changelog among a change's paths."""
    return {name if name == CHANGELOG else name.split("/")[0] for name in names}


def unlisted_schema_changes(repo: pathlib.Path) -> list[str]:
    """Return a line for each change to the protos that CHANGELOG.md does not go with.

    Checked: the work tree against HEAD (staged or not), and each commit of
    HEAD's first-parent history since CHANGELOG.md was added (a merge
    counts as one change: its branch may add the entry in any commit).
    """
    problems = []
    touched = _changed(repo, "HEAD")
    if touched - {CHANGELOG} and CHANGELOG not in touched:
        problems.append(
            f"{', '.join(sorted(touched))} changed and {CHANGELOG} did not: "
            "add an entry under ## Unreleased"
        )
    start = git(repo, "log", "--diff-filter=A", "--format=%H", "HEAD", "--", CHANGELOG)
    if not start:
        return [*problems, f"{CHANGELOG} is missing: every change to the protos goes in it"]
    first = start.splitlines()[-1]
    # One git log: each first-parent commit (a merge against its first parent) and its paths.
    log = git(
        repo,
        "log",
        "--first-parent",
        "-m",
        "--name-only",
        "--format=%x00%h %s",
        f"{first}..HEAD",
        "--",
        *SCHEMA_PATHS,
        CHANGELOG,
    )
    for record in log.split("\x00")[1:]:
        subject, *names = [line for line in record.splitlines() if line]
        touched = _top_level(names)
        if touched - {CHANGELOG} and CHANGELOG not in touched:
            problems.append(f"{subject}: changes {', '.join(sorted(touched))}, not {CHANGELOG}")
    return problems


def release_mismatches(repo: pathlib.Path) -> list[str]:
    """Return a line for each release tag whose version or changelog section is missing."""
    problems = []
    for tag in release_tags(repo):
        version = tag.removeprefix("v")
        found = _VERSION.search(git(repo, "show", f"{tag}:{VERSION_FILE}"))
        if found is None or found.group(1) != version:
            problems.append(f"{tag}: {VERSION_FILE} there says {found and found.group(1)}")
        changelog = git(repo, "show", f"{tag}:{CHANGELOG}")
        if not re.search(rf"^## {re.escape(version)}\b", changelog, re.MULTILINE):
            problems.append(f"{tag}: {CHANGELOG} there has no section ## {version}")
    return problems


def main(argv: list[str]) -> int:
    """Run ``check`` or ``previous`` on the repository in the current directory."""
    repo = pathlib.Path.cwd()
    if argv == ["latest"]:
        print(latest_release(repo) or "")
        return 0
    if argv == ["previous"]:
        print(previous_schema(repo))
        return 0
    if argv == ["check"]:
        problems = unlisted_schema_changes(repo) + release_mismatches(repo)
        for problem in problems:
            print(f"release check: {problem}", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python tools/release.py check|latest|previous", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

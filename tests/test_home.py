"""The home is private: created 700, its files 600, and a looser one is pointed out."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def open_umask():
    """A user's usual umask (022), whatever an earlier test left; put back afterwards."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _everything_under(folder: Path) -> list[Path]:
    return [folder, *folder.rglob("*")]


def test_a_new_home_and_what_is_written_in_it_are_private(open_umask, cli, home_dir, tmp_path):
    posts = tmp_path / "posts.txt"
    posts.write_text("a private message\n%\nanother one\n", encoding="utf-8")
    result = cli("corpus", "import", str(posts), "--name", "mine")
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    assert _mode(home_dir) == 0o700
    assert _mode(home_dir / "marinade.db") == 0o600
    loose = [p for p in _everything_under(home_dir) if _mode(p) & 0o077]
    assert loose == []
    assert {p.name for p in home_dir.iterdir()} >= {"marinade.db", "corpora", "runs", "models"}


def test_an_existing_loose_home_gets_one_warning_line_with_the_fix(open_umask, cli, home_dir):
    home_dir.mkdir(mode=0o755)
    home_dir.chmod(0o755)
    result = cli("corpus", "list")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert f"{home_dir} (mode 755)" in warnings[0]
    assert f"chmod -R go-rwx {home_dir}" in warnings[0]
    assert _mode(home_dir) == 0o755  # pointed out, not changed behind the user's back

    subprocess.run(["chmod", "-R", "go-rwx", str(home_dir)], check=True)
    again = cli("corpus", "list")
    assert "warning" not in again.stderr

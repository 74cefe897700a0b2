"""A home byom creates keeps keys, prompts and answers from other users of the machine."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from byom.core.home import make_private_dir, open_private
from byom.core.local.workspace import LocalWorkspace


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_0700_and_its_database_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)  # a umask that would leave both readable by everyone
    try:
        ws = LocalWorkspace(tmp_path / "nested" / "home")
        ws.close()
    finally:
        os.umask(old)
    home = tmp_path / "nested" / "home"
    assert mode(home) == 0o700
    for db in home.glob("byom.db*"):
        assert mode(db) == 0o600, db


def test_an_existing_folder_keeps_its_mode_and_private_files_are_0600(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    make_private_dir(shared)
    assert mode(shared) == 0o755  # not byom's to change
    with open_private(shared / "logs" / "x.log") as fh:
        fh.write(b"a line\n")
    assert mode(shared / "logs" / "x.log") == 0o600

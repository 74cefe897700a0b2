"""Rotating a log that a process keeps appending to, and reading its end across rotations."""

from __future__ import annotations

from pathlib import Path

from byom.core.local.log_files import log_tail, rotate_if_large, rotated


def test_rotation_keeps_appending_writers_and_bounds_the_files(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    with open(log, "ab", buffering=0) as writer:  # as a model server holds its log
        for i in range(40):
            writer.write(f"line {i:03d} {'x' * 90}\n".encode())
            rotate_if_large(log, max_bytes=1000, keep=2)
    sizes = {p.name: p.stat().st_size for p in sorted(tmp_path.iterdir())}
    assert set(sizes) == {"instance.log", "instance.log.1", "instance.log.2"}
    assert all(size <= 1100 for size in sizes.values()), sizes
    assert log.read_text().splitlines()[-1].startswith("line 039")  # appends land in the live file again
    assert not rotated(log, 3).exists()


def test_the_tail_spans_rotated_files_in_order(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    with open(log, "ab", buffering=0) as writer:
        for i in range(30):
            writer.write(f"line {i:03d}\n".encode())
            rotate_if_large(log, max_bytes=50, keep=3)
    assert log_tail(log, 5) == "\n".join(f"line {i:03d}" for i in range(25, 30))
    kept = log_tail(log, 1000).splitlines()
    assert kept == [f"line {i:03d}" for i in range(int(kept[0][5:]), 30)]  # consecutive up to the last
    assert 10 < len(kept) < 30  # the oldest rotated files are gone
    assert log_tail(log, 0) == ""
    assert log_tail(tmp_path / "missing.log", 5) == ""

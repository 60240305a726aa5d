"""Atomic writes: the target appears whole or not at all, with the user's umask, and no temp file stays."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dfn4core import DFN4, ModelConfig, save_model
from dfn4core.atomic import write_atomically


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = [write_atomically(tmp_path / "a.json", lambda tmp: Path(tmp).write_text("{}")),
                   *(save_model(DFN4(ModelConfig.tiny()), tmp_path / f"m.{ext}") for ext in ("pt", "safetensors"))]  # fmt: skip
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [mode] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "m.pt", "m.safetensors"]


def test_a_failed_write_keeps_the_target_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "a.json").write_text("old")

    def broken(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(tmp_path / "a.json", broken)
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and (tmp_path / "a.json").read_text() == "old"

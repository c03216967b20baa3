"""files.atomic_path / atomic_write: whole or not at all, and the package's only temp-then-rename."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from fishcam_utils.files import atomic_path, atomic_write

PACKAGE = Path(__file__).resolve().parents[1] / "fishcam_utils"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("half-way")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "w") as handle:
            handle.write("new, half")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_complete_write_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "sub" / "picture.bin"  # the folder is made
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".picture.bin.") and not tmp.exists()
        tmp.write_bytes(b"\x00\x01")
        assert not target.exists()  # nothing is visible before the block ends
    assert target.read_bytes() == b"\x00\x01"
    with atomic_write(target) as handle:
        handle.write(b"\x02")
    assert target.read_bytes() == b"\x02" and sorted(p.name for p in target.parent.iterdir()) == ["picture.bin"]


def test_a_system_error_names_the_file_being_written_not_its_twin(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(PermissionError) as caught:
            with atomic_write(folder / "out.txt", "w") as handle:
                handle.write("x")
        assert caught.value.filename == str(folder / "out.txt")
    finally:
        folder.chmod(0o700)


def _renames(path: Path) -> list[int]:
    """Lines of ``path`` calling ``os.replace`` or ``os.rename``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("replace", "rename")):
            if isinstance(node.func.value, ast.Name) and node.func.value.id == "os":
                calls.append(node.lineno)
    return calls


def test_the_package_writes_files_atomically_in_one_place():
    # Moving a finished run folder's files into place (recipes) is a move, not a write.
    allowed = {"files.py", "recipes.py"}
    found = {str(p.relative_to(PACKAGE)): _renames(p) for p in PACKAGE.rglob("*.py") if p.name not in allowed}
    assert {name: lines for name, lines in found.items() if lines} == {}

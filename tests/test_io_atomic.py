"""Tests for faket.io.atomic_write: all or nothing at the target path."""

from __future__ import annotations

import os
import stat

import pytest

from faket.errors import FaketInputError
from faket.io import atomic_write


class _Boom(Exception):
    pass


def test_success_moves_the_temp_file_onto_the_target(tmp_path):
    target = tmp_path / "vol.mrc"
    with atomic_write(target) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".vol.mrc.tmp-") and temp.name.endswith(".mrc")
        assert temp.exists() and not target.exists()
        temp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete"
    assert os.listdir(tmp_path) == ["vol.mrc"]


def test_exception_leaves_neither_target_nor_temp(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(_Boom), atomic_write(target) as temp:
        temp.write_text("half")
        raise _Boom
    assert os.listdir(tmp_path) == []


def test_exception_keeps_existing_target_untouched(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as temp:
        temp.write_text("new but half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_existing_target_is_replaced_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as temp:
        temp.write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_temp_names_are_unique(tmp_path):
    target = tmp_path / "a.tlt"
    with atomic_write(target) as first, atomic_write(target) as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer block finishes last
    assert os.listdir(tmp_path) == ["a.tlt"]


def test_file_gets_ordinary_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "atomic.txt"
    with atomic_write(target) as temp:
        temp.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_missing_folder_is_refused(tmp_path):
    target = tmp_path / "missing" / "out.txt"
    with pytest.raises(FaketInputError) as error, atomic_write(target):
        pass
    assert str(error.value) == f"{target}: cannot write: folder {target.parent} does not exist"
    assert os.listdir(tmp_path) == []


def test_folder_as_target_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(FaketInputError) as error, atomic_write(tmp_path / "sub"):
        pass
    assert "a folder of that name exists" in str(error.value)
    assert os.listdir(tmp_path) == ["sub"]

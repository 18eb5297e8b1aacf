"""Atomic file writes: a file is either complete at its final path or absent."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from faket.errors import FaketInputError

_MAX_TRIES = 100

_OS_ERROR_WORDS = {
    getattr(errno, name): words
    for name, words in (
        ("ENOSPC", "no space left on device"),
        ("EDQUOT", "disk quota exceeded"),  # not defined on every platform
        ("EROFS", "read-only file system"),
        ("EACCES", "permission denied"),
        ("EPERM", "permission denied"),
        ("EFBIG", "file too large for the file system"),
        ("EIO", "input/output error"),
    )
    if hasattr(errno, name)
}


def describe_os_error(err: OSError) -> str:
    """Return a short, lower-case description of a failed write (``no space left on device``)."""
    words = _OS_ERROR_WORDS.get(err.errno) if err.errno is not None else None
    return words or (err.strerror or str(err) or type(err).__name__).lower()


def temp_name(target: Path) -> Path:
    """Return a fresh temporary name next to ``target``.

    The name is ``.{target.name}.tmp-{8 hex digits}{target.suffix}``, e.g.
    ``.vol.mrc.tmp-3f9a1c2b.mrc`` for ``vol.mrc``: hidden, in the same folder (so that
    `os.replace` is an atomic rename on the same file system), recognisable as belonging
    to ``target``, and ending with the real suffix for libraries that look at it.
    """
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.tmp-{token}{target.suffix}")


def _create_temp(target: Path) -> Path:
    """Create an empty temporary file next to ``target`` and return its path."""
    for _ in range(_MAX_TRIES):
        temp = temp_name(target)
        try:
            # O_EXCL: never reuse an existing file; 0o666 & umask: the final file gets the
            # permissions a plain open() would give it (mkstemp would give 0o600).
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as err:
            raise FaketInputError(
                f"cannot write in folder {target.parent} ({err.strerror})", target
            ) from err
        os.close(fd)
        return temp
    raise FaketInputError(f"cannot find a free temporary name in {target.parent}", target)


def _flush_to_disk(file: Path) -> None:
    """Ask the operating system to write ``file``'s contents to disk (fsync)."""
    with open(file, "ab") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a file atomically: yield a temporary path, then rename it onto ``path``.

    Write the whole file to the yielded path (any library may open it; it exists and is
    empty). When the ``with`` block ends without an exception, the temporary file is
    flushed to disk and moved onto ``path`` with `os.replace`, which is atomic on POSIX
    and Windows. If the block raises (``KeyboardInterrupt`` included), the temporary file
    is removed, ``path`` is left as it was, and the exception propagates. So a reader of
    ``path`` never sees a half-written file, and an interrupted run leaves no output.

    The temporary file is ``.{name}.tmp-{8 hex digits}{suffix}`` in the same folder as
    ``path`` (e.g. ``.vol.mrc.tmp-3f9a1c2b.mrc``); a process killed outright (SIGKILL,
    power loss) may leave one behind, and such files can be removed safely.

    Parameters
    ----------
    path : str or PathLike
        The final file. Its folder must exist; an existing file is replaced.

    Yields
    ------
    Path
        The temporary file to write to.

    Raises
    ------
    FaketInputError
        If the folder does not exist, ``path`` is a folder, or the folder is not
        writable; or, naming ``path``, if writing fails with an `OSError` (no space left
        on the device, a quota, a read-only file system): the temporary file is removed
        and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_write("volume.mrc") as tmp:  # doctest: +SKIP
    ...     mrcfile.write(tmp, data, overwrite=True)
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FaketInputError(f"cannot write: folder {folder} does not exist", target)
    if target.is_dir():
        raise FaketInputError("cannot write: a folder of that name exists", target)
    temp = _create_temp(target)
    try:
        yield temp
        _flush_to_disk(temp)
        os.replace(temp, target)
    except OSError as err:
        with suppress(OSError):
            temp.unlink(missing_ok=True)
        raise FaketInputError(
            f"cannot write: {describe_os_error(err)}; nothing was written", target
        ) from err
    except BaseException:
        with suppress(OSError):  # never hide the original exception
            temp.unlink(missing_ok=True)
        raise

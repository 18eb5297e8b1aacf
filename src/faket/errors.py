"""Errors that faket reports to users as one line."""

from __future__ import annotations

from os import PathLike


class FaketInputError(ValueError):
    """Bad user input: an unreadable file, a wrong shape, NaN values, a count mismatch.

    The message is one sentence that names the file (when there is one) and the problem,
    so the command-line interface can print it as it is, without a traceback.

    Parameters
    ----------
    problem : str
        What is wrong, as a user would understand it.
    path : str or PathLike, optional
        The file the problem is in; the message then reads ``"<path>: <problem>"``.
    """

    def __init__(self, problem: str, path: str | PathLike[str] | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(problem if path is None else f"{path}: {problem}")

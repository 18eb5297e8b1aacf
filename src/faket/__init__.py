"""faket: simulate realistic, fully labelled cryo-ET tilt-series and tomograms (FakET)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("faket")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]

"""Noiseless projection: volumes to tilt-series (REFERENCE.md section 1)."""

from faket.projection._operator import detector_length
from faket.projection.project import DEFAULT_MAX_CHUNK_BYTES, project_tilt_series

__all__ = ["DEFAULT_MAX_CHUNK_BYTES", "detector_length", "project_tilt_series"]

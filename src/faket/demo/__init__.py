"""The built-in demo: all existing stages on an analytic specimen, no user data needed."""

from faket.demo.run import STAGES, demo_tilt_angles, run_demo
from faket.demo.toy_reference import toy_reference_tilt_series

__all__ = ["STAGES", "demo_tilt_angles", "run_demo", "toy_reference_tilt_series"]

"""The built-in demo: all existing stages on an analytic specimen, no user data needed."""

from faket.demo.run import STAGES, demo_tilt_angles, run_demo

__all__ = ["STAGES", "demo_tilt_angles", "run_demo"]

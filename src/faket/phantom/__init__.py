"""Specimens ("grandmodels"): for now analytic phantoms with known projections."""

from faket.phantom.analytic import Sphere, ball, demo_specimen, spheres_volume

__all__ = ["Sphere", "ball", "demo_specimen", "spheres_volume"]

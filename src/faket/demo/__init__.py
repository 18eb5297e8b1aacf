"""The built-in demo: the pipeline on built-in specimens and the reference microscope."""

from faket.demo.run import CELLULAR_LAYERS, DEMO_SIZE, DEMO_VOXEL_SIZE_A, demo_config, run_demo

__all__ = ["CELLULAR_LAYERS", "DEMO_SIZE", "DEMO_VOXEL_SIZE_A", "demo_config", "run_demo"]

"""Neural style transfer (REFERENCE.md section 3): the FakET core."""

from faket._precision import PRECISIONS
from faket.style.backbones import BACKBONES, VGGFeatures, load_backbone
from faket.style.transfer import StyleSettings, optimise_image, stylize_batch

__all__ = [
    "BACKBONES",
    "PRECISIONS",
    "StyleSettings",
    "VGGFeatures",
    "load_backbone",
    "optimise_image",
    "stylize_batch",
]

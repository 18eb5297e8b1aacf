"""File formats: MRC volumes and tilt-series, tilt angles, particle lists.

Readers raise :class:`faket.errors.FaketInputError` (one line naming the file and the
problem) for bad input; writers are atomic (see `atomic_write`).
"""

from faket.io._atomic import atomic_write
from faket.io.alignments import (
    alignment_paths,
    write_aln,
    write_imod_defocus,
    write_microscope_alignment,
    write_xf,
)
from faket.io.angles import check_angle_count, read_tilt_angles, write_tilt_angles
from faket.io.deepfinder import read_objects_xml, write_label_mrc, write_objects_xml
from faket.io.json_files import read_json_object, write_json
from faket.io.mrc import MrcData, map_mrc, read_mrc, read_voxel_size, write_mrc
from faket.io.noise_stats import read_noise_stats, write_noise_stats
from faket.io.particles import Particle, read_particle_locations, write_particle_locations
from faket.io.particles_star import (
    read_classes_json,
    read_particles_star,
    write_classes_json,
    write_particles_star,
)
from faket.io.tilt_metadata import read_tilt_metadata, tilt_metadata_path, write_tilt_metadata
from faket.io.tilt_series_files import TiltSeriesInfo, read_tilt_series_info

__all__ = [
    "alignment_paths",
    "write_aln",
    "write_imod_defocus",
    "write_microscope_alignment",
    "write_xf",
    "TiltSeriesInfo",
    "read_tilt_series_info",
    "read_tilt_metadata",
    "tilt_metadata_path",
    "write_tilt_metadata",
    "read_objects_xml",
    "write_label_mrc",
    "write_objects_xml",
    "read_classes_json",
    "read_particles_star",
    "write_classes_json",
    "write_particles_star",
    "MrcData",
    "Particle",
    "atomic_write",
    "read_json_object",
    "write_json",
    "check_angle_count",
    "map_mrc",
    "read_mrc",
    "read_noise_stats",
    "read_particle_locations",
    "read_tilt_angles",
    "read_voxel_size",
    "write_mrc",
    "write_noise_stats",
    "write_particle_locations",
    "write_tilt_angles",
]

"""Elements of atoms from their names, and which residues are solvent.

Molecular-dynamics files (CHARMM, AMBER, GROMACS, NAMD) often leave the element
columns empty; gemmi then guesses from the atom name alone, so the alpha carbon
``CA`` becomes calcium, ``HG`` mercury and ``OG`` oganesson. `infer_element` uses the
residue name as well:

* water and ions of the common force fields and of the PDB (`WATER_RESIDUES`,
  `ION_RESIDUES`) by residue name;
* amino acids (the 20 with their protonation variants, termini and caps) and
  nucleotides, whose atom names start with their element (``CA``, ``HG1``, ``OT1``,
  ``1HB``, ``O4'``, ``C1*``, ``OP1``): the first letter after any leading digits, one of
  H, C, N, O, S, P (``SE`` of selenomethionine is selenium);
* any other residue (ligands, lipids, cofactors): chlorine and bromine for names that
  start with ``CL`` or ``BR``; else the same first letter H, C, N, O, S or P (heme's
  ``NA`` and ``CAA`` are nitrogen and carbon), except for names that are a metal or
  metalloid of their own (``CO``, ``CU``, ``NI``, ``PD``, ``PT``, ``SE``, ``SI``,
  ``SN``), which the name cannot settle; else the element that the name's first two
  letters, or first letter, spell (``FE`` iron, ``ZN`` zinc, ``F1`` fluorine), never
  deuterium (``D`` is how virtual sites are named).

Anything else (``X``, ``LP1``, ``EPW``) is unknown (`None`), and the caller refuses the
atom.
"""

from __future__ import annotations

import gemmi

WATER_RESIDUES = frozenset(
    {
        "HOH", "WAT", "H2O", "DOD", "D2O", "SOL", "TIP", "TIP2", "TIP3", "TIP4", "TIP5",
        "TP3", "TP4", "TP5", "T3P", "T4P", "T5P", "T4E", "SPC", "SPCE", "SPE", "OPC",
        "OPC3", "TIP3P", "TIP4P", "TIP5P", "SPC/E",
    }
)  # fmt: skip
"""Residue names of water (upper case); ``TIP`` is ``TIP3`` cut to three columns."""

ION_RESIDUES: dict[str, str] = {
    # CHARMM
    "SOD": "Na", "POT": "K", "CLA": "Cl", "CAL": "Ca", "ZN2": "Zn", "CES": "Cs",
    "LIT": "Li", "RUB": "Rb", "BAR": "Ba", "CD2": "Cd",
    # AMBER and GROMACS (AMBER's mixed case is compared in upper case)
    "NA+": "Na", "CL-": "Cl", "K+": "K", "LI+": "Li", "RB+": "Rb", "CS+": "Cs",
    "F-": "F", "BR-": "Br", "I-": "I", "MG2+": "Mg", "CA2+": "Ca", "ZN2+": "Zn",
    "IP": "Na", "IM": "Cl",
    # PDB chemical components (also AMBER and GROMACS names)
    "NA": "Na", "CL": "Cl", "K": "K", "LI": "Li", "RB": "Rb", "CS": "Cs", "MG": "Mg",
    "CA": "Ca", "SR": "Sr", "BA": "Ba", "ZN": "Zn", "MN": "Mn", "FE": "Fe", "FE2": "Fe",
    "CO": "Co", "NI": "Ni", "CU": "Cu", "CU1": "Cu", "CD": "Cd", "HG": "Hg", "F": "F",
    "BR": "Br", "IOD": "I",
}  # fmt: skip
"""Residue names of single-atom ions (upper case) and their element."""

ION_ELEMENTS = frozenset(ION_RESIDUES.values())
"""Elements that occur as free ions in solvent."""

_AMINO_ACIDS = frozenset(
    {
        "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU",
        "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
        "HSD", "HSE", "HSP", "HID", "HIE", "HIP", "HIN", "HISA", "HISB", "HISD",
        "HISE", "HISH", "HIS1", "HIS2", "CYX", "CYM", "CYN", "CYS2", "CYSH", "ASH",
        "ASPH", "GLH", "GLUH", "LYN", "LYSH", "ARN", "MSE", "SEC", "HYP", "ACE", "NME",
        "NMA", "NH2",
    }
)  # fmt: skip
_NUCLEOTIDES = frozenset(
    {
        "DA", "DC", "DG", "DT", "DU", "DI", "A", "C", "G", "U", "T", "ADE", "CYT",
        "GUA", "THY", "URA", "RA", "RC", "RG", "RU",
        *(f"{base}{end}" for base in ("DA", "DC", "DG", "DT", "RA", "RC", "RG", "RU",
                                       "A", "C", "G", "U") for end in ("5", "3", "N")),
    }
)  # fmt: skip
_ORGANIC = {"H": "H", "C": "C", "N": "N", "O": "O", "S": "S", "P": "P"}
_HALOGENS = {"CL": "Cl", "BR": "Br"}
# Names that are an element of their own in cofactors and drugs (cobalamin's CO).
_AMBIGUOUS_NAMES = frozenset({"CO", "CU", "NI", "PD", "PT", "SE", "SI", "SN"})


def element_symbol(text: str) -> str | None:
    """Return the symbol an element column names (``"ZN"`` -> ``"Zn"``), else `None`.

    Parameters
    ----------
    text : str
        The column's text, e.g. PDB columns 77-78 or ``_atom_site.type_symbol``.
    """
    text = text.strip()
    if not text.isalpha() or len(text) > 2:
        return None
    element = gemmi.Element(text)
    return element.name if element.atomic_number > 0 else None


def has_scattering_factors(symbol: str) -> bool:
    """Return whether gemmi has an element's electron scattering factors (c4322)."""
    element = gemmi.Element(symbol)
    return element.atomic_number > 0 and element.c4322 is not None


def is_water(residue_name: str) -> bool:
    """Return whether a residue name is water (any common force field or the PDB)."""
    return residue_name.strip().upper() in WATER_RESIDUES


def _is_polymer(residue: str) -> bool:
    # AMBER and GROMACS name termini NALA, CALA ...
    stripped = residue[1:] if len(residue) == 4 and residue[0] in "NC" else residue
    return residue in _AMINO_ACIDS or stripped in _AMINO_ACIDS or residue in _NUCLEOTIDES


def infer_element(residue_name: str, atom_name: str) -> str | None:
    """Return an atom's element from its residue and atom names, or `None` when unsure.

    Parameters
    ----------
    residue_name : str
        Residue name, e.g. ``"HSD"``, ``"SOD"``, ``"DA"``, ``"HEM"``.
    atom_name : str
        Atom name, e.g. ``"CA"``, ``"HG1"``, ``"1HB"``, ``"O4'"``, ``"CL1"``.

    Returns
    -------
    str or None
        Element symbol as gemmi spells it (``"C"``, ``"Na"``).
    """
    residue = residue_name.strip().upper()
    name = atom_name.strip().upper().lstrip("0123456789")
    letters = name[: len(name) - len(name.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]
    if residue in ION_RESIDUES:
        return ION_RESIDUES[residue]
    if not letters:
        return None
    if _is_polymer(residue):
        if residue in ("MSE", "SEC") and letters == "SE":
            return "Se"
        return _ORGANIC.get(letters[0])
    if letters[:2] in _HALOGENS:
        return _HALOGENS[letters[:2]]
    if letters[0] in _ORGANIC:
        return None if letters in _AMBIGUOUS_NAMES else _ORGANIC[letters[0]]
    for symbol in (letters[:2], letters[:1]):
        element = element_symbol(symbol)
        if element is not None and element != "D":
            return element
    return None

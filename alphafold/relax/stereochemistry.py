"""Stereochemical reference values for the violation checks of the relax loop.

AlphaFold2 decides which residues to free from restraints by checking bond lengths, bond angles and
steric overlaps of heavy atoms (Jumper et al. 2021, Suppl. 1.9.11). The tables here are built as follows:

* Within a residue: the bonded heavy-atom pairs, their ideal lengths and the ideal bond angles are read from
  the Amber ff99SB force field that the minimisation itself uses (OpenMM's ``amber99sb.xml``: residue
  templates give the bonds, atom classes give lengths and angles). A bond may deviate by
  ``tolerance_factor`` standard deviations, with σ = 0.02 Å for lengths and 2.0° for angles (typical values
  of Engh & Huber 1991's small-molecule survey, whose σ range 0.01-0.03 Å and 1.5-3°). Angles are checked
  as 1-3 distances, with σ propagated from the two bonds and the angle. Every other pair of atoms in the
  residue must stay apart by the sum of their van der Waals radii minus the overlap tolerance.
* Between consecutive residues: the peptide bond C-N, 1.329 Å (σ 0.014), 1.341 Å (σ 0.016) before a
  proline, and the angles CA-C-N 117.2° (σ 2.2°) and C-N-CA 121.7° (σ 1.8°) (Engh & Huber 1991).
* Van der Waals radii (Bondi 1964): C 1.70, N 1.55, O 1.52, S 1.80 Å.

These are the same kinds of checks AF2 makes with the same tolerance factor (12) and overlap tolerance
(1.5 Å); the ideal values come from the sources above rather than from AF2's own table, so a residue on the
edge of a bound may be judged differently.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from alphafold.common import residue_constants as rc

VDW_RADIUS = {"C": 1.70, "N": 1.55, "O": 1.52, "S": 1.80}
BOND_STDDEV = 0.02  # Å
ANGLE_STDDEV = math.radians(2.0)

PEPTIDE_C_N = (1.329, 0.014)
PEPTIDE_C_N_BEFORE_PRO = (1.341, 0.016)
ANGLE_CA_C_N = (math.radians(117.2), math.radians(2.2))
ANGLE_C_N_CA = (math.radians(121.7), math.radians(1.8))

# Amber residue templates for the 20 residue types (histidine as HIE: its heavy atoms are those of every HIS).
_AMBER_NAME = {name: name for name in rc.resnames[:20]} | {"HIS": "HIE"}


def amber_xml_path() -> Path:
    import openmm.app

    return Path(openmm.app.__file__).parent / "data" / "amber99sb.xml"


@functools.lru_cache(maxsize=1)
def _amber_tables() -> tuple[dict, dict, dict]:
    """(residue → (atom name → class, heavy bonds)), bond class pair → length Å, angle class triple → rad."""
    root = ET.parse(amber_xml_path()).getroot()
    type_class = {t.get("name"): (t.get("class"), t.get("element")) for t in root.find("AtomTypes")}
    residues = {}
    for res in root.find("Residues"):
        atoms = [(a.get("name"), *type_class[a.get("type")]) for a in res.findall("Atom")]
        bonds = []
        for b in res.findall("Bond"):
            if b.get("from") is not None:
                i, j = int(b.get("from")), int(b.get("to"))
                n1, n2 = atoms[i][0], atoms[j][0]
            else:
                n1, n2 = b.get("atomName1"), b.get("atomName2")
            bonds.append((n1, n2))
        heavy = {name: cls for name, cls, element in atoms if element != "H"}
        residues[res.get("name")] = (heavy, [(a, b) for a, b in bonds if a in heavy and b in heavy])
    lengths = {}
    for b in root.find("HarmonicBondForce"):
        length = 10.0 * float(b.get("length"))
        lengths[(b.get("class1"), b.get("class2"))] = lengths[(b.get("class2"), b.get("class1"))] = length
    angles = {}
    for a in root.find("HarmonicAngleForce"):
        c1, c2, c3 = a.get("class1"), a.get("class2"), a.get("class3")
        angles[(c1, c2, c3)] = angles[(c3, c2, c1)] = float(a.get("angle"))
    return residues, lengths, angles


@functools.lru_cache(maxsize=4)
def within_residue_bounds(
    tolerance_factor: float = 12.0, overlap_tolerance: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """[21, 37, 37] lower and upper distance bounds between the heavy atoms of one residue (Å).

    Pairs that do not exist are 0 / inf (never violated); row 20 (unknown residue) is unconstrained.
    """
    residues, lengths, angles = _amber_tables()
    lower = np.zeros((21, rc.atom_type_num, rc.atom_type_num))
    upper = np.full((21, rc.atom_type_num, rc.atom_type_num), np.inf)
    for r, resname in enumerate(rc.resnames[:20]):
        classes, bonds = residues[_AMBER_NAME[resname]]
        names = [n for n in rc.residue_atom14_names[resname] if n]
        for a in names:
            for b in names:
                if a != b:
                    lower[r, rc.atom_order[a], rc.atom_order[b]] = (
                        VDW_RADIUS[a[0]] + VDW_RADIUS[b[0]] - overlap_tolerance
                    )
        ideal = {}
        neighbours: dict[str, list[str]] = {n: [] for n in names}
        for a, b in bonds:
            if a not in neighbours or b not in neighbours:
                continue
            ideal[frozenset((a, b))] = (lengths[(classes[a], classes[b])], BOND_STDDEV)
            neighbours[a].append(b)
            neighbours[b].append(a)
        for centre, around in neighbours.items():
            for i, a in enumerate(around):
                for b in around[i + 1 :]:
                    key = frozenset((a, b))
                    if key in ideal:  # a 3-ring would make a 1-3 pair also bonded; none in proteins
                        continue
                    la, lb = ideal[frozenset((a, centre))][0], ideal[frozenset((b, centre))][0]
                    theta = angles[(classes[a], classes[centre], classes[b])]
                    d = math.sqrt(la * la + lb * lb - 2 * la * lb * math.cos(theta))
                    # σ of the 1-3 distance from the two bond lengths and the angle (first-order propagation)
                    dd_dla = (la - lb * math.cos(theta)) / d
                    dd_dlb = (lb - la * math.cos(theta)) / d
                    dd_dtheta = la * lb * math.sin(theta) / d
                    sigma = math.sqrt(
                        (dd_dla * BOND_STDDEV) ** 2
                        + (dd_dlb * BOND_STDDEV) ** 2
                        + (dd_dtheta * ANGLE_STDDEV) ** 2
                    )
                    ideal[key] = (d, sigma)
        for key, (d, sigma) in ideal.items():
            a, b = tuple(key)
            for i, j in ((rc.atom_order[a], rc.atom_order[b]), (rc.atom_order[b], rc.atom_order[a])):
                lower[r, i, j] = d - tolerance_factor * sigma
                upper[r, i, j] = d + tolerance_factor * sigma
    return lower, upper

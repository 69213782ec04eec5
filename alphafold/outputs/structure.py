"""One protein chain in the atom37 layout, read from model outputs or from PDB/mmCIF files, written as PDB.

The model's outputs (docs/contracts.md) carry `structure_module/final_atom_positions` [L, 37, 3],
`structure_module/final_atom_mask` [L, 37], `aatype` [L], `residue_index` [L] and `plddt` [L]. A
:class:`Chain` holds exactly that, plus per-atom B-factors, so everything downstream (PDB/ModelCIF writers,
relax, scoring) works the same on a prediction and on an experimental structure.

PDB conventions follow AlphaFold2's own writer: one MODEL, chain A, residue numbers = ``residue_index``
(+1 when the indices are zero-based, as the model's are), pLDDT in the B-factor column of every atom of the
residue, element = first letter of the atom name (proteins here hold only C, N, O, S).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np

from alphafold.common import residue_constants as rc
from alphafold.errors import UserError
from alphafold.outputs.confidence import model_confidence

# Modified residues seen in deposited structures, read as their parent amino acid.
_PARENT_RESIDUE = {
    "MSE": "MET",
    "SEP": "SER",
    "TPO": "THR",
    "PTR": "TYR",
    "HYP": "PRO",
    "CSO": "CYS",
    "HID": "HIS",
    "HIE": "HIS",
    "HIP": "HIS",
    "HSD": "HIS",
    "HSE": "HIS",
    "HSP": "HIS",
    "CYX": "CYS",
}


@dataclasses.dataclass(frozen=True)
class Chain:
    """A single protein chain in the atom37 layout.

    aatype:          [L] int, restype index (20 = unknown).
    atom_positions:  [L, 37, 3] float, Å.
    atom_mask:       [L, 37] float, 1 where the atom is present.
    residue_number:  [L] int, the residue numbers written to files (author numbering, 1-based for models).
    b_factors:       [L, 37] float, pLDDT for predictions, crystallographic B for experiments.
    chain_id:        one-letter chain identifier.
    """

    aatype: np.ndarray
    atom_positions: np.ndarray
    atom_mask: np.ndarray
    residue_number: np.ndarray
    b_factors: np.ndarray
    chain_id: str = "A"

    def __post_init__(self):
        num_res = self.aatype.shape[0]
        expected = {
            "atom_positions": (num_res, rc.atom_type_num, 3),
            "atom_mask": (num_res, rc.atom_type_num),
            "residue_number": (num_res,),
            "b_factors": (num_res, rc.atom_type_num),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"Chain.{name} has shape {getattr(self, name).shape}, expected {shape}")

    @property
    def num_res(self) -> int:
        return int(self.aatype.shape[0])

    @property
    def sequence(self) -> str:
        return "".join(rc.restypes_with_x[min(int(a), rc.unk_restype_index)] for a in self.aatype)

    def ca_positions(self) -> np.ndarray:
        """[L, 3] CA coordinates."""
        return self.atom_positions[:, rc.atom_order["CA"]]

    def replace(self, **changes) -> Chain:
        return dataclasses.replace(self, **changes)


def from_prediction(outputs: dict[str, np.ndarray], where: str = "prediction") -> Chain:
    """Build a :class:`Chain` from a model-output dict (docs/contracts.md), pLDDT in the B-factors."""
    required = ("structure_module/final_atom_positions", "structure_module/final_atom_mask", "aatype")
    missing = [k for k in required if k not in outputs]
    if missing:
        raise UserError(where, f"not a model-output file: missing {', '.join(missing)}")
    positions = np.asarray(outputs["structure_module/final_atom_positions"], dtype=np.float64)
    mask = np.asarray(outputs["structure_module/final_atom_mask"], dtype=np.float64)
    aatype = np.asarray(outputs["aatype"]).astype(np.int32)
    if aatype.ndim == 2:  # one-hot [L, 21]
        aatype = aatype.argmax(-1).astype(np.int32)
    num_res = aatype.shape[0]
    if positions.shape != (num_res, rc.atom_type_num, 3) or mask.shape != (num_res, rc.atom_type_num):
        raise UserError(where, f"atom arrays {positions.shape}/{mask.shape} do not match {num_res} residues")
    residue_index = np.asarray(outputs.get("residue_index", np.arange(num_res))).astype(np.int64)
    # The model's residue_index is zero-based; files number residues from 1 (AF2 writes residue_index + 1).
    has_plddt = "plddt" in outputs or "predicted_lddt/logits" in outputs
    plddt = model_confidence(outputs)["plddt"] if has_plddt else np.zeros(num_res)
    b_factors = np.repeat(plddt[:, None], rc.atom_type_num, axis=1) * mask
    return Chain(
        aatype=aatype,
        atom_positions=positions,
        atom_mask=mask,
        residue_number=residue_index + 1,
        b_factors=b_factors,
    )


def _open_text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def read_structure(path: str | os.PathLike, chain_id: str | None = None) -> Chain:
    """Read one protein chain (the first with amino acids, or ``chain_id``) from a PDB or mmCIF file.

    Only the first model and the first alternate location are read; waters and ligands are dropped;
    common modified residues (MSE, SEP, ...) are read as their parent amino acid; hydrogens are ignored.
    Files may be gzipped. Raises :class:`UserError` naming the file when nothing usable is found.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(str(path), "no such file")
    text = _open_text(path)
    is_cif = text.lstrip().startswith("data_") or ".cif" in path.name.lower()
    try:
        import gemmi

        structure = (
            gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
            if is_cif
            else gemmi.read_pdb_string(text)
        )
    except (RuntimeError, ValueError) as err:
        raise UserError(str(path), f"cannot parse as {'mmCIF' if is_cif else 'PDB'}: {err}") from err
    structure.setup_entities()
    structure.remove_alternative_conformations()
    if len(structure) == 0:
        raise UserError(str(path), "no models in file")
    model = structure[0]
    chains = [c for c in model if chain_id is None or c.name == chain_id]
    if chain_id is not None and not chains:
        raise UserError(str(path), f"no chain {chain_id!r} (chains: {', '.join(c.name for c in model)})")
    for chain in chains:
        parsed = _chain_from_gemmi(chain)
        if parsed is not None:
            return parsed
    raise UserError(str(path), "no protein chain with amino-acid residues found")


def _chain_from_gemmi(chain) -> Chain | None:
    aatype, positions, mask, numbers, bfac = [], [], [], [], []
    for residue in chain:
        name = _PARENT_RESIDUE.get(residue.name, residue.name)
        if name not in rc.restype_3to1:
            continue
        pos = np.zeros((rc.atom_type_num, 3))
        msk = np.zeros(rc.atom_type_num)
        b = np.zeros(rc.atom_type_num)
        for atom in residue:
            atom_name = "SD" if (residue.name == "MSE" and atom.name == "SE") else atom.name
            idx = rc.atom_order.get(atom_name)
            if idx is None:
                continue
            pos[idx] = (atom.pos.x, atom.pos.y, atom.pos.z)
            msk[idx] = 1.0
            b[idx] = atom.b_iso
        if msk[rc.atom_order["CA"]] == 0:
            continue
        aatype.append(rc.restype_order[rc.restype_3to1[name]])
        positions.append(pos)
        mask.append(msk)
        numbers.append(residue.seqid.num)
        bfac.append(b)
    if not aatype:
        return None
    return Chain(
        aatype=np.array(aatype, dtype=np.int32),
        atom_positions=np.array(positions),
        atom_mask=np.array(mask),
        residue_number=np.array(numbers, dtype=np.int64),
        b_factors=np.array(bfac),
        chain_id=chain.name[:1] or "A",
    )


def to_pdb(chain: Chain, remarks: list[str] | None = None) -> str:
    """PDB text of ``chain`` (AF2's layout: MODEL 1, ATOM records, TER, ENDMDL, END; 80 columns)."""
    lines = [f"REMARK 250 {r}"[:80] for r in (remarks or [])]
    lines.append("MODEL        1")
    serial = 1
    for i in range(chain.num_res):
        resname = rc.resnames[min(int(chain.aatype[i]), rc.unk_restype_index)]
        for a, atom_name in enumerate(rc.atom_types):
            if chain.atom_mask[i, a] < 0.5:
                continue
            x, y, z = chain.atom_positions[i, a]
            name = atom_name if len(atom_name) == 4 else f" {atom_name}"
            number = int(chain.residue_number[i])
            lines.append(
                f"ATOM  {serial:>5} {name:<4} {resname:>3} {chain.chain_id:>1}{number:>4}"
                f"    {x:>8.3f}{y:>8.3f}{z:>8.3f}{1.0:>6.2f}{chain.b_factors[i, a]:>6.2f}"
                f"          {atom_name[0]:>2}  "
            )
            serial += 1
    last = rc.resnames[min(int(chain.aatype[-1]), rc.unk_restype_index)]
    lines.append(f"TER   {serial:>5}      {last:>3} {chain.chain_id:>1}{int(chain.residue_number[-1]):>4}")
    lines += ["ENDMDL", "END"]
    return "\n".join(line.ljust(80) for line in lines) + "\n"


def read_pdb_string(text: str) -> Chain:
    """Parse PDB text (e.g. OpenMM's output) into a :class:`Chain` (first protein chain)."""
    import gemmi

    structure = gemmi.read_pdb_string(text)
    structure.setup_entities()
    structure.remove_alternative_conformations()
    for chain in structure[0]:
        parsed = _chain_from_gemmi(chain)
        if parsed is not None:
            return parsed
    raise ValueError("PDB text holds no protein chain")

"""Template structures from wwPDB mmCIF files: release date, chain sequences and atom37 coordinates.

What a template needs from a PDB entry, read the way AlphaFold2's template pipeline reads it
(DeepMind's `data/mmcif_parsing.py` + `templates._get_atom_positions`), with gemmi's CIF tables instead of
Biopython's structure objects:

* release date: the oldest `_pdbx_audit_revision_history.revision_date` (the initial release). Files
  without a revision history (e.g. converted from old PDB-format files) fall back to
  `_pdbx_database_status.recvd_initial_deposition_date`, with a warning: a deposition date is never later
  than the release, so the cut-off can only be too lenient by the weeks between the two.
* chain sequences (SEQRES): per author chain id, the `_entity_poly_seq` monomers of its polymer entity,
  standard residues by one-letter code, everything else (MSE included) as `X`; chains whose entity has no
  peptide monomer are not protein chains and are left out.
* coordinates: first model only; each `_entity_poly_seq` position gets the atoms whose `label_seq_id` is
  that position; alternate locations keep the first of the highest occupancy; the selenium of MSE is stored
  as SD (MSE is then MET); ARG NH1/NH2 are swapped when NH1 is the farther from CD (the naming convention).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import os
from collections.abc import Mapping

import gemmi
import numpy as np

from alphafold.common import residue_constants as rc
from alphafold.errors import UserError

log = logging.getLogger(__name__)

_ATOM_SITE_COLUMNS = (
    "group_PDB", "label_atom_id", "label_comp_id", "label_asym_id", "label_seq_id", "?label_alt_id",
    "?occupancy", "Cartn_x", "Cartn_y", "Cartn_z", "auth_asym_id", "?pdbx_PDB_model_num",
)


class TemplateStructureError(Exception):
    """A parsed entry cannot give this chain's coordinates (AF2 skips such a hit, it does not abort)."""


@dataclasses.dataclass(frozen=True)
class MmcifEntry:
    """One PDB entry: what the template featurizer needs, parsed once.

    Attributes:
        file_id: the PDB id in lower case (from `_entry.id`, else the file name).
        path: the file it was read from (for messages).
        release_date: initial release (see module docstring), or None when the file gives no date.
        resolution: Å, 0.0 when absent.
        seqres: author chain id -> full one-letter chain sequence.
    """

    file_id: str
    path: str
    release_date: datetime.date | None
    resolution: float
    seqres: Mapping[str, str]
    _chain_atoms: Mapping[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(repr=False)

    def atom37(self, chain_id: str, max_ca_ca_distance: float = 150.0) -> tuple[np.ndarray, np.ndarray]:
        """Atom37 coordinates of a chain over its SEQRES.

        Returns:
            positions [N_seq, 37, 3] float32 (zeros where absent), mask [N_seq, 37] float32.

        Raises:
            TemplateStructureError: unknown chain, or consecutive resolved CA atoms further apart than
                `max_ca_ca_distance` Å (a broken or mislabelled chain; AF2 rejects it the same way).
        """
        if chain_id not in self._chain_atoms:
            raise TemplateStructureError(f"{self.path}: no protein chain {chain_id!r}")
        positions, mask = self._chain_atoms[chain_id]
        ca = rc.atom_order["CA"]
        resolved = np.flatnonzero(mask[:, ca])
        if len(resolved) > 1:
            # Consecutive resolved CAs (AF2 resets the pair at every unresolved residue).
            consecutive = np.flatnonzero(np.diff(resolved) == 1)
            steps = np.linalg.norm(
                positions[resolved[consecutive + 1], ca] - positions[resolved[consecutive], ca], axis=-1)
            if len(steps) and steps.max() > max_ca_ca_distance:
                i = int(resolved[consecutive[int(np.argmax(steps))]])
                raise TemplateStructureError(
                    f"{self.path}: chain {chain_id}: CA-CA distance {steps.max():.1f} Å between residues "
                    f"{i} and {i + 1} exceeds {max_ca_ca_distance} Å")
        return positions.copy(), mask.copy()


def _table(block: gemmi.cif.Block, prefix: str, columns: list[str]) -> list[list[str]]:
    table = block.find(prefix, columns)
    return [[gemmi.cif.as_string(v) for v in row] for row in table]


def _parse_date(value: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _release_date(block: gemmi.cif.Block, path: str) -> datetime.date | None:
    revisions = [d for d in (_parse_date(gemmi.cif.as_string(v))
                             for v in block.find_values("_pdbx_audit_revision_history.revision_date"))
                 if d is not None]
    if revisions:
        return min(revisions)
    deposited = block.find_value("_pdbx_database_status.recvd_initial_deposition_date")
    date = _parse_date(gemmi.cif.as_string(deposited)) if deposited else None
    if date is not None:
        log.warning("%s: no revision history; using the deposition date %s as release date", path, date)
    else:
        log.warning("%s: no release or deposition date", path)
    return date


def _resolution(block: gemmi.cif.Block) -> float:
    for key in ("_refine.ls_d_res_high", "_em_3d_reconstruction.resolution", "_reflns.d_resolution_high"):
        value = block.find_value(key)
        if value:
            try:
                return float(gemmi.cif.as_string(value))
            except ValueError:
                continue
    return 0.0


def _is_peptide(comp_type: str, mon_id: str, standard: set[str]) -> bool:
    if comp_type in ("?", ".", ""):
        return mon_id in standard
    return "peptide" in comp_type


def _protein_chains(block: gemmi.cif.Block, path: str) -> dict[str, list[str]]:
    """label_asym_id -> monomer ids (in `_entity_poly_seq.num` order) for every peptide polymer chain."""
    poly_seq = _table(block, "_entity_poly_seq.", ["entity_id", "num", "mon_id"])
    if not poly_seq:
        raise UserError(path, "no _entity_poly_seq table (chain sequences); not a wwPDB-style mmCIF file")
    polymers: dict[str, list[tuple[int, str]]] = {}
    for entity_id, num, mon_id in poly_seq:
        try:
            polymers.setdefault(entity_id, []).append((int(num), mon_id))
        except ValueError as err:
            raise UserError(path, f"_entity_poly_seq.num {num!r} is not an integer") from err
    comp_type = {cid: ctype.lower() for cid, ctype in _table(block, "_chem_comp.", ["id", "type"])}
    standard = set(rc.restype_3to1)
    chains: dict[str, list[str]] = {}
    for asym_id, entity_id in _table(block, "_struct_asym.", ["id", "entity_id"]):
        monomers = polymers.get(entity_id)
        if not monomers:
            continue
        # AF2's test: a chain is protein when any monomer's chem_comp type contains 'peptide'. Monomers
        # of unknown type (converted files write '.') count when they are standard amino acids.
        if any(_is_peptide(comp_type.get(m, "?"), m, standard) for _, m in monomers):
            chains[asym_id] = [m for _, m in monomers]
    return chains


def _atom_site_columns(block: gemmi.cif.Block, path: str) -> dict[str, np.ndarray]:
    """The `_atom_site` columns a template needs, as numpy string arrays (quotes removed)."""
    table = block.find("_atom_site.", list(_ATOM_SITE_COLUMNS))
    if not table or len(table) == 0:
        raise UserError(path, "no _atom_site table (coordinates)")
    columns = {}
    for i, name in enumerate(_ATOM_SITE_COLUMNS):
        key = name.lstrip("?")
        if not table.has_column(i):
            columns[key] = np.full(len(table), "?")
            continue
        raw = list(table.column(i))
        if key in ("label_atom_id", "label_comp_id", "label_asym_id", "auth_asym_id"):
            raw = [gemmi.cif.as_string(v) for v in raw]
        columns[key] = np.array(raw)
    return columns


def _chain_atoms(sites: dict[str, np.ndarray], chains: dict[str, list[str]], seq_start: dict[str, int],
                 path: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Fill atom37 arrays per chain from the `_atom_site` columns; returns (by author chain, label->auth)."""
    model = sites["pdbx_PDB_model_num"]
    keep = (model == model[0]) & np.isin(sites["label_asym_id"], list(chains))
    atom_names = sites["label_atom_id"][keep]
    comp = sites["label_comp_id"][keep]
    atom_index = np.array([rc.atom_order.get(a, -1) for a in atom_names], dtype=np.int64)
    atom_index[(atom_index < 0) & (np.char.upper(atom_names) == "SE") & (comp == "MSE")] = rc.atom_order["SD"]
    rows = np.flatnonzero(keep)[atom_index >= 0]
    comp, atom_index = comp[atom_index >= 0], atom_index[atom_index >= 0]
    asym = sites["label_asym_id"][rows]
    try:
        seq_idx = sites["label_seq_id"][rows].astype(np.int64) - np.array([seq_start[a] for a in asym],
                                                                          dtype=np.int64)
        xyz = np.stack([sites[c][rows].astype(np.float64) for c in ("Cartn_x", "Cartn_y", "Cartn_z")], -1)
        occ_raw = sites["occupancy"][rows]
        occupancy = np.where(np.isin(occ_raw, ["?", "."]), "1", occ_raw).astype(np.float64)
    except ValueError as err:
        raise UserError(path, f"_atom_site: non-numeric sequence number, coordinate or occupancy ({err})"
                        ) from err
    label_to_auth: dict[str, str] = {}
    for a, auth in zip(sites["label_asym_id"][keep], sites["auth_asym_id"][keep]):
        label_to_auth.setdefault(a, auth)
    chain_order = {a: k for k, a in enumerate(chains)}
    chain_code = np.array([chain_order[a] for a in asym], dtype=np.int64)
    # Alternate locations: per (chain, residue, atom) keep the first row of the highest occupancy.
    key = (chain_code * (1 << 32) + seq_idx) * rc.atom_type_num + atom_index
    order = np.lexsort((np.arange(len(key)), -occupancy, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    chosen = order[first]
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, monomers in chains.items():
        if name not in label_to_auth:
            continue
        n = len(monomers)
        positions = np.zeros((n, rc.atom_type_num, 3), np.float32)
        mask = np.zeros((n, rc.atom_type_num), np.float32)
        sel = chosen[chain_code[chosen] == chain_order[name]]
        residues = seq_idx[sel]
        if len(residues) and (residues.min() < 0 or residues.max() >= n):
            raise UserError(path, f"_atom_site label_seq_id outside the _entity_poly_seq of chain {name} "
                                  f"(1..{n})")
        positions[residues, atom_index[sel]] = xyz[sel].astype(np.float32)
        mask[residues, atom_index[sel]] = 1.0
        # ARG: NH1 is by convention the nitrogen nearer CD; swap where the file has it the other way.
        cd, nh1, nh2 = rc.atom_order["CD"], rc.atom_order["NH1"], rc.atom_order["NH2"]
        arg = np.unique(residues[comp[sel] == "ARG"])
        arg = arg[(mask[arg][:, [cd, nh1, nh2]] > 0).all(-1)]
        far = (np.linalg.norm(positions[arg, nh1] - positions[arg, cd], axis=-1)
               > np.linalg.norm(positions[arg, nh2] - positions[arg, cd], axis=-1))
        swap = arg[far]
        positions[swap[:, None], [nh1, nh2]] = positions[swap[:, None], [nh2, nh1]]
        arrays[label_to_auth[name]] = (positions, mask)
    return arrays, label_to_auth


def read_mmcif(path: str | os.PathLike) -> MmcifEntry:
    """Parse a (optionally gzipped) wwPDB mmCIF file for use as a template.

    Raises:
        UserError: the file is missing, is not valid CIF, or lacks the tables a template needs; the
            message names the file.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise UserError(path, "mmCIF file not found")
    try:
        doc = gemmi.cif.read(path)
        block = doc.sole_block()
    except (RuntimeError, ValueError, OSError) as err:
        raise UserError(path, f"not a readable mmCIF file: {err}") from err
    entry_id = block.find_value("_entry.id")
    file_id = (gemmi.cif.as_string(entry_id) if entry_id else os.path.basename(path).split(".")[0]).lower()
    chains = _protein_chains(block, path)
    sites = _atom_site_columns(block, path)
    seq_start = {asym: 1 for asym in chains}
    poly = _table(block, "_entity_poly_seq.", ["entity_id", "num"])
    entity_start: dict[str, int] = {}
    for entity_id, num in poly:
        entity_start[entity_id] = min(entity_start.get(entity_id, int(num)), int(num))
    for asym_id, entity_id in _table(block, "_struct_asym.", ["id", "entity_id"]):
        if asym_id in chains:
            seq_start[asym_id] = entity_start[entity_id]
    atoms, label_to_auth = _chain_atoms(sites, chains, seq_start, path)
    seqres = {
        label_to_auth[asym]: "".join(rc.restype_3to1.get(m, "X") for m in monomers)
        for asym, monomers in chains.items() if asym in label_to_auth
    }
    return MmcifEntry(file_id=file_id, path=path, release_date=_release_date(block, path),
                      resolution=_resolution(block), seqres=seqres, _chain_atoms=atoms)


@functools.lru_cache(maxsize=32)
def read_mmcif_cached(path: str) -> MmcifEntry:
    """`read_mmcif` with a small per-process cache (several hits often come from one entry)."""
    return read_mmcif(path)

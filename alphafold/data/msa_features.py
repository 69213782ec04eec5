"""Raw (unprocessed) AF2 features of one monomer: sequence features, MSA features, empty templates.

The layout is that of DeepMind's ``features.pkl`` (AF2 v2.3 ``pipeline.make_sequence_features`` and
``make_msa_features``), see docs/contracts.md "raw features"; strings are numpy ``S`` arrays instead of
object arrays so the file loads without pickle.

Residue letters (Jumper et al. 2021, Suppl. 1.2.9): the query's ``aatype`` is a one-hot over the 20
standard residues and X; any other upper case letter (B, Z, U, O, J) maps to X, as AF2 does. MSA rows use
HHblits' letter ids (alphabetical by one-letter code, X = 20, gap = 21) with AF2's ambiguity rules:
B -> D, Z -> E, U -> C, O and J -> X.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from alphafold.common import residue_constants as rc
from alphafold.data.parsers import Msa, species_identifier
from alphafold.errors import UserError

logger = logging.getLogger(__name__)

FeatureDict = dict[str, np.ndarray]

# HHblits' residue ids: the 20 standard residues ordered by one-letter code, X = 20, gap = 21.
_HHBLITS_ORDER = "ACDEFGHIKLMNPQRSTVWY"
HHBLITS_AA_TO_ID: dict[str, int] = {aa: i for i, aa in enumerate(_HHBLITS_ORDER)}
HHBLITS_AA_TO_ID.update({"B": HHBLITS_AA_TO_ID["D"], "Z": HHBLITS_AA_TO_ID["E"], "U": HHBLITS_AA_TO_ID["C"],
                         "O": 20, "J": 20, "X": 20, "-": 21})
_HHBLITS_LUT = np.full(256, -1, dtype=np.int32)
for _aa, _i in HHBLITS_AA_TO_ID.items():
    _HHBLITS_LUT[ord(_aa)] = _i

NUM_TEMPLATE_RESTYPES = 22  # 20 residues, X, gap


def make_sequence_features(sequence: str, description: str) -> FeatureDict:
    """AF2's sequence features of one chain of length L."""
    if not sequence or not sequence.isalpha() or not sequence.isupper():
        raise ValueError(f"sequence must be non-empty upper case letters, got {sequence[:20]!r}")
    num_res = len(sequence)
    aatype = np.zeros((num_res, rc.restype_num + 1), dtype=np.int32)
    # [L] restype index, then one-hot [L, 21]
    aatype[np.arange(num_res), rc.sequence_to_aatype(sequence)] = 1
    return {
        "aatype": aatype,
        "between_segment_residues": np.zeros((num_res,), dtype=np.int32),
        "domain_name": np.array([description.encode("utf-8")], dtype=np.bytes_),
        "residue_index": np.arange(num_res, dtype=np.int32),
        "seq_length": np.full((num_res,), num_res, dtype=np.int32),
        "sequence": np.array([sequence.encode("utf-8")], dtype=np.bytes_),
    }


def encode_msa_rows(sequences: Sequence[str], where: str | None = None) -> np.ndarray:
    """[N, L] int32 HHblits ids of aligned rows; an unknown letter is a UserError naming the row."""
    if not sequences:
        return np.zeros((0, 0), dtype=np.int32)
    width = len(sequences[0])
    raw = np.frombuffer("".join(sequences).encode("latin-1", errors="replace"), dtype=np.uint8)
    # [N * L] -> [N, L]
    ids = _HHBLITS_LUT[raw].reshape(len(sequences), width)
    bad = np.argwhere(ids < 0)
    if len(bad):
        row, col = bad[0]
        raise UserError(where, f"MSA row {row} has unknown letter {sequences[row][col]!r} at column "
                               f"{col + 1}")
    return ids


def merge_msas(msas: Sequence[Msa], deduplicate: bool = True) -> Msa:
    """Concatenate MSAs in order, keeping the first occurrence of each aligned row (AF2 v2.3).

    Rows are compared by their aligned letters only (insertions are ignored), so the query, which heads
    every MSA, appears once, as row 0.
    """
    if not msas:
        raise ValueError("at least one MSA is needed")
    seen: set[str] = set()
    sequences: list[str] = []
    deletions: list[tuple[int, ...]] = []
    descriptions: list[str] = []
    for index, msa in enumerate(msas):
        if not len(msa):
            raise ValueError(f"MSA {index} has no rows")
        for seq, dels, desc in zip(msa.sequences, msa.deletion_matrix, msa.descriptions):
            if deduplicate:
                if seq in seen:
                    continue
                seen.add(seq)
            sequences.append(seq)
            deletions.append(dels)
            descriptions.append(desc)
    return Msa(tuple(sequences), tuple(deletions), tuple(descriptions))


def make_msa_features(msas: Sequence[Msa], deduplicate: bool = True, where: str | None = None) -> FeatureDict:
    """AF2's MSA features from one or more MSAs of the same query (merged as :func:`merge_msas`)."""
    merged = merge_msas(msas, deduplicate=deduplicate)
    num_res = len(msas[0].query)
    for seq, dels, desc in zip(merged.sequences, merged.deletion_matrix, merged.descriptions):
        if len(seq) != num_res or len(dels) != num_res:
            raise UserError(where, f"MSA row has {len(seq)} columns, the query has {num_res}",
                            record=desc.split()[0] if desc else None)
    num_alignments = len(merged)
    return {
        # [N, L]
        "deletion_matrix_int": np.array(merged.deletion_matrix, dtype=np.int32).reshape(
            num_alignments, num_res),
        "msa": encode_msa_rows(merged.sequences, where),
        "num_alignments": np.full((num_res,), num_alignments, dtype=np.int32),
        "msa_species_identifiers": np.array(
            [species_identifier(d).encode("utf-8") for d in merged.descriptions], dtype=np.bytes_
        ).reshape(num_alignments),
    }


def query_only_msa(sequence: str, description: str = "query") -> Msa:
    """A one-row MSA holding just the query (single-sequence mode)."""
    return Msa((sequence,), (tuple([0] * len(sequence)),), (description,))


def empty_template_features(num_res: int) -> FeatureDict:
    """Template features with no templates (T = 0), in the contract's shapes."""
    return {
        "template_aatype": np.zeros((0, num_res, NUM_TEMPLATE_RESTYPES), dtype=np.float32),
        "template_all_atom_masks": np.zeros((0, num_res, rc.atom_type_num), dtype=np.float32),
        "template_all_atom_positions": np.zeros((0, num_res, rc.atom_type_num, 3), dtype=np.float32),
        "template_domain_names": np.zeros((0,), dtype="S1"),
        "template_sequence": np.zeros((0,), dtype="S1"),
        "template_sum_probs": np.zeros((0, 1), dtype=np.float32),
    }


RAW_FEATURE_KEYS = (
    "aatype", "between_segment_residues", "domain_name", "residue_index", "seq_length", "sequence",
    "deletion_matrix_int", "msa", "num_alignments", "msa_species_identifiers",
    "template_aatype", "template_all_atom_masks", "template_all_atom_positions", "template_domain_names",
    "template_sequence", "template_sum_probs",
)


def to_storable(features: Mapping[str, np.ndarray]) -> FeatureDict:
    """Object arrays of bytes/str (as DeepMind's code makes them) become ``S`` arrays; others unchanged."""
    out: FeatureDict = {}
    for key, value in features.items():
        value = np.asarray(value)
        if value.dtype == object:
            items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in value.ravel()]
            value = np.array(items, dtype=np.bytes_).reshape(value.shape) if items else \
                np.zeros(value.shape, dtype="S1")
        out[key] = value
    return out


def check_raw_features(features: Mapping[str, np.ndarray], where: str | None = None) -> None:
    """Check the contract's keys and shapes of a raw feature dict (a consumer's first line of defence)."""
    missing = [k for k in RAW_FEATURE_KEYS if k not in features]
    if missing:
        raise UserError(where, f"raw features lack {', '.join(missing)}")
    num_res = int(features["seq_length"][0]) if len(features["seq_length"]) else 0
    n = features["msa"].shape[0]
    t = features["template_aatype"].shape[0]
    expected = {
        "aatype": (num_res, rc.restype_num + 1), "residue_index": (num_res,), "seq_length": (num_res,),
        "between_segment_residues": (num_res,), "domain_name": (1,), "sequence": (1,),
        "msa": (n, num_res), "deletion_matrix_int": (n, num_res), "num_alignments": (num_res,),
        "msa_species_identifiers": (n,),
        "template_aatype": (t, num_res, NUM_TEMPLATE_RESTYPES),
        "template_all_atom_masks": (t, num_res, rc.atom_type_num),
        "template_all_atom_positions": (t, num_res, rc.atom_type_num, 3),
        "template_domain_names": (t,), "template_sequence": (t,), "template_sum_probs": (t, 1),
    }
    for key, shape in expected.items():
        if tuple(features[key].shape) != shape:
            raise UserError(where, f"feature {key} has shape {tuple(features[key].shape)}, expected {shape}")


def log_msa_sizes(named: Mapping[str, Msa], merged_rows: int) -> None:
    for name, msa in named.items():
        logger.info("%s MSA: %d sequences", name, len(msa))
    logger.info("merged (deduplicated) MSA: %d sequences", merged_rows)

"""Template search and template features, as AlphaFold2 v2.3 builds them from hmmsearch hits.

Jumper et al. (2021) Suppl. 1.2.3 "Template search": a profile HMM built from the query's MSA (the query's
residues are the match states, HMMER's `--hand` construction) searches a `pdb_seqres.txt`-style FASTA of
PDB chains (`>1abc_A mol:protein length:N  NAME`); each hit is mapped onto the query, checked against the
release-date cut-off, located in its mmCIF chain (realigned when the database sequence differs from the
file's) and turned into AF2's raw template features:

    template_aatype              [T, L, 22] float32  one-hot, HHblits alphabet order ('-' = 21)
    template_all_atom_masks      [T, L, 37] float32
    template_all_atom_positions  [T, L, 37, 3] float32
    template_domain_names        [T] bytes, e.g. b"1abc_A"
    template_sequence            [T] bytes, the template residue aligned to each query position or '-'
    template_sum_probs           [T, 1] float32 (0 for hmmsearch hits, as AF2)

Hit selection follows DeepMind's `HmmsearchHitFeaturizer`: hits in hmmsearch order, prefilter (aligned
columns > 10% of the query, ≥ 10 template residues), skip what fails, drop repeats of an identical
template sequence, stop at `max_hits`. With no usable hit the arrays have T = 0 (AF2's monomer pipeline
does the same; the model then ignores templates). `tool="hhsearch"` runs AF2's monomer search instead
(HHsearch against a PDB70-style database, `alphafold.data.hhsearch`): hits ranked by Sum_probs, repeats
kept, as DeepMind's `HhsearchHitFeaturizer`.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from Bio import Align

from alphafold.common import residue_constants as rc
from alphafold.data import hhsearch
from alphafold.data.mmcif import MmcifEntry, TemplateStructureError, read_mmcif_cached
from alphafold.errors import UserError

log = logging.getLogger(__name__)

# HHblits amino-acid order used by raw MSA and template one-hots (DeepMind's HHBLITS_AA_TO_ID): the 20
# residues alphabetically by one-letter code, then X, then the gap. Ambiguity codes fold onto a residue.
HHBLITS_ALPHABET = "ACDEFGHIKLMNPQRSTVWYX-"
HHBLITS_AA_TO_ID: dict[str, int] = {c: i for i, c in enumerate(HHBLITS_ALPHABET)}
HHBLITS_AA_TO_ID.update({"B": 2, "Z": 3, "U": 1, "J": 20, "O": 20})

TEMPLATE_FEATURE_DTYPES = {
    "template_aatype": np.float32,
    "template_all_atom_masks": np.float32,
    "template_all_atom_positions": np.float32,
    "template_domain_names": np.bytes_,
    "template_sequence": np.bytes_,
    "template_sum_probs": np.float32,
}

_SEQRES_HEADER = re.compile(r"^([A-Za-z0-9]+)_(\w+)\s")


@dataclasses.dataclass(frozen=True)
class TemplateHit:
    """One hmmsearch domain hit, already in query coordinates.

    `mapping` sends query positions (0-based) to positions in `hit_sequence` (0-based), where
    `hit_sequence` is the aligned stretch of the database sequence (residues `target_from..target_to`).
    """

    name: str
    pdb_id: str
    chain_id: str
    hit_sequence: str
    mapping: dict[int, int]
    aligned_cols: int
    e_value: float
    score: float
    sum_probs: float = 0.0


def _is_protein_record(description: str) -> bool:
    """pdb_seqres records say `mol:protein` or `mol:na`; records without a `mol:` tag count as protein."""
    return "mol:protein" in description or "mol:" not in description


def empty_template_features(num_res: int) -> dict[str, np.ndarray]:
    """Template features with no template: T = 0, trailing shapes as with templates."""
    return {
        "template_aatype": np.zeros((0, num_res, len(HHBLITS_ALPHABET)), np.float32),
        "template_all_atom_masks": np.zeros((0, num_res, rc.atom_type_num), np.float32),
        "template_all_atom_positions": np.zeros((0, num_res, rc.atom_type_num, 3), np.float32),
        "template_domain_names": np.zeros((0,), dtype="S1"),
        "template_sequence": np.zeros((0,), dtype="S1"),
        "template_sum_probs": np.zeros((0, 1), np.float32),
    }


def msa_match_columns(msa: Sequence[str], query_sequence: str) -> list[str]:
    """A3M rows reduced to the query's columns: insertions (lower case, '.') removed; query first.

    Raises:
        UserError: a row does not have one column per query residue, or the first row is not the query.
    """
    rows = []
    for i, row in enumerate(msa):
        matches = "".join(c for c in row if not (c.islower() or c == "."))
        if len(matches) != len(query_sequence):
            raise UserError("template search MSA", f"row {i} has {len(matches)} match columns, the query "
                                                   f"has {len(query_sequence)} residues")
        rows.append(matches.upper())
    if not rows:
        return [query_sequence]
    if rows[0].replace("-", "") != query_sequence:
        raise UserError("template search MSA", "the first row must be the query sequence")
    return rows


def unique_rows(msa: Sequence[str]) -> list[str]:
    """A3M rows without repeats (first kept), as AF2 deduplicates the template-search MSA."""
    seen: set[str] = set()
    return [r for r in (row.replace(".", "") for row in msa) if not (r in seen or seen.add(r))]


def expand_insertions(rows: Sequence[str]) -> tuple[list[str], str]:
    """A3M rows -> a full alignment with insert columns, and its reference line ('x' match, '.' insert).

    This is the Stockholm layout jackhmmer writes and AF2 builds its template HMM from: each run of
    insertions (lower case) before match column k gets as many columns as the longest such run among
    the rows, residues left-justified, '.' elsewhere.
    """
    split = []
    for row in rows:
        inserts, matches, current = [], [], []
        for c in row:
            if c.islower():
                current.append(c)
            else:
                inserts.append("".join(current))
                matches.append(c)
                current = []
        inserts.append("".join(current))
        split.append((inserts, matches))
    num_match = len(split[0][1])
    widths = [max(len(ins[k]) for ins, _ in split) for k in range(num_match + 1)]
    expanded = []
    for inserts, matches in split:
        parts = []
        for k in range(num_match + 1):
            parts.append(inserts[k].ljust(widths[k], "."))
            if k < num_match:
                parts.append(matches[k])
        expanded.append("".join(parts))
    reference = "".join("." * widths[k] + ("x" if k < num_match else "") for k in range(num_match + 1))
    return expanded, reference


def _hand_hmm(rows: list[str], alphabet):
    """Profile HMM whose match states are exactly the query's residues (hmmbuild --hand), built from the
    deduplicated MSA with its insert columns, as AF2 builds it from the jackhmmer Stockholm."""
    from pyhmmer import easel, plan7

    expanded, reference = expand_insertions(unique_rows(rows))
    sequences = [easel.TextSequence(name=f"s{i}".encode(), sequence=r) for i, r in enumerate(expanded)]
    msa = easel.TextMSA(name=b"query", sequences=sequences)
    msa.reference = reference
    builder = plan7.Builder(alphabet, architecture="hand")
    hmm, _, _ = builder.build_msa(msa.digitize(alphabet), plan7.Background(alphabet))
    return hmm


def _alignment_to_hit(name: str, alignment, e_value: float, score: float) -> TemplateHit | None:
    """Map an HMMER domain alignment onto query positions (HMM match state k = query residue k-1)."""
    match = _SEQRES_HEADER.match(name + " ")
    if not match:
        return None
    mapping: dict[int, int] = {}
    hmm_pos = alignment.hmm_from - 1
    hit_pos = 0
    residues = []
    aligned_cols = 0
    for h, t in zip(alignment.hmm_sequence, alignment.target_sequence):
        is_match_state = h != "."
        has_residue = t not in "-."
        if is_match_state and has_residue:
            mapping[hmm_pos] = hit_pos
            aligned_cols += 1
        if has_residue:
            residues.append(t.upper())
            hit_pos += 1
        if is_match_state:
            hmm_pos += 1
    return TemplateHit(name=name, pdb_id=match[1].lower(), chain_id=match[2], hit_sequence="".join(residues),
                       mapping=mapping, aligned_cols=aligned_cols, e_value=e_value, score=score)


def _find_in_chains(entry: MmcifEntry, chain_id: str, template_sequence: str) -> tuple[str, str, int] | None:
    """(chain sequence, chain id, offset) of the hit in the entry: same chain, any chain, then X-fuzzy."""
    own = entry.seqres.get(chain_id)
    if own and template_sequence in own:
        return own, chain_id, own.find(template_sequence)
    for cid, seq in entry.seqres.items():
        if template_sequence in seq:
            return seq, cid, seq.find(template_sequence)
    pattern = re.compile("".join("." if aa == "X" else f"(?:{aa}|X)" for aa in template_sequence))
    for cid, seq in entry.seqres.items():
        found = pattern.search(seq)
        if found:
            return seq, cid, found.start()
    return None


def _realign(old_sequence: str, chain_id: str, entry: MmcifEntry,
             mapping: dict[int, int]) -> tuple[str, dict[int, int]]:
    """Align the database version of a template to the mmCIF chain sequence and carry the mapping over.

    As AF2 (which uses kalign): accepted only when ≥ 90% of the shorter sequence is identical; query
    positions whose residue has no counterpart map to -1 (dropped).
    """
    new_sequence = entry.seqres.get(chain_id, "")
    if not new_sequence:
        if len(entry.seqres) != 1:
            raise TemplateStructureError(f"{entry.path}: no protein chain {chain_id}")
        new_sequence = next(iter(entry.seqres.values()))
    aligner = Align.PairwiseAligner(mode="global", match_score=1.0, mismatch_score=-1.0,
                                    open_gap_score=-3.0, extend_gap_score=-0.5)
    alignment = aligner.align(old_sequence, new_sequence)[0]
    old_to_new: dict[int, int] = {}
    same = 0
    for (o0, o1), (n0, _) in zip(*alignment.aligned):
        for k in range(o1 - o0):
            old_to_new[o0 + k] = n0 + k
            same += old_sequence[o0 + k] == new_sequence[n0 + k]
    if same / min(len(old_sequence), len(new_sequence)) < 0.9:
        raise TemplateStructureError(
            f"{entry.path}: chain {chain_id} sequence is < 90% identical to the database sequence")
    return new_sequence, {q: old_to_new.get(t, -1) for q, t in mapping.items()}


def featurize_hit(hit: TemplateHit, entry: MmcifEntry, query_sequence: str) -> dict[str, np.ndarray]:
    """Raw template features of one hit (no leading T axis).

    Raises:
        TemplateStructureError: the chain cannot be found/realigned, its coordinates are broken, or fewer
            than 5 atoms land on the query.
    """
    template_sequence = hit.hit_sequence
    mapping = hit.mapping
    found = _find_in_chains(entry, hit.chain_id, template_sequence)
    if found is None:
        log.warning("%s: sequence of %s not in the file; realigning to the chain's sequence",
                    entry.path, hit.name)
        template_sequence, mapping = _realign(template_sequence, hit.chain_id, entry, mapping)
        chain_id, offset = hit.chain_id, 0
        if chain_id not in entry.seqres and len(entry.seqres) == 1:
            chain_id = next(iter(entry.seqres))
    else:
        _, chain_id, offset = found
    positions, mask = entry.atom37(chain_id)
    num_res = len(query_sequence)
    out_positions = np.zeros((num_res, rc.atom_type_num, 3), np.float32)
    out_mask = np.zeros((num_res, rc.atom_type_num), np.float32)
    out_sequence = ["-"] * num_res
    for q, t in mapping.items():
        if t < 0:
            # DEVIATION(af2): AF2 indexes position -1 (the chain's last residue) for query residues whose
            # template residue vanished in the realignment; they carry no template residue here.
            continue
        out_positions[q] = positions[t + offset]
        out_mask[q] = mask[t + offset]
        out_sequence[q] = template_sequence[t]
    if out_mask.sum() < 5:
        raise TemplateStructureError(f"{entry.path}: chain {chain_id}: fewer than 5 atoms map to the query")
    sequence = "".join(out_sequence)
    aatype = np.zeros((num_res, len(HHBLITS_ALPHABET)), np.float32)
    aatype[np.arange(num_res), [HHBLITS_AA_TO_ID.get(c, 20) for c in sequence]] = 1.0
    return {
        "template_aatype": aatype,
        "template_all_atom_masks": out_mask,
        "template_all_atom_positions": out_positions,
        "template_domain_names": np.array(f"{entry.file_id}_{chain_id}".encode()),
        "template_sequence": np.array(sequence.encode()),
        "template_sum_probs": np.array([hit.sum_probs], np.float32),
    }


class TemplateSearcher:
    """hmmsearch of a query profile against PDB chain sequences, then AF2 template features.

    Args:
        pdb_seqres: FASTA in PDB's `pdb_seqres.txt` format (`>1abc_A mol:protein length:N  NAME`);
            non-protein records are skipped. Read once, on the first search.
        mmcif_dir: directory of `<pdb_id>.cif` or `<pdb_id>.cif.gz` (either case), flat or PDB-style
            divided (`ab/1abc.cif.gz`).
        max_template_date: `YYYY-MM-DD`; entries released after it are never used.
        max_hits: templates returned at most (AF2 keeps 4 for monomers).
        e_value: hmmsearch reporting/inclusion thresholds (AF2 uses 100 for all four).
        cpus: hmmsearch threads (0 = all).
        skip_bad_files: log and skip a malformed mmCIF instead of stopping with a UserError.
        tool: "hmmsearch" (pyhmmer against `pdb_seqres`, AF2's multimer-style search) or "hhsearch"
            (HH-suite against `hhsearch_db`, a PDB70-style database prefix, AF2's monomer search; hits
            ranked by Sum_probs, repeats kept). `pdb_seqres` may be None with hhsearch.
        hhsearch_db: HH-suite database prefix (`<prefix>_hhm.ffdata`, `<prefix>_cs219.ffdata`, ...).
    """

    def __init__(self, pdb_seqres: str | os.PathLike | None, mmcif_dir: str | os.PathLike,
                 max_template_date: str | datetime.date, max_hits: int = 4, *, e_value: float = 100.0,
                 cpus: int = 1, skip_bad_files: bool = False, tool: str = "hmmsearch",
                 hhsearch_db: str | os.PathLike | None = None):
        if tool not in ("hmmsearch", "hhsearch"):
            raise UserError(None, f"template search tool {tool!r}: choose hmmsearch or hhsearch")
        self.tool = tool
        self.pdb_seqres = Path(pdb_seqres) if pdb_seqres is not None else None
        self.mmcif_dir = Path(mmcif_dir)
        self.hhsearch_db = str(hhsearch_db) if hhsearch_db is not None else None
        if tool == "hmmsearch" and (self.pdb_seqres is None or not self.pdb_seqres.is_file()):
            raise UserError(str(pdb_seqres), "template sequence database (pdb_seqres) not found")
        if tool == "hhsearch":
            missing = [str(p) for p in hhsearch.database_files(self.hhsearch_db or "")
                       if self.hhsearch_db is None or not p.is_file()]
            if missing:
                raise UserError(str(self.hhsearch_db), f"HH-suite template database incomplete: missing "
                                                       f"{', '.join(missing)}")
        if not self.mmcif_dir.is_dir():
            raise UserError(str(mmcif_dir), "mmCIF directory not found")
        if isinstance(max_template_date, datetime.date):
            self.max_template_date = max_template_date
        else:
            try:
                self.max_template_date = datetime.date.fromisoformat(str(max_template_date))
            except ValueError as err:
                raise UserError(None, f"max template date {max_template_date!r} is not YYYY-MM-DD") from err
        if max_hits < 0:
            raise UserError(None, f"max_hits must be >= 0, got {max_hits}")
        self.max_hits = max_hits
        self.e_value = e_value
        self.cpus = cpus
        self.skip_bad_files = skip_bad_files
        self._targets = None
        self._alphabet = None

    def _load_targets(self):
        if self._targets is None:
            from pyhmmer import easel

            self._alphabet = easel.Alphabet.amino()
            try:
                with easel.SequenceFile(str(self.pdb_seqres), digital=True, alphabet=self._alphabet,
                                        format="fasta") as fh:
                    block = fh.read_block()
            except (ValueError, OSError) as err:
                raise UserError(str(self.pdb_seqres), f"not a readable FASTA file: {err}") from err
            # Nucleic-acid records stay in the searched set (they count in hmmsearch's E-values, as in
            # AF2's search of the whole file); their hits are dropped afterwards.
            self._targets = block
            num_protein = sum(_is_protein_record(s.description) for s in block)
            log.info("template database %s: %d records, %d protein chains", self.pdb_seqres, len(block),
                     num_protein)
        return self._targets

    def _mmcif_path(self, pdb_id: str) -> Path | None:
        for name in (pdb_id.lower(), pdb_id.upper()):
            for sub in (self.mmcif_dir, self.mmcif_dir / pdb_id.lower()[1:3]):
                for ext in (".cif", ".cif.gz"):
                    path = sub / f"{name}{ext}"
                    if path.is_file():
                        return path
        return None

    def hmmsearch(self, query_sequence: str, msa: Sequence[str] | None = None) -> list[TemplateHit]:
        """All included hmmsearch domain hits, in hmmsearch's order (best first)."""
        from pyhmmer import hmmer

        targets = self._load_targets()
        rows = list(msa) if msa else [query_sequence]
        msa_match_columns(rows, query_sequence)  # validates: one match column per query residue
        hmm = _hand_hmm(rows, self._alphabet)
        e = self.e_value
        top_hits = next(iter(hmmer.hmmsearch([hmm], targets, cpus=self.cpus, E=e, domE=e, incE=e,
                                             incdomE=e, F1=0.1, F2=0.1, F3=0.1)))
        hits = []
        for hit in top_hits:
            description = hit.description.decode() if isinstance(hit.description, bytes) else hit.description
            if not hit.included or not _is_protein_record(description or ""):
                continue
            name = hit.name.decode() if isinstance(hit.name, bytes) else hit.name
            for domain in hit.domains.included:
                parsed = _alignment_to_hit(name, domain.alignment, hit.evalue, hit.score)
                if parsed is not None:
                    hits.append(parsed)
        return hits

    def hhsearch(self, query_sequence: str, msa: Sequence[str] | None = None) -> list[TemplateHit]:
        """HHsearch hits ranked by Sum_probs (highest first, as DeepMind's HhsearchHitFeaturizer)."""
        rows = list(msa) if msa else [query_sequence]
        msa_match_columns(rows, query_sequence)  # validates: one match column per query residue
        text = hhsearch.run_hhsearch(hhsearch.query_a3m(unique_rows(rows)), self.hhsearch_db,
                                     cpus=max(self.cpus, 1))
        hits = []
        for raw in hhsearch.parse_hhr(text):
            match = _SEQRES_HEADER.match(raw["name"] + " ")
            if not match:
                continue
            sequence, mapping = hhsearch.hit_mapping(raw)
            hits.append(TemplateHit(name=raw["name"], pdb_id=match[1].lower(), chain_id=match[2],
                                    hit_sequence=sequence, mapping=mapping, aligned_cols=raw["aligned_cols"],
                                    e_value=raw["e_value"], score=raw["score"], sum_probs=raw["sum_probs"]))
        return sorted(hits, key=lambda h: h.sum_probs, reverse=True)

    def search(self, query_sequence: str, msa: Sequence[str] | None = None,
               ) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Template features for `query_sequence` and a record of every hit considered.

        Args:
            query_sequence: one-letter sequence (L residues).
            msa: aligned sequences, A3M style (lower case = insertion), the query first; None or empty
                searches with the query alone.

        Returns:
            (features, hits): features as in the module docstring (T ≤ max_hits); hits lists dicts
            `name, e_value, score, aligned_cols, release_date, used, reason` in hmmsearch order.
        """
        query_sequence = query_sequence.upper()
        records: list[dict] = []
        features: list[dict[str, np.ndarray]] = []
        seen_sequences: set[bytes] = set()
        if self.tool == "hhsearch":
            found = self.hhsearch(query_sequence, msa)
        else:
            found = self.hmmsearch(query_sequence, msa)
        for hit in found:
            if len(features) >= self.max_hits:
                break
            record = {"name": hit.name, "e_value": float(hit.e_value), "score": float(hit.score),
                      "aligned_cols": hit.aligned_cols, "release_date": None, "used": False, "reason": ""}
            records.append(record)
            record["reason"] = self._prefilter(hit, query_sequence)
            if record["reason"]:
                continue
            path = self._mmcif_path(hit.pdb_id)
            if path is None:
                record["reason"] = f"no mmCIF file for {hit.pdb_id} in {self.mmcif_dir}"
                log.warning("template %s: %s", hit.name, record["reason"])
                continue
            try:
                entry = read_mmcif_cached(str(path))
            except UserError as err:
                if not self.skip_bad_files:
                    raise
                record["reason"] = str(err)
                log.warning("template %s skipped: %s", hit.name, err)
                continue
            record["release_date"] = entry.release_date.isoformat() if entry.release_date else None
            if entry.release_date is None:
                record["reason"] = "no release date in the mmCIF file"
                continue
            if entry.release_date > self.max_template_date:
                record["reason"] = (f"released {entry.release_date} after the cut-off "
                                    f"{self.max_template_date}")
                log.info("template %s: %s", hit.name, record["reason"])
                continue
            try:
                hit_features = featurize_hit(hit, entry, query_sequence)
            except TemplateStructureError as err:
                record["reason"] = str(err)
                log.warning("template %s skipped: %s", hit.name, err)
                continue
            key = hit_features["template_sequence"].item()
            # DeepMind drops repeated template sequences for hmmsearch hits only.
            if self.tool == "hmmsearch" and key in seen_sequences:
                record["reason"] = "same aligned sequence as an earlier template"
                continue
            seen_sequences.add(key)
            record["used"] = True
            features.append(hit_features)
        log.info("templates: %d used of %d hits considered: %s", len(features), len(records),
                 ", ".join(r["name"] for r in records if r["used"]) or "none")
        if not features:
            return empty_template_features(len(query_sequence)), records
        stacked = {k: np.stack([f[k] for f in features]) for k in TEMPLATE_FEATURE_DTYPES}
        return {k: v.astype(TEMPLATE_FEATURE_DTYPES[k]) for k, v in stacked.items()}, records

    @staticmethod
    def _prefilter(hit: TemplateHit, query_sequence: str) -> str:
        """AF2's `_assess_hhsearch_hit` for hmmsearch hits: the reason to reject, or ''."""
        if hit.aligned_cols / len(query_sequence) <= 0.1:
            return f"aligns {hit.aligned_cols} of {len(query_sequence)} query residues (≤ 10%)"
        if len(hit.hit_sequence) < 10:
            return f"template stretch of {len(hit.hit_sequence)} residues is shorter than 10"
        return ""

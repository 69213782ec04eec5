"""Rebuild the template test files in this directory from their public sources (see README.md).

Run from the repository root with the project venv, after `pip download --no-deps mdanalysistests tmtools`
into SRC (and the Debian packages emboss-test and t-coffee-examples installed):

    python tests/data/files/make_template_files.py SRC

Old PDB-format files are converted to mmCIF with gemmi; nothing is invented: the revision history of 2HHB
comes from its REVDAT records, the other converted files keep only their deposition date (the template
reader falls back to it), and chains without SEQRES get the observed residues as their sequence.
"""

from __future__ import annotations

import datetime
import gzip
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import gemmi

from alphafold.data.hhsearch import build_database
from alphafold.data.mmcif import read_mmcif

HERE = Path(__file__).resolve().parent
MMCIF_DIR = HERE / "mmcif"
EMBOSS_2HHB = Path("/usr/share/EMBOSS/test/data/structure/2hhb.ent")
TCOFFEE = Path("/usr/share/doc/t-coffee/examples")
HMMER_TUTORIAL = Path("/usr/share/doc/hmmer/examples/tutorial")
# Trypsin-like serine proteases from t-coffee's examples (file stem -> PDB id).
PROTEASES = {"1EUFA": "1euf", "1MZDA": "1mzd", "1OP8F": "1op8", "1PPG": "1ppg"}


def _read_pdb(path: Path, old_format: bool) -> tuple[gemmi.Structure, list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        lines = [line.rstrip("\n") for line in fh]
    if old_format:
        # Pre-1996 records carry an id/serial in columns 73-80 where gemmi expects element and charge.
        lines = [line[:72] for line in lines]
    return gemmi.read_pdb_string("\n".join(lines)), lines


def _write_cif(st: gemmi.Structure, out: Path, revdat: list[tuple[int, str]] | None = None) -> None:
    st.setup_entities()
    for ent in st.entities:
        if ent.entity_type == gemmi.EntityType.Polymer and not ent.full_sequence:
            chain = next(ch for ch in st[0] if ch.get_polymer() and ch.subchains()[0] in ent.subchains)
            ent.full_sequence = [res.name for res in chain.get_polymer()]
    st.assign_label_seq_id()
    doc = st.make_mmcif_document()
    block = doc.sole_block()
    # gemmi leaves _chem_comp.type unknown; the standard amino acids are 'L-peptide linking' (GLY
    # 'peptide linking') in the wwPDB chemical component dictionary, which is what readers test.
    for row in block.find("_chem_comp.", ["id", "type"]):
        info = gemmi.find_tabulated_residue(row[0])
        if info is not None and info.is_amino_acid() and info.is_standard():
            row[1] = "'peptide linking'" if row[0] == "GLY" else "'L-peptide linking'"
    if revdat:
        loop = block.init_loop("_pdbx_audit_revision_history.",
                               ["ordinal", "data_content_type", "major_revision", "minor_revision",
                                "revision_date"])
        for ordinal, date in revdat:
            loop.add_row([str(ordinal), "'Structure model'", str(ordinal), "0", date])
    with gzip.open(out, "wt") as fh:
        fh.write(doc.as_string())


def _revdat(lines: list[str]) -> list[tuple[int, str]]:
    out = []
    for line in lines:
        if line.startswith("REVDAT") and line[10:12].strip() == "":
            day = datetime.datetime.strptime(line[13:22], "%d-%b-%y").date()
            out.append((int(line[7:10]), day.isoformat()))
    return sorted(out)


def main(src: Path) -> None:
    MMCIF_DIR.mkdir(exist_ok=True)
    st, lines = _read_pdb(EMBOSS_2HHB, old_format=True)
    _write_cif(st, MMCIF_DIR / "2hhb.cif.gz", revdat=_revdat(lines))
    for stem, pdb_id in PROTEASES.items():
        st, _ = _read_pdb(TCOFFEE / f"{stem}.pdb.gz", old_format=False)
        st.name = pdb_id.upper()
        _write_cif(st, MMCIF_DIR / f"{pdb_id}.cif.gz")
    with tarfile.open(next(src.glob("mdanalysistests-*.tar.gz"))) as tar:
        for name in ("5PTI.cif.gz",):
            member = next(m for m in tar.getmembers() if m.name.endswith(f"data/mmcif/{name}"))
            target = MMCIF_DIR / name.lower()
            with tar.extractfile(member) as fh, open(target, "wb") as out:
                shutil.copyfileobj(fh, out)
    with zipfile.ZipFile(next(src.glob("tmtools-*.whl"))) as whl, whl.open("tmtools/data/2gtl.cif") as fh:
        with gzip.open(MMCIF_DIR / "2gtl.cif.gz", "wb") as out:
            shutil.copyfileobj(fh, out)
    # A pdb_seqres.txt-style database of every protein chain above (the format of PDB's pdb_seqres.txt).
    records = []
    for path in sorted(MMCIF_DIR.glob("*.cif.gz")):
        entry = read_mmcif(path)
        for chain_id, seq in entry.seqres.items():
            header = f"{entry.file_id}_{chain_id} mol:protein length:{len(seq)}  {entry.file_id.upper()}"
            records.append(f">{header}\n{seq}\n")
    (HERE / "pdb_seqres.txt").write_text("".join(records))
    # The same chains as an HH-suite database for the hhsearch path (hhmake/ffindex_build/cstranslate).
    (HERE / "hhsearch").mkdir(exist_ok=True)
    build_database(HERE / "pdb_seqres.txt", HERE / "hhsearch" / "pdb_seqres")
    (HERE / "hbb_globins45.a3m").write_text(_phmmer_a3m(HMMER_TUTORIAL / "HBB_HUMAN",
                                                       HMMER_TUTORIAL / "globins45.fa"))


def _phmmer_a3m(query_fasta: Path, database: Path) -> str:
    """A3M of phmmer hits of the query in the database: match columns upper case, insertions lower."""
    from pyhmmer import easel, hmmer

    alphabet = easel.Alphabet.amino()
    with easel.SequenceFile(str(query_fasta), digital=True, alphabet=alphabet) as fh:
        query = fh.read()
    with easel.SequenceFile(str(database), digital=True, alphabet=alphabet) as fh:
        targets = fh.read_block()
    length = len(query.sequence)
    lines = [f">{query.name}\n{query.textize().sequence}\n"]
    for hit in next(iter(hmmer.phmmer([query], targets, E=1e-10))):
        ali = hit.best_domain.alignment
        row = ["-"] * (ali.hmm_from - 1)
        for h, t in zip(ali.hmm_sequence, ali.target_sequence):
            row.append(t.upper() if h != "." else t.lower())
        row += ["-"] * (length - ali.hmm_to)
        lines.append(f">{hit.name}/{ali.target_from}-{ali.target_to}\n{''.join(row)}\n")
    return "".join(lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

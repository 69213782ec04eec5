"""Reference template features from DeepMind's own template code (run in the reference venv).

    cd /tmp && env -u PYTHONPATH /work/refvenv/bin/python \\
        <repo>/tests/data/reference/make_af2_templates.py <repo>

Runs AF2 v2.3's hmmsearch template path (hmmbuild --hand on the query MSA, hmmsearch with AF2's flags,
`HmmsearchHitFeaturizer` with kalign) on the HBB query + globins45 MSA against the test pdb_seqres and
mmCIF files, and saves the raw template features to tests/data/files/af2_templates_hbb.npz. Also records
what DeepMind's mmCIF parser reads from every test mmCIF file (release date, chain sequences, sha256 of the
float32 atom37 positions and masks of each chain) in tests/data/files/af2_mmcif_digest.json.
Needs the Debian hmmer and kalign binaries. Never imported by the tests.
"""

import gzip
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from alphafold.data.tools import hhsearch, hmmsearch

from alphafold.data import mmcif_parsing, parsers, templates

MAX_TEMPLATE_DATE = "2020-01-01"


def main(repo: Path) -> None:
    files = repo / "tests/data/files"
    names, a3m_rows = [], []
    for line in (files / "hbb_globins45.a3m").read_text().splitlines():
        if line.startswith(">"):
            names.append(line[1:].split()[0])
            a3m_rows.append("")
        else:
            a3m_rows[-1] += line.strip()
    # The alignment as jackhmmer's Stockholm holds it: insert columns (lower case, '.' in the other rows,
    # '.' in the RF line), then AF2's own clean-up before the template search.
    split = []
    for row in a3m_rows:
        inserts, matches, current = [], [], ""
        for c in row:
            if c.islower():
                current += c
            else:
                inserts.append(current)
                matches.append(c)
                current = ""
        split.append((inserts + [current], matches))
    num_match = len(split[0][1])
    widths = [max(len(ins[k]) for ins, _ in split) for k in range(num_match + 1)]
    rows = ["".join(ins[k].ljust(widths[k], ".") + (m[k] if k < num_match else "")
                    for k in range(num_match + 1)) for ins, m in split]
    rf = "".join("." * widths[k] + ("x" if k < num_match else "") for k in range(num_match + 1))
    width = max(len(n) for n in names) + 2
    sto = "# STOCKHOLM 1.0\n" + "".join(f"{n:<{width}}{r}\n" for n, r in zip(names, rows))
    sto += f"{'#=GC RF':<{width}}{rf}\n//\n"
    sto = parsers.remove_empty_columns_from_stockholm_msa(parsers.deduplicate_stockholm_msa(sto))
    query = a3m_rows[0]
    with tempfile.TemporaryDirectory() as tmp:
        for gz in (files / "mmcif").glob("*.cif.gz"):
            with gzip.open(gz, "rb") as src, open(Path(tmp) / gz.name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        searcher = hmmsearch.Hmmsearch(binary_path="/usr/bin/hmmsearch",
                                       hmmbuild_binary_path="/usr/bin/hmmbuild",
                                       database_path=str(files / "pdb_seqres.txt"))
        hits = searcher.get_template_hits(searcher.query(sto), query)
        featurizer = templates.HmmsearchHitFeaturizer(
            mmcif_dir=tmp, max_template_date=MAX_TEMPLATE_DATE, max_hits=4,
            kalign_binary_path="/usr/bin/kalign", release_dates_path=None, obsolete_pdbs_path=None)
        result = featurizer.get_templates(query, hits)
        save(files / "af2_templates_hbb.npz", result.features)
        # The same query through AF2's monomer path: hhsearch against the HH-suite version of the
        # database, HhsearchHitFeaturizer (ranked by Sum_probs, repeats kept).
        hh = hhsearch.HHSearch(binary_path="/usr/bin/hhsearch",
                               databases=[str(files / "hhsearch" / "pdb_seqres")])
        hh_hits = hh.get_template_hits(hh.query(parsers.convert_stockholm_to_a3m(sto)), query)
        hh_featurizer = templates.HhsearchHitFeaturizer(
            mmcif_dir=tmp, max_template_date=MAX_TEMPLATE_DATE, max_hits=4,
            kalign_binary_path="/usr/bin/kalign", release_dates_path=None, obsolete_pdbs_path=None)
        save(files / "af2_templates_hbb_hhsearch.npz", hh_featurizer.get_templates(query, hh_hits).features)


def save(path: Path, features) -> None:
    feats = dict(features)
    feats["template_domain_names"] = np.array(list(feats["template_domain_names"]), dtype=np.bytes_)
    feats["template_sequence"] = np.array(list(feats["template_sequence"]), dtype=np.bytes_)
    feats["template_sum_probs"] = np.asarray(feats["template_sum_probs"], np.float32).reshape(-1, 1)
    print({k: (v.shape, v.dtype) for k, v in feats.items()}, feats["template_domain_names"])
    np.savez_compressed(path, max_template_date=np.array(MAX_TEMPLATE_DATE), **feats)


def mmcif_digest(files: Path) -> None:
    digest = {}
    for gz in sorted((files / "mmcif").glob("*.cif.gz")):
        parsed = mmcif_parsing.parse(file_id=gz.name[:4], mmcif_string=gzip.open(gz, "rt").read())
        entry = parsed.mmcif_object
        chains = {}
        for chain_id, seq in entry.chain_to_seqres.items():
            positions, mask = templates._get_atom_positions(entry, chain_id, max_ca_ca_distance=150.0)
            chains[chain_id] = {
                "seqres": seq,
                "positions_sha256": hashlib.sha256(positions.astype(np.float32).tobytes()).hexdigest(),
                "mask_sha256": hashlib.sha256(mask.astype(np.float32).tobytes()).hexdigest(),
            }
        digest[gz.name] = {"release_date": entry.header.get("release_date"), "chains": chains}
    (files / "af2_mmcif_digest.json").write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    mmcif_digest(Path(sys.argv[1]).resolve() / "tests/data/files")
    main(Path(sys.argv[1]).resolve())

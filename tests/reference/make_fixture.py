"""Build one reference fixture with DeepMind's JAX model. Runs INSIDE the reference venv.

    cd /tmp && env -u PYTHONPATH $REFVENV/bin/python tests/reference/make_fixture.py CASE OUTDIR [--seed S]

Writes OUTDIR/CASE/ (atomically: a temporary directory renamed at the end) with
  params.npz         random parameters in DeepMind's flat layout (every tensor non-constant)
  features.npz       processed features (AF2 v2.3 pipeline, numpy backend), leading recycle axis
  outputs_r{r}.npz   recycle r: its inputs prev/{pos,msa_first_row,pair} and every output and
                     representation of that recycle, float32, DeepMind's names; template cases also
                     template/{torsion_angles_sin_cos,alt_torsion_angles_sin_cos,torsion_angles_mask}:
                     the template torsion angles exactly as the model used them (undefined ones included)
  meta.json          preset, block counts, seed, sizes, sources, versions
Every file is a pure function of the inputs and the seed (CPU jit is deterministic).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
sys.path.insert(0, str(HERE))

import refcommon  # noqa: E402

log = logging.getLogger("make_fixture")

# One entry per fixture case. `window` crops the query (and its MSA columns) to [start, start+length).
CASES = {
    "reduced_notemplate": dict(
        preset="model_3", evoformer_blocks=2, extra_msa_blocks=1, template_blocks=None, num_recycle=2,
        msa="hhsuite_query.a3m", window=(165, 57), msa_rows=20, template=None,
    ),
    "reduced_template": dict(
        preset="model_1", evoformer_blocks=2, extra_msa_blocks=1, template_blocks=2, num_recycle=3,
        msa="1ppg_E_jackhmmer.a3m", window=(16, 63), msa_rows=20, template=("1AE5A.pdb.gz", "A"),
    ),
    "model_1_ptm_L40": dict(
        preset="model_1_ptm", evoformer_blocks=None, extra_msa_blocks=None, template_blocks=None,
        num_recycle=1, msa="1ppg_E_jackhmmer.a3m", window=(100, 40), msa_rows=20,
        template=("1AE5A.pdb.gz", "A"),
    ),
}
MAX_CLUSTERS = 8
MAX_EXTRA = 8


# ----------------------------------------------------------------------------------------------------
# Raw features from real data


def cropped_msa(path: Path, start: int, length: int, max_rows: int):
    """DeepMind's A3M parser, then the columns [start, start+length) of every row.

    Rows that are all gaps in the window are dropped, duplicates removed (as DeepMind's pipeline does),
    and the first `max_rows` kept, the query first.
    """
    from alphafold.data import parsers

    msa = parsers.parse_a3m(path.read_text())
    seqs, dels, descs, seen = [], [], [], set()
    for seq, dl, desc in zip(msa.sequences, msa.deletion_matrix, msa.descriptions, strict=True):
        s = seq[start:start + length]
        if len(s) != length:
            raise ValueError(f"{path}: window {start}+{length} is past the alignment width {len(seq)}")
        if set(s) <= {"-"} or s in seen:
            continue
        seen.add(s)
        seqs.append(s)
        dels.append(list(dl[start:start + length]))
        descs.append(desc)
        if len(seqs) == max_rows:
            break
    return parsers.Msa(sequences=seqs, deletion_matrix=dels, descriptions=descs)


def template_chain(path: Path, chain_id: str):
    """Sequence and atom37 coordinates/mask of one chain of a real PDB file (first model, no HETATM)."""
    from Bio.PDB import PDBParser

    from alphafold.common import residue_constants as rc

    with gzip.open(path, "rt") as fh:
        structure = PDBParser(QUIET=True).get_structure(path.name, fh)
    chain = structure[0][chain_id]
    seq, pos, mask = [], [], []
    for res in chain:
        if res.id[0] != " ":
            continue
        name = res.get_resname()
        seq.append(rc.restype_3to1.get(name, "X"))
        p = np.zeros((rc.atom_type_num, 3), np.float32)
        m = np.zeros((rc.atom_type_num,), np.float32)
        for atom in res:
            atom_name = atom.get_name()
            if atom_name in rc.atom_order:
                p[rc.atom_order[atom_name]] = atom.get_coord()
                m[rc.atom_order[atom_name]] = 1.0
        pos.append(p)
        mask.append(m)
    return "".join(seq), np.stack(pos), np.stack(mask)


def align_query_to_template(query: str, template: str) -> dict[int, int]:
    """Global BLOSUM62 alignment (gap open -11, extend -1); query index -> template index."""
    from Bio import Align
    from Bio.Align import substitution_matrices

    aligner = Align.PairwiseAligner()
    aligner.substitution_matrix = substitution_matrices.load("BLOSUM62")
    aligner.open_gap_score = -11
    aligner.extend_gap_score = -1
    aligner.mode = "global"
    aln = aligner.align(query, template)[0]
    mapping = {}
    for (qs, qe), (ts, _te) in zip(*aln.aligned, strict=True):
        for k in range(qe - qs):
            mapping[qs + k] = ts + k
    return mapping


def template_features(full_query: str, start: int, length: int, pdb: Path, chain_id: str):
    """Raw template features (DeepMind's layout) of one real template aligned to the query window."""
    from alphafold.common import residue_constants as rc

    t_seq, t_pos, t_mask = template_chain(pdb, chain_id)
    mapping = align_query_to_template(full_query, t_seq)
    pos = np.zeros((length, rc.atom_type_num, 3), np.float32)
    mask = np.zeros((length, rc.atom_type_num), np.float32)
    out_seq = ["-"] * length
    identical = 0
    for i in range(length):
        j = mapping.get(start + i)
        if j is None:
            continue
        pos[i], mask[i], out_seq[i] = t_pos[j], t_mask[j], t_seq[j]
        identical += t_seq[j] == full_query[start + i]
    out_seq = "".join(out_seq)
    aligned = sum(c != "-" for c in out_seq)
    if aligned == 0 or mask.sum() == 0:
        raise ValueError(f"{pdb}: template has no residue aligned to the query window")
    name = f"{pdb.name[:4].lower()}_{chain_id}"
    feats = {
        "template_all_atom_positions": pos[None],
        "template_all_atom_masks": mask[None],
        "template_sequence": np.array([out_seq.encode()], dtype=object),
        "template_aatype": rc.sequence_to_onehot(out_seq, rc.HHBLITS_AA_TO_ID)[None].astype(np.float32),
        "template_domain_names": np.array([name.encode()], dtype=object),
        # No HHsearch here: the number of identical aligned residues stands in for its sum_probs.
        "template_sum_probs": np.array([[identical]], dtype=np.float32),
    }
    info = {"template": name, "template_aligned": aligned, "template_identical": identical,
            "template_atoms": int(mask.sum())}
    return feats, info


def raw_features(case: dict):
    """Raw (features.pkl-style) features of the case's real query window, MSA and template."""
    from alphafold.data import parsers, pipeline

    start, length = case["window"]
    msa_path = INPUTS / case["msa"]
    full = parsers.parse_a3m(msa_path.read_text())
    full_query = full.sequences[0]
    if "-" in full_query:
        raise ValueError(f"{msa_path}: the first sequence must be the gap-free query")
    msa = cropped_msa(msa_path, start, length, case["msa_rows"])
    query = msa.sequences[0]
    desc = full.descriptions[0].split()[0]
    feats = {
        **pipeline.make_sequence_features(query, f"{desc}/{start + 1}-{start + length}", length),
        **pipeline.make_msa_features([msa]),
    }
    info = {"query": query, "msa": case["msa"], "msa_rows": len(msa.sequences),
            "window_start_0based": start, "length": length}
    if case["template"]:
        t_feats, t_info = template_features(full_query, start, length, INPUTS / case["template"][0],
                                            case["template"][1])
        feats.update(t_feats)
        info.update(t_info)
    return feats, info


def processed_features(raw: dict, cfg, seed: int) -> dict[str, np.ndarray]:
    """DeepMind's feature processing (numpy backend) with a fixed seed; x64 types narrowed like jax."""
    from alphafold.model import features

    processed = features.np_example_to_features(np_example=raw, config=cfg, random_seed=seed)
    out = {}
    for k, v in processed.items():
        v = np.asarray(v)
        if v.dtype == np.float64:
            v = v.astype(np.float32)
        elif v.dtype == np.int64:
            v = v.astype(np.int32)
        out[k] = v
    return out


# ----------------------------------------------------------------------------------------------------
# Parameters and the run


def flatten_outputs(tree, prefix="") -> dict[str, np.ndarray]:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_outputs(v, key + "/"))
        else:
            out[key] = np.asarray(v)
    return out


def rename_outputs(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ColabFold's result keys to DeepMind's model-output names (docs/contracts.md)."""
    out = {}
    for k, v in flat.items():
        if k.startswith("prev/") or k in ("tol", "mean_plddt", "ranking_confidence"):
            continue
        if k.startswith("pae_matrix_with_logits/"):
            # The PAE head's own outputs, kept before the confidence metrics replaced the dict (trap 3).
            out["predicted_aligned_error/" + k.split("/", 1)[1]] = v
            continue
        if k in ("ptm", "max_predicted_aligned_error"):
            # ColabFold returns these as [1]; DeepMind (and the output contract) as scalars.
            v = v.reshape(())
        out[k] = v
    return out


def template_torsions(torsions_fn, batch: dict, used) -> dict[str, np.ndarray]:
    """`template/<key>`: DeepMind's template torsion angles of this recycle's batch (its jitted
    atom37_to_torsion_angles), checked bit for bit against the features the model itself used.

    Saved because the undefined (mask 0) angles are float32 noise only DeepMind's compiled code
    determines (refcommon.template_torsion_fn); the parity tests take those values from here.
    """
    import jax

    if used is None:
        raise RuntimeError("the template model did not call its template_single_embedding")
    torsions = jax.device_get(torsions_fn(batch["template_aatype"], batch["template_all_atom_positions"],
                                          batch["template_all_atom_masks"]))
    refcommon.check_template_torsions(torsions, np.asarray(used))
    return {f"template/{k}": np.asarray(v, np.float32) for k, v in torsions.items()}


def run_case(name: str, out_root: Path, seed: int) -> Path:
    import haiku as hk
    import jax

    case = CASES[name]
    t0 = time.time()
    cfg_kwargs = dict(
        num_recycle=case["num_recycle"], evoformer_blocks=case["evoformer_blocks"],
        extra_msa_blocks=case["extra_msa_blocks"], template_blocks=case["template_blocks"],
        max_msa_clusters=MAX_CLUSTERS, max_extra_msa=MAX_EXTRA,
    )
    cfg = refcommon.reference_config(case["preset"], zero_init=True, **cfg_kwargs)
    cfg_init = refcommon.reference_config(case["preset"], zero_init=False, **cfg_kwargs)

    raw, info = raw_features(case)
    feats = processed_features(raw, cfg, seed)
    n_iter = case["num_recycle"] + 1
    bad = [k for k, v in feats.items() if v.shape[:1] != (n_iter,)]
    if bad:
        raise RuntimeError(f"{name}: features without a leading recycle axis of {n_iter}: {bad}")
    log.info("%s: features L=%d, msa_feat %s (%.1f s)", name, info["length"], feats["msa_feat"].shape,
             time.time() - t0)

    batch0 = {k: v[0] for k, v in feats.items()}
    params = refcommon.random_params(cfg_init.model, batch0, seed)
    n_params = sum(v.size for v in params.values())
    log.info("%s: %d parameter tensors, %d parameters (%.1f s)", name, len(params), n_params,
             time.time() - t0)

    tmp = out_root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    refcommon.save_npz_deterministic(tmp / "params.npz", params)
    refcommon.save_npz_deterministic(tmp / "features.npz", feats)

    uses_templates = bool(cfg.model.embeddings_and_evoformer.template.enabled
                          and cfg.model.embeddings_and_evoformer.template.embed_torsion_angles)
    apply = jax.jit(hk.transform(refcommon.forward_fn_with_template_features(cfg.model)).apply)
    torsions_fn = refcommon.template_torsion_fn(cfg.model) if uses_templates else None
    hk_params = refcommon.unflatten_params(params)
    length = info["length"]
    prev = {
        "prev_pos": np.zeros((length, 37, 3), np.float32),
        "prev_msa_first_row": np.zeros((length, 256), np.float32),
        "prev_pair": np.zeros((length, length, 128), np.float32),
    }
    key = jax.random.PRNGKey(seed)  # unused by the deterministic eval forward pass; fixed anyway
    for r in range(n_iter):
        t_r = time.time()
        batch = {k: v[r] for k, v in feats.items()}
        result, used = jax.device_get(apply(hk_params, key, {**batch, "prev": dict(prev)}))
        flat = rename_outputs(flatten_outputs(result))
        if uses_templates:
            flat.update(template_torsions(torsions_fn, batch, used))
        elif used is not None:
            raise RuntimeError(f"{name}: the model embedded templates, the config says it does not")
        flat.update({"prev/pos": prev["prev_pos"], "prev/msa_first_row": prev["prev_msa_first_row"],
                     "prev/pair": prev["prev_pair"]})
        wrong = sorted(k for k, v in flat.items() if v.dtype.kind == "f" and v.dtype != np.float32)
        if wrong:
            raise RuntimeError(f"{name}: outputs not float32: {wrong}")
        refcommon.save_npz_deterministic(tmp / f"outputs_r{r}.npz", flat)
        prev = {k: np.asarray(v, np.float32) for k, v in result["prev"].items()}
        log.info("%s: recycle %d/%d done (%.1f s)", name, r, n_iter - 1, time.time() - t_r)

    meta = {
        "case": name,
        "preset": case["preset"],
        "seed": seed,
        "num_recycle": case["num_recycle"],
        "blocks": {
            "evoformer": int(cfg.model.embeddings_and_evoformer.evoformer_num_block),
            "extra_msa": int(cfg.model.embeddings_and_evoformer.extra_msa_stack_num_block),
            # 0 when the preset has no template embedding (the config value is then unused).
            "template_pair_stack": int(
                cfg.model.embeddings_and_evoformer.template.template_pair_stack.num_block)
            if cfg.model.embeddings_and_evoformer.template.enabled else 0,
        },
        "uses_templates": bool(cfg.model.embeddings_and_evoformer.template.enabled),
        "num_msa_clusters": int(feats["msa_feat"].shape[1]),
        "num_extra_msa": int(feats["extra_msa"].shape[1]),
        "num_params": int(n_params),
        "num_param_tensors": len(params),
        "sources": info,
        "input_files": input_files(case),
        "versions": versions(),
        "float": "float32 (global_config.bfloat16=False, prev kept float32 between recycles)",
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    final = out_root / name
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    log.info("%s: wrote %s in %.1f s", name, final, time.time() - t0)
    return final


def input_files(case: dict) -> list[str]:
    return sorted({case["msa"]} | ({case["template"][0]} if case["template"] else set()))


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("alphafold-colabfold", "jax", "jaxlib", "dm-haiku", "numpy",
                                    "ml-collections", "biopython")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", choices=sorted(CASES))
    parser.add_argument("--out", type=Path, help="fixture root; the case goes to OUT/CASE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list-inputs", action="store_true",
                        help="print the input files of the cases (under tests/reference/inputs) and exit")
    args = parser.parse_args(argv)
    if args.list_inputs:
        print("\n".join(sorted({f for name in args.cases for f in input_files(CASES[name])})))
        return 0
    if args.out is None:
        parser.error("--out is required")
    logging.basicConfig(level=logging.INFO, format="[reference] %(message)s", stream=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases:
        run_case(name, args.out.resolve(), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

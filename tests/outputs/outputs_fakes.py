"""Model-output dicts built from real structures, for output-writer tests before and beside the real model.

Atom positions and masks are parsed from real PDB entries (files/README.md); the confidence logits are
random but seeded, so pLDDT, PAE and pTM differ between the fake "models" in known directions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from alphafold.outputs.structure import read_structure

FILES = Path(__file__).parent / "files"


def fake_prediction(
    structure_path: Path, preset: str, seed: int, confidence_shift: float = 0.0, untrained: bool = False
) -> dict[str, np.ndarray]:
    """A model-output dict (docs/contracts.md names) whose structure is the real one in ``structure_path``.

    ``confidence_shift`` moves the pLDDT logits towards high bins (positive) or low bins (negative) and the
    PAE logits towards low errors, so models can be ordered on purpose.
    """
    chain = read_structure(structure_path)
    rng = np.random.default_rng(seed)
    num_res = chain.num_res
    plddt_logits = rng.normal(size=(num_res, 50)) + confidence_shift * np.linspace(-1, 1, 50)
    outputs = {
        "structure_module/final_atom_positions": chain.atom_positions.astype(np.float32),
        "structure_module/final_atom_mask": chain.atom_mask.astype(np.float32),
        "aatype": chain.aatype.astype(np.int32),
        "residue_index": np.arange(num_res, dtype=np.int32),
        "predicted_lddt/logits": plddt_logits.astype(np.float32),
        "meta/preset": np.array(preset.encode()),
        "meta/params_sha256": np.array(b"0" * 64),
        "meta/num_recycles_run": np.array(3),
        "meta/untrained": np.array(untrained),
        "meta/timings/predict": np.array(1.5 + seed),
    }
    if preset.endswith("_ptm"):
        pae_logits = rng.normal(size=(num_res, num_res, 64)) - confidence_shift * np.linspace(-1, 1, 64)
        outputs["predicted_aligned_error/logits"] = pae_logits.astype(np.float32)
    return outputs


def run_alphafold(*args) -> subprocess.CompletedProcess:
    """``python -m alphafold ARGS`` for module-scoped fixtures (the `cli` fixture is function-scoped)."""
    proc = subprocess.run(
        [sys.executable, "-m", "alphafold", *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise AssertionError(f"alphafold {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc

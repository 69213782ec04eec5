"""Targets of a batch: processed-feature files in a directory, sized without loading them.

A batch directory holds one processed-feature file per target, ``FEATURES_DIR/<target>.npz`` (the
``alphafold process-features`` layout, docs/contracts.md); the target's outputs go to ``OUT/<target>.npz``.
Routing needs only each target's sizes, so they are read from the ``.npy`` headers inside the archive:
N_res and the recycle slices R+1 from ``aatype`` [R+1, N_res], N_seq from ``msa_feat``
[R+1, N_seq, N_res, 49], N_extra from ``extra_msa`` [R+1, N_extra, N_res], the templates T from
``template_aatype`` [R+1, T, N_res].
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from alphafold.errors import UserError
from alphafold.parallel.cost import TargetShape
from alphafold.runtime.driver import Target


def npz_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Shape of every array in an .npz, read from the headers only (no array data, no pickle)."""
    shapes = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                with archive.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, _ = read_header(fh)
                shapes[name[: -len(".npy")]] = tuple(shape)
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise UserError(str(path), f"not a readable .npz archive ({err})") from err
    return shapes


def target_from_file(features_path: Path, output_dir: Path) -> Target:
    """A :class:`Target` for one processed-feature file, sized from its headers."""
    shapes = npz_shapes(features_path)
    if len(shapes.get("aatype", ())) != 2 or len(shapes.get("msa_feat", ())) != 4:
        raise UserError(str(features_path), "needs aatype [R, N_res] and msa_feat [R, N_seq, N_res, 49]: "
                                            "not processed features")
    n_slices, n_res = shapes["aatype"]
    if n_slices < 1 or n_res < 1:
        raise UserError(str(features_path),
                        f"aatype has shape {shapes['aatype']}: no recycle slice or no residue")
    n_seq = shapes["msa_feat"][1]
    n_extra = shapes["extra_msa"][1] if len(shapes.get("extra_msa", ())) == 3 else 0
    n_templ = shapes["template_aatype"][1] if len(shapes.get("template_aatype", ())) == 3 else 0
    name = features_path.stem
    return Target(name, str(features_path), str(output_dir / f"{name}.npz"), n_res, n_seq, n_extra,
                  n_templ, n_slices)


def target_shape(target: Target) -> TargetShape:
    """The sizes the memory model routes ``target`` by (every recycle slice the file carries is held as
    input, whatever --num-recycle runs)."""
    return TargetShape(target.n_res, target.n_seq, target.n_extra, target.n_templ, target.n_slices)


def discover_targets(features_dir: str | Path, output_dir: str | Path) -> list[Target]:
    """Every ``*.npz`` directly under ``features_dir`` as a target, in name order."""
    features_dir, output_dir = Path(features_dir), Path(output_dir)
    if not features_dir.is_dir():
        raise UserError(str(features_dir), "is not a directory of processed-feature files")
    files = sorted(p for p in features_dir.glob("*.npz") if not p.name.startswith("."))
    if not files:
        raise UserError(str(features_dir), "contains no processed-feature files (*.npz)")
    return [target_from_file(p, output_dir) for p in files]

"""ModelCIF (mmCIF with the ModelCIF extension) for one predicted chain, written with python-modelcif.

The file carries the coordinates with pLDDT in ``B_iso_or_equiv``, a global pLDDT (and pTM for `_ptm`
models) and a per-residue pLDDT in ``ma_qa_metric_global`` / ``ma_qa_metric_local``, and the provenance:
the software (this package, with its version), the params file (preset and SHA-256), the number of recycles
run and whether the params were untrained (random weights), in ``ma_protocol_step`` and the title.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import ihm
import modelcif
import modelcif.dumper
import modelcif.model
import modelcif.protocol
import modelcif.qa_metric
import numpy as np

from alphafold import __version__
from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import Chain


class _GlobalPLDDT(modelcif.qa_metric.Global, modelcif.qa_metric.PLDDT):
    """Predicted lDDT-Cα averaged over all residues."""

    name = "pLDDT"
    software = None


class _GlobalPTM(modelcif.qa_metric.Global, modelcif.qa_metric.PTM):
    """Predicted TM-score."""

    name = "pTM"
    software = None


class _LocalPLDDT(modelcif.qa_metric.Local, modelcif.qa_metric.PLDDT):
    """Predicted lDDT-Cα of one residue."""

    name = "pLDDT"
    software = None


class _PredictedModel(modelcif.model.AbInitioModel):
    """Atoms taken from a :class:`Chain` on the fly."""

    def __init__(self, chain: Chain, asym, **kwargs):
        super().__init__(**kwargs)
        self._chain = chain
        self._asym = asym

    def get_atoms(self):
        c = self._chain
        for i in range(c.num_res):
            for a, name in enumerate(rc.atom_types):
                if c.atom_mask[i, a] < 0.5:
                    continue
                x, y, z = (float(v) for v in c.atom_positions[i, a])
                yield modelcif.model.Atom(
                    asym_unit=self._asym,
                    seq_id=i + 1,
                    atom_id=name,
                    type_symbol=name[0],
                    x=x,
                    y=y,
                    z=z,
                    het=False,
                    biso=float(c.b_factors[i, a]),
                    occupancy=1.0,
                )


def to_modelcif(chain: Chain, name: str, plddt: np.ndarray, metadata: Mapping[str, object]) -> str:
    """ModelCIF text for ``chain``.

    metadata: ``preset`` (str), ``params_sha256`` (str), ``num_recycles_run`` (int or None), ``untrained``
    (bool), optional ``ptm`` (float) and ``relaxed`` (bool).
    """
    untrained = bool(metadata.get("untrained", False))
    title = f"alphafold-hpc prediction {name}" + (" (UNTRAINED random-weight params)" if untrained else "")
    system = modelcif.System(title=title, id=name.upper().replace(" ", "_")[:40])
    software = modelcif.Software(
        name="alphafold-hpc",
        classification="model building",
        description="AlphaFold2 (Jumper et al. 2021) in PyTorch for HPC",
        location="",
        type="package",
        version=__version__,
    )
    system.software.append(software)
    alphabet = ihm.LPeptideAlphabet()
    entity = modelcif.Entity(
        [alphabet["UNK" if r == "X" else r] for r in chain.sequence], description=f"{name} chain"
    )
    asym = modelcif.AsymUnit(
        entity,
        details=f"Model {name} chain A",
        id=chain.chain_id,
        auth_seq_id_map={i + 1: int(n) for i, n in enumerate(chain.residue_number)},
    )
    assembly = modelcif.Assembly([asym], name="modelled assembly")
    params_note = (
        f"params preset {metadata.get('preset', '?')}, sha256 {metadata.get('params_sha256', '?')}, "
        f"recycles run {metadata.get('num_recycles_run', '?')}"
        + ("; UNTRAINED random-weight params" if untrained else "")
        + ("; Amber-relaxed" if metadata.get("relaxed") else "")
    )
    model = _PredictedModel(chain, asym, assembly=assembly, name=name)
    model.qa_metrics.append(_GlobalPLDDT(float(np.mean(plddt))))
    if metadata.get("ptm") is not None:
        model.qa_metrics.append(_GlobalPTM(float(metadata["ptm"])))
    for i, score in enumerate(plddt):
        model.qa_metrics.append(_LocalPLDDT(asym.residue(i + 1), float(score)))
    group = modelcif.model.ModelGroup([model], name=name)
    system.model_groups.append(group)
    target = modelcif.data.DataGroup([entity])
    step = modelcif.protocol.ModelingStep(
        input_data=target, output_data=group, name="prediction", details=params_note, software=software
    )
    protocol = modelcif.protocol.Protocol()
    protocol.steps.append(step)
    system.protocols.append(protocol)
    handle = io.StringIO()
    modelcif.dumper.write(handle, [system])
    return handle.getvalue()

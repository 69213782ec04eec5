"""Real PDB/mmCIF files read into atom37; PDB and ModelCIF written that gemmi and Biopython read back."""

from __future__ import annotations

import io

import gemmi
import modelcif.reader
import numpy as np
import pytest
from Bio.PDB import MMCIFParser, PDBParser
from outputs_fakes import FILES, fake_prediction

from alphafold.errors import UserError
from alphafold.outputs.confidence import model_confidence
from alphafold.outputs.modelcif_writer import to_modelcif
from alphafold.outputs.structure import from_prediction, read_structure, to_pdb


@pytest.mark.parametrize(
    "name,length,start",
    [("1ubi.pdb", 76, "MQIFVKTLTG"), ("5PTI.cif.gz", 58, "RPDFCLEPPY"), ("5eep.pdb.gz", 140, None)],
)
def test_reads_real_entries(name, length, start):
    chain = read_structure(FILES / name)
    assert chain.num_res == length
    if start:
        assert chain.sequence.startswith(start)
    # Every residue has its backbone; waters and ligands are not residues.
    assert chain.atom_mask[:, :3].all()
    assert "X" not in chain.sequence


def test_missing_or_empty_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_structure(tmp_path / "absent.pdb")
    (tmp_path / "water.pdb").write_text(
        "HETATM    1  O   HOH A   1       1.000   2.000   3.000  1.00 10.00           O\nEND\n"
    )
    with pytest.raises(UserError, match="no protein chain"):
        read_structure(tmp_path / "water.pdb")


@pytest.fixture(scope="module")
def prediction():
    return fake_prediction(FILES / "1ubi.pdb", "model_1_ptm", seed=3, untrained=True)


def test_pdb_round_trip_with_plddt_in_b_factors(prediction, tmp_path):
    chain = from_prediction(prediction)
    plddt = model_confidence(prediction)["plddt"]
    text = to_pdb(chain, ["UNTRAINED test"])
    assert all(len(line) == 80 for line in text.splitlines())
    path = tmp_path / "m.pdb"
    path.write_text(text)
    back = read_structure(path)
    np.testing.assert_allclose(
        back.atom_positions, prediction["structure_module/final_atom_positions"], atol=6e-4
    )
    np.testing.assert_array_equal(back.atom_mask, prediction["structure_module/final_atom_mask"])
    np.testing.assert_array_equal(back.residue_number, np.arange(1, 77))
    # every atom of residue i carries residue i's pLDDT (2 decimals in the PDB column)
    present = back.atom_mask > 0
    np.testing.assert_allclose(
        back.b_factors[present], np.broadcast_to(plddt[:, None], present.shape)[present], atol=5e-3
    )
    bio = PDBParser(QUIET=True).get_structure("m", io.StringIO(text))
    atoms = list(bio.get_atoms())
    assert len(atoms) == int(present.sum())
    assert atoms[1].get_id() == "CA" and atoms[1].bfactor == pytest.approx(plddt[0], abs=5e-3)
    assert "UNTRAINED test" in text.splitlines()[0]


def test_modelcif_has_plddt_scores_and_provenance(prediction, tmp_path):
    chain = from_prediction(prediction)
    conf = model_confidence(prediction)
    text = to_modelcif(
        chain,
        "model_1_ptm",
        conf["plddt"],
        {
            "preset": "model_1_ptm",
            "params_sha256": "f" * 64,
            "num_recycles_run": 3,
            "untrained": True,
            "ptm": conf["ptm"],
        },
    )
    path = tmp_path / "m.cif"
    path.write_text(text)
    block = gemmi.cif.read(str(path)).sole_block()
    local = block.find("_ma_qa_metric_local.", ["label_seq_id", "metric_value"])
    assert len(local) == chain.num_res
    np.testing.assert_allclose([float(r[1]) for r in local], conf["plddt"], atol=1e-3)
    metric_names = {row[0]: row[1] for row in block.find("_ma_qa_metric.", ["id", "name"])}
    global_values = {
        metric_names[row[0]]: float(row[1])
        for row in block.find("_ma_qa_metric_global.", ["metric_id", "metric_value"])
    }
    assert global_values["pLDDT"] == pytest.approx(conf["mean_plddt"], abs=1e-3)
    assert global_values["pTM"] == pytest.approx(conf["ptm"], abs=1e-3)
    details = " ".join(block.find_values("_ma_protocol_step.details"))
    assert "f" * 64 in details and "UNTRAINED" in details
    assert "alphafold-hpc" in block.find_value("_software.name")
    structure = gemmi.read_structure(str(path))
    assert structure[0].count_atom_sites() == int(chain.atom_mask.sum())
    ca = structure[0][0][0]["CA"][0]
    assert ca.b_iso == pytest.approx(conf["plddt"][0], abs=1e-2)
    # python-modelcif reads it back as ModelCIF: one model with the global and per-residue scores
    with open(path) as fh:
        (system,) = modelcif.reader.read(fh)
    (model,) = [m for group in system.model_groups for m in group]
    assert len(model.qa_metrics) == chain.num_res + 2
    bio = MMCIFParser(QUIET=True).get_structure("m", str(path))
    bio_atoms = list(bio.get_atoms())
    assert len(bio_atoms) == int(chain.atom_mask.sum())
    np.testing.assert_allclose(bio_atoms[0].coord, chain.atom_positions[0, 0], atol=1e-3)

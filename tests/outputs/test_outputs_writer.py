"""`alphafold write-outputs` and `alphafold report` on model outputs built from real structures."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from outputs_fakes import FILES, fake_prediction, run_alphafold

from alphafold.io_utils import save_npz_atomic
from alphafold.outputs.structure import read_structure

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Two targets by the CLI: 1UBI with two `_ptm` models (model 2 more confident), 5PTI untrained."""
    root = tmp_path_factory.mktemp("campaign")
    npz = root / "npz"
    ubi = {
        name: fake_prediction(FILES / "1ubi.pdb", name, seed=i, confidence_shift=shift)
        for i, (name, shift) in enumerate((("model_1_ptm", -2.0), ("model_2_ptm", 2.0)))
    }
    for name, outputs in ubi.items():
        save_npz_atomic(npz / f"ubi_{name}.npz", outputs)
    rng = np.random.default_rng(0)
    msa = rng.integers(0, 22, size=(23, 76))
    msa[0] = read_structure(FILES / "1ubi.pdb").aatype
    save_npz_atomic(npz / "ubi_features.npz", {"msa": msa.astype(np.int32)})
    pti = fake_prediction(FILES / "5PTI.cif.gz", "model_3", seed=7, untrained=True)
    save_npz_atomic(npz / "pti_model_3.npz", pti)
    return root, ubi, pti


def _write(cli, root, target, *npz, features=None):
    args = ["write-outputs", "--prediction", *npz, "--output-dir", root / "targets" / target]
    if features:
        args += ["--features", features]
    return cli(*args)


@pytest.fixture(scope="module")
def written(campaign):
    root, ubi, pti = campaign
    _write(
        run_alphafold,
        root,
        "ubiquitin",
        root / "npz/ubi_model_1_ptm.npz",
        root / "npz/ubi_model_2_ptm.npz",
        features=root / "npz/ubi_features.npz",
    )
    _write(run_alphafold, root, "bpti", root / "npz/pti_model_3.npz")
    return root, ubi, pti


def test_per_model_and_per_target_files(written):
    root, ubi, _ = written
    out = root / "targets" / "ubiquitin"
    for name in ubi:
        for pattern in (
            "unrelaxed_{}.pdb",
            "unrelaxed_{}.cif",
            "scores_{}.json",
            "pae_{}.json",
            "confidence_{}.json",
        ):
            assert (out / pattern.format(name)).is_file(), pattern.format(name)
    assert not list(out.glob(".*tmp*")), "no temporary files left behind"
    ranking = json.loads((out / "ranking_debug.json").read_text())
    assert set(ranking) == {"ptm", "order"}
    assert ranking["order"] == ["model_2_ptm", "model_1_ptm"]
    assert ranking["ptm"]["model_2_ptm"] > ranking["ptm"]["model_1_ptm"]
    # ranked_0 is the best model's structure, file for file
    assert (out / "ranked_0.pdb").read_text() == (out / "unrelaxed_model_2_ptm.pdb").read_text()
    assert (out / "ranked_1.cif").read_text() == (out / "unrelaxed_model_1_ptm.cif").read_text()
    scores = json.loads((out / "scores_model_2_ptm.json").read_text())
    assert scores["ranking_confidence"] == pytest.approx(ranking["ptm"]["model_2_ptm"])
    assert scores["num_recycles_run"] == 3 and scores["rank"] == 0 and scores["untrained"] is False
    assert scores["timings"]["predict"] == pytest.approx(2.5) and scores["timings"]["write_outputs"] > 0
    pae = json.loads((out / "pae_model_2_ptm.json").read_text())
    assert pae[0]["max_predicted_aligned_error"] == 31.75
    assert np.array(pae[0]["predicted_aligned_error"]).shape == (76, 76)
    conf = json.loads((out / "confidence_model_2_ptm.json").read_text())
    assert np.mean(conf["confidenceScore"]) == pytest.approx(scores["mean_plddt"], abs=0.01)
    structure = read_structure(out / "ranked_0.pdb")
    np.testing.assert_allclose(
        structure.atom_positions, ubi["model_2_ptm"]["structure_module/final_atom_positions"], atol=6e-4
    )


def test_plain_models_rank_by_plddt_and_untrained_is_labelled(written):
    root, _, _ = written
    out = root / "targets" / "bpti"
    ranking = json.loads((out / "ranking_debug.json").read_text())
    assert set(ranking) == {"plddts", "order"} and ranking["order"] == ["model_3"]
    assert not (out / "pae_model_3.json").exists() and not (out / "pae.png").exists()
    assert "UNTRAINED" in (out / "ranked_0.pdb").read_text()
    assert "UNTRAINED" in (out / "ranked_0.cif").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["untrained"] is True and summary["length"] == 58


def _nonblank_png(path: Path) -> bool:
    image = matplotlib.image.imread(path)
    return image.ndim == 3 and float(image[..., :3].std()) > 0.02


def test_plots_are_real_images(written):
    root, _, _ = written
    out = root / "targets" / "ubiquitin"
    for name in ("plddt.png", "pae.png", "msa_coverage.png"):
        assert _nonblank_png(out / name), name


def test_bad_prediction_file_is_a_one_line_error(cli, tmp_path):
    bad = tmp_path / "bad.npz"
    save_npz_atomic(bad, {"x": np.zeros(3)})
    proc = cli("write-outputs", "--prediction", bad, "--output-dir", tmp_path / "o", check=False)
    assert proc.returncode == 2
    assert "bad.npz" in proc.stderr and "not a model-output file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def _chromium(*args, profile: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is installed by scripts/system-deps.sh")
def test_campaign_page_renders_in_headless_chromium(written, cli, tmp_path):
    root, _, _ = written
    page = root / "report" / "index.html"
    proc = cli("report", root / "targets", "--output", page)
    assert "2 target(s)" in proc.stdout
    text = page.read_text()
    links = _Links()
    links.feed(text)
    assert links.hrefs, "the page links to plots and models"
    for href in links.hrefs:
        assert (page.parent / href).resolve().is_file(), href
    assert any(h.endswith("ubiquitin/pae.png") for h in links.hrefs)
    dom = _chromium("--dump-dom", page.resolve().as_uri(), profile=tmp_path / "profile").stdout
    assert dom.count('<tr class="target') == 2
    assert "ubiquitin" in dom and "bpti" in dom and "untrained" in dom
    shot = tmp_path / "page.png"
    _chromium(
        f"--screenshot={shot}", "--window-size=1000,500", page.resolve().as_uri(), profile=tmp_path / "p2"
    )
    assert _nonblank_png(shot)

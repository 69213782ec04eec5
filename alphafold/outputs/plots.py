"""Per-target PNG plots: pLDDT per residue, PAE heat maps, MSA coverage (matplotlib, Agg, no display).

Colours follow the AlphaFold DB conventions: pLDDT bands very high (>90) / confident (70-90) / low (50-70)
/ very low (<50); PAE as a green scale from 0 Å (dark) to the maximum error (white).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from alphafold.io_utils import atomic_path  # noqa: E402

GAP_ID = 21  # gap in the HHblits letter ids used by raw and processed `msa`
_BANDS = ((90, 100, "#0053d6"), (70, 90, "#65cbf3"), (50, 70, "#ffdb13"), (0, 50, "#ff7d45"))


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_plddt(plddts: Mapping[str, np.ndarray], path: str | os.PathLike, title: str = "") -> None:
    """One line per model over the AFDB confidence bands."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    length = max(len(v) for v in plddts.values())
    for lo, hi, colour in _BANDS:
        ax.axhspan(lo, hi, color=colour, alpha=0.15, lw=0)
    for name, values in plddts.items():
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.2, label=f"{name} ({np.mean(values):.1f})")
    ax.set(
        xlim=(1, max(length, 2)),
        ylim=(0, 100),
        xlabel="residue",
        ylabel="pLDDT",
        title=title or "predicted lDDT per residue",
    )
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    _save(fig, path)


def plot_pae(paes: Mapping[str, tuple[np.ndarray, float]], path: str | os.PathLike, title: str = "") -> None:
    """One heat map per model (scored residue on x, aligned residue on y), shared colour scale."""
    names = list(paes)
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.6 * len(names) + 1.2, 3.8), squeeze=False, layout="constrained"
    )
    vmax = max(m for _, m in paes.values())
    image = None
    for ax, name in zip(axes[0], names):
        pae, _ = paes[name]
        image = ax.imshow(pae, cmap="Greens_r", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set(title=name, xlabel="scored residue", ylabel="aligned residue")
    fig.colorbar(image, ax=axes[0].tolist(), label="expected position error (Å)", shrink=0.85)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


def msa_identity_rows(msa: np.ndarray, max_rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """[N, L] letter ids → ([n, L] identity to query where aligned else NaN, best first; [L] depth).

    Depth counts every sequence; the rows drawn are at most ``max_rows``, evenly spaced in identity order,
    so a deep MSA plots in bounded memory with the same picture.
    """
    aligned = msa != GAP_ID
    identity = ((msa == msa[0]) & aligned).sum(1) / np.maximum(aligned.sum(1), 1)
    order = np.argsort(-identity, kind="stable")
    if len(order) > max_rows:
        order = order[np.linspace(0, len(order) - 1, max_rows).round().astype(int)]
    rows = np.where(aligned[order], identity[order, None].astype(np.float32), np.float32(np.nan))
    return rows, aligned.sum(0)


def plot_msa_coverage(msa: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """ColabFold-style coverage: each sequence a row coloured by identity to the query, depth as a line."""
    rows, depth = msa_identity_rows(msa)
    fig, ax = plt.subplots(figsize=(8, 4))
    image = ax.imshow(
        rows,
        aspect="auto",
        cmap="rainbow_r",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(0.5, msa.shape[1] + 0.5, msa.shape[0], 0),
    )
    ax.plot(np.arange(1, msa.shape[1] + 1), depth, color="black", lw=1)
    ax.set(
        xlabel="residue",
        ylabel="sequences",
        ylim=(0, msa.shape[0]),
        title=title or f"MSA coverage ({msa.shape[0]} sequences)",
    )
    fig.colorbar(image, ax=ax, label="sequence identity to query")
    fig.tight_layout()
    _save(fig, path)

"""One small static HTML page per campaign: a table of targets, their scores, links to plots and models.

The page is built from the ``summary.json`` that :func:`alphafold.outputs.writer.write_target_outputs`
writes last in each target directory (so only complete targets are listed). Links are relative to the
page, so the campaign directory can be copied or served as it is. No scripts, no external resources.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path

from alphafold import __version__
from alphafold.errors import UserError
from alphafold.io_utils import write_text_atomic
from alphafold.outputs.writer import SUMMARY_NAME

logger = logging.getLogger(__name__)

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; }
th { background: #eef; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.untrained td { background: #fff3e0; }
.badge { color: #b00; font-weight: bold; }
.vh { color: #0053d6; } .cf { color: #1a8fc8; } .lo { color: #b08900; } .vl { color: #d9541e; }
"""


def find_summaries(campaign_dir: str | os.PathLike) -> list[tuple[Path, dict]]:
    """All target summaries under ``campaign_dir`` (any depth), sorted by target name."""
    root = Path(campaign_dir)
    if not root.is_dir():
        raise UserError(str(root), "campaign directory does not exist")
    found = []
    for path in sorted(root.rglob(SUMMARY_NAME)):
        try:
            summary = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise UserError(str(path), f"not valid JSON: {err}") from err
        if "target" not in summary or "best" not in summary:
            logger.warning("%s is not a target summary; skipped", path)
            continue
        found.append((path.parent, summary))
    return sorted(found, key=lambda item: item[1]["target"])


def _plddt_class(value: float) -> str:
    return "vh" if value > 90 else "cf" if value > 70 else "lo" if value > 50 else "vl"


def _link(page_dir: Path, target_dir: Path, name: str | None, label: str) -> str:
    if not name or not (target_dir / name).is_file():
        return ""
    href = os.path.relpath(target_dir / name, page_dir)
    return f'<a href="{html.escape(Path(href).as_posix())}">{html.escape(label)}</a>'


def render_report(
    campaign_dir: str | os.PathLike, page_path: str | os.PathLike, title: str | None = None
) -> str:
    """HTML text of the campaign page that will live at ``page_path``."""
    summaries = find_summaries(campaign_dir)
    page_dir = Path(page_path).resolve().parent
    title = title or f"alphafold-hpc campaign {Path(campaign_dir).resolve().name}"
    any_untrained = any(s.get("untrained") for _, s in summaries)
    rows = []
    for target_dir, s in summaries:
        best, files = s["best"], s.get("files", {})
        ptm = best.get("ptm")
        links = " ".join(
            x
            for x in (
                _link(page_dir, target_dir.resolve(), files.get("plddt_png"), "pLDDT"),
                _link(page_dir, target_dir.resolve(), files.get("pae_png"), "PAE"),
                _link(page_dir, target_dir.resolve(), files.get("msa_coverage_png"), "MSA"),
                _link(page_dir, target_dir.resolve(), files.get("ranked_0_pdb"), "PDB"),
                _link(page_dir, target_dir.resolve(), files.get("ranked_0_cif"), "mmCIF"),
            )
            if x
        )
        flag = ' <span class="badge">untrained</span>' if s.get("untrained") else ""
        rows.append(
            f'<tr class="target{" untrained" if s.get("untrained") else ""}">'
            f'<td>{html.escape(s["target"])}{flag}</td><td class="num">{int(s["length"])}</td>'
            f"<td>{html.escape(s['best_model'])}</td>"
            f'<td class="num {_plddt_class(best["mean_plddt"])}">{best["mean_plddt"]:.2f}</td>'
            f'<td class="num">{"" if ptm is None else f"{ptm:.3f}"}</td>'
            f'<td class="num">{best["ranking_confidence"]:.3f} ({html.escape(s["ranking_key"])})</td>'
            f"<td>{'yes' if s.get('relaxed') else 'no'}</td><td>{links}</td></tr>"
        )
    warning = (
        '<p class="badge">Some targets were predicted with UNTRAINED (random-weight) params: '
        "their structures and scores are meaningless.</p>"
        if any_untrained
        else ""
    )
    body = "\n".join(rows) if rows else '<tr><td colspan="8">no finished targets yet</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{len(summaries)} finished target(s). Best model per target by ranking confidence; pLDDT colours:
<span class="vh">&gt;90</span>, <span class="cf">70&ndash;90</span>, <span class="lo">50&ndash;70</span>,
<span class="vl">&lt;50</span>.</p>
{warning}
<table id="targets">
<thead><tr><th>target</th><th>length</th><th>best model</th><th>mean pLDDT</th><th>pTM</th>
<th>ranking confidence</th><th>relaxed</th><th>files</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
<p><small>alphafold-hpc {html.escape(__version__)}</small></p>
</body>
</html>
"""


def write_report(
    campaign_dir: str | os.PathLike, page_path: str | os.PathLike, title: str | None = None
) -> int:
    """Write the campaign page atomically; return the number of targets listed."""
    text = render_report(campaign_dir, page_path, title)
    write_text_atomic(page_path, text)
    count = text.count('<tr class="target')
    logger.info("campaign page with %d target(s) written to %s", count, page_path)
    return count

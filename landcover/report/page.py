"""summary.html, the validation in words and tables, and the writing of the report's files."""

from __future__ import annotations

import html
import json
from pathlib import Path

from matplotlib.figure import Figure

from landcover.atomic import atomic_path
from landcover.raster_io import save_png
from landcover.report.metrics import MIN_CLASS_PIXELS


def write_report(metrics: dict, figures: dict[str, Figure], outdir, dpi: int = 110) -> None:
    """metrics.json, summary.html and one `<name>.png` per figure in `outdir`."""
    outdir = Path(outdir)
    with atomic_path(outdir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    with atomic_path(outdir / "summary.html") as tmp:
        tmp.write_text(summary_html(metrics))
    for name, fig in figures.items():
        save_png(fig, outdir / f"{name}.png", dpi)


def _cell(value, ci=None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.{digits}f}"
    return text if ci is None else f"{text} &plusmn; {ci:,.{digits}f}"


def _scores(section: dict) -> str:
    return (
        f"overall accuracy <b>{section['overall_accuracy']:.3f}</b>, kappa {_cell(section['kappa'])}, "
        f"weighted F1 {section['f1_weighted']:.3f}, macro F1 {section['f1_macro']:.3f}"
    )


def headline_html(metrics: dict) -> list[str]:
    """The three figures of the map's accuracy, each saying on which pixels it stands."""
    parts = [
        (
            f"<p><b>The map</b>, on every labelled pixel of {len(metrics['test_tiles'])} test tile(s) "
            f"({metrics['test_pixels']:,} pixels; the map files against the rasterised reference, boundaries "
            f"included; {metrics['unmapped_pixels']:,} without a map class count as errors): {_scores(metrics)}.</p>"
        )
    ]
    sampled = metrics.get("sampled_interior")
    if sampled:
        parts.append(
            f"<p><b>Sampled eroded interior</b> ({sampled['test_pixels']:,} sampled test pixels away from class "
            f"boundaries, the pixels the model is trained on): {_scores(sampled)}.</p>"
        )
    truth = metrics.get("truth")
    if truth:
        parts.append(
            f"<p><b>Synthetic truth</b> (the area's true land cover, known because it is synthetic; "
            f"{truth['scored_pixels']:,} mapped pixels of the test tiles): overall accuracy "
            f"<b>{truth['overall_accuracy']:.3f}</b>, weighted F1 {truth['f1_weighted']:.3f}; on the interior "
            f"{truth['interior']['overall_accuracy']:.3f}.</p>"
        )
    return parts


def reference_check_html(check: dict) -> list[str]:
    esc = html.escape
    settings = check["settings"]
    parts = [
        "<h2>Reference check: the polygons the map contradicts</h2>",
        (
            f"<p>{check['flagged']:,} of {check['polygons']:,} reference polygons of the tiles are flagged: at least "
            f"{100 * settings['flag_share']:.0f} % of their mapped pixels (and {settings['min_pixels']} or more) are "
            f"mapped as another class with a confidence of {settings['high_confidence']} % or more "
            "(<code>reference_check.gpkg</code>, ranked, with a QGIS style; a layer of <code>map.html</code>). "
            f"{esc(check['note'])}</p>"
        ),
    ]
    found = check.get("detection")
    if found:
        parts.append(
            f"<p>The synthetic register misfiled {found['misfiled']:,} of these polygons: {found['flagged_and_misfiled']:,}"
            f" of the {found['flagged']:,} flagged are among them (precision {_cell(found['precision'])}, recall "
            f"{_cell(found['recall'])}).</p>"
        )
    header = "<tr><th>rank</th><th>polygon</th><th>reference class</th><th>mapped pixels</th>"
    header += "<th>confidently other</th><th>the map prefers</th><th>its confidence</th><th>flagged</th></tr>"
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{esc(str(r['source']))}:{r['source_fid']}</td><td>{esc(str(r['class_name']))}</td>"
        f"<td>{r['pixels']:,}</td><td>{100 * r['other_share']:.0f} %</td><td>{esc(str(r['map_class_name']))}</td>"
        f"<td>{r['map_confidence']:.0f} %</td><td>{'yes' if r['flagged'] else 'no'}</td></tr>"
        for r in check["worst"]
    )
    parts.append(f"<table>{header}{rows}</table>")
    return parts


def summary_html(metrics: dict) -> str:
    """The validation report in words and tables: what the figures cannot say (caveats, intervals, data loss)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Validation summary</title>",
        (
            "<style>body{font-family:sans-serif;max-width:60em}td,th{padding:2px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}.caveat{color:#a00}</style></head><body>"
        ),
        "<h1>Validation summary</h1>",
        *headline_html(metrics),
    ]
    found = metrics.get("caveats") or []
    parts.append("<h2>What the test tiles cannot carry</h2>")
    parts.append(
        "<ul>" + "".join(f"<li class='caveat'>{esc(c)}</li>" for c in found) + "</ul>"
        if found
        else f"<p>Nothing: every class has at least {MIN_CLASS_PIXELS} test pixels, on more than one test tile.</p>"
    )
    estimate = metrics.get("area_estimate")
    if estimate:
        parts += [
            "<h2>Area estimates and accuracy, 95 % confidence intervals</h2>",
            (
                f"<p>{esc(estimate['method'])}; sample: {esc(estimate['sample'])} ({estimate['sample_pixels']:,} "
                f"pixels). Overall accuracy {_cell(estimate['overall_accuracy'], estimate['overall_accuracy_ci95'])}"
                f" over {100 * estimate['assessed_share']:.1f} % of the mapped area "
                f"({estimate['mapped_area_ha']:,.0f} ha).</p>"
            ),
            (
                "<table><tr><th>class</th><th>mapped (ha)</th><th>estimated (ha)</th><th>user's accuracy</th>"
                "<th>producer's accuracy</th><th>test pixels mapped as</th><th>referenced as</th></tr>"
            ),
        ]
        for c in estimate["classes"]:
            parts.append(
                f"<tr><td>{esc(c['name'])}</td><td>{c['mapped_area_ha']:,.1f}</td>"
                f"<td>{_cell(c['estimated_area_ha'], c['estimated_area_ci95_ha'], 1)}</td>"
                f"<td>{_cell(c['users_accuracy'], c['users_accuracy_ci95'])}</td>"
                f"<td>{_cell(c['producers_accuracy'], c['producers_accuracy_ci95'])}</td>"
                f"<td>{c['test_pixels_mapped_as']:,}</td><td>{c['test_pixels_referenced_as']:,}</td></tr>"
            )
        parts.append("</table><ul>" + "".join(f"<li>{esc(n)}</li>" for n in estimate["notes"]) + "</ul>")
    if metrics.get("reference_check"):
        parts += reference_check_html(metrics["reference_check"])
    frames = metrics.get("frames")
    parts.append("<h2>Frames dropped</h2>")
    if frames is None:
        parts.append("<p>Not recorded: this run's features rule writes no frame records.</p>")
    else:
        rows = "".join(f"<tr><td>{esc(r)}</td><td>{n:,}</td></tr>" for r, n in frames["dropped"].items())
        parts.append(
            f"<p>{frames['kept']:,} frames kept over {len(frames['tiles'])} tiles.</p>"
            f"<table><tr><th>reason</th><th>frames dropped</th></tr>{rows or '<tr><td>none</td><td>0</td></tr>'}"
            "</table>"
        )
    soft = metrics.get("software")
    if soft:
        lock = soft["lock_file_sha256"] or "absent"
        parts.append(
            f"<h2>Software</h2><p>LightGBM {esc(str(soft['lightgbm']))}; {esc(soft['lock_file'])} sha256 "
            f"<code>{esc(lock)}</code></p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

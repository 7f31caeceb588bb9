"""The indicators as a small report: JSON, a PNG with the figures and their monthly breakdown, an HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

LABELS = {
    "participants_in_data_environment": "Participants in the data environment",
    "permanent_participants": "Permanent participants (trace updated 2+ times)",
    "teams_participated_or_delivered": "Teams that took part or delivered a project",
    "teams_delivered_project": "Teams that delivered a project",
    "events_100_plus": "Events with 100+ participants",
    "events_1000_plus": "Events with 1,000+ participants",
    "prize_winners_with_benefits": "Prize-winners with admission benefits",
    "mentors_active_2plus_events": "Mentors active in 2+ events",
    "tech_leaders_among_active_mentors": "...of them technology leaders",
}


def write_report(result: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write indicators.json, indicators.png and indicators.html into `out_dir`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    values = result["indicators"]
    json_path = out_dir / "indicators.json"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    names = [n for n in LABELS if n in values]
    numbers = [float(values[n] or 0) for n in names]
    left.barh([LABELS[n] for n in names][::-1], numbers[::-1], color="#3b6ea5")
    for y, v in enumerate(numbers[::-1]):
        left.text(v, y, f" {int(v):,}", va="center", fontsize=8)
    left.set_xscale("symlog")
    left.set_title(f"Roadmap indicators, {result['year']}")
    months = result["breakdown"]["monthly_active_participants"]
    right.bar(range(1, 13), months, color="#7aa974")
    right.set_xticks(range(1, 13))
    right.set_title("Participants with a trace update, by month")
    right.set_xlabel("month")
    fig.tight_layout()
    png_path = out_dir / "indicators.png"
    fig.savefig(png_path, dpi=110)
    plt.close(fig)

    share = values.get("tech_leader_share")
    rows = "".join(
        f"<tr><td>{html.escape(LABELS.get(name, name))}</td><td>{value if value is not None else '—'}</td></tr>"
        for name, value in values.items() if name != "tech_leader_share"
    )
    image = base64.b64encode(png_path.read_bytes()).decode("ascii")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Roadmap indicators "
        f"{result['year']}</title></head><body style='font-family:sans-serif'>"
        f"<h1>Roadmap indicators, {result['year']}</h1><table border='1' cellpadding='4'>{rows}"
        f"<tr><td>Share of technology leaders among active mentors</td><td>{share if share is not None else '—'}"
        f"</td></tr></table><p><img alt='indicators' src='data:image/png;base64,{image}'></p>"
        f"<h2>Definitions</h2><pre>{html.escape(result.get('definitions', ''))}</pre></body></html>\n"
    )
    html_path = out_dir / "indicators.html"
    html_path.write_text(page, encoding="utf-8")
    return {"json": str(json_path), "png": str(png_path), "html": str(html_path)}

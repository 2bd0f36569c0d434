"""``report.html``: the replay's findings for people, in one self-contained file.

Sections: the verdict and summary figures, the checkpoint chain, the violations with their event ids, the
referral funnel by service type and by region (chart and table), the time from first offer to
acceptance, and what was read. Styles are inline, charts are SVG ``data:`` images (:mod:`.charts`);
nothing is fetched from anywhere and no script runs. Every value is HTML-escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from services.audit.replay import charts
from services.audit.replay.funnel import FunnelRow
from services.audit.replay.report import AuditReport, CheckpointRow, iso_time

MAX_CHAIN_ROWS = 200  # longer chains show every checkpoint with a problem and the newest ones

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;
  padding:0 1rem;color:#1b1f24;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.verdict{display:inline-block;padding:.35rem .8rem;border-radius:.4rem;font-weight:600;font-size:1.1rem}
.verdict.clean{background:#dafbe1;color:#116329}.verdict.bad{background:#ffebe9;color:#a40e26}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:.6rem;margin:1rem 0}
.figure{border:1px solid #d0d7de;border-radius:.4rem;padding:.5rem .7rem}
.figure .value{font-size:1.25rem;font-weight:600}.figure .label{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fff5f5}code,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem;
  word-break:break-all}.ok{color:#116329;font-weight:600}.problem{color:#a40e26;font-weight:600}
.muted{color:#57606a}img.chart{max-width:100%;height:auto;display:block;margin:.6rem 0}
"""


def render_html(report: AuditReport) -> str:
    """The whole report as one HTML document."""
    title = f"Audit replay of {report.network_id or 'the network'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _verdict(report),
        _summary(report),
        _chain(report.checkpoints),
        _violations(report),
        _funnel(report),
        _acceptance(report),
        _topics(report),
        _footer(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(report: AuditReport, path: Path) -> Path:
    """Write ``report.html`` and return its path."""
    path.write_text(render_html(report), encoding="utf-8")
    return path


def _verdict(report: AuditReport) -> str:
    if report.clean:
        text = "Clean: every check passed"
        return f'<p><span class="verdict clean">{escape(text)}</span></p>'
    count = len(report.violations)
    text = f"{count} violation{'s' if count != 1 else ''} found"
    return f'<p><span class="verdict bad">{escape(text)}</span></p>'


def _figure(value: object, label: str) -> str:
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    return f'<div class="figure"><div class="value">{escape(shown)}</div><div class="label">{escape(label)}</div></div>'


def _summary(report: AuditReport) -> str:
    figures = [
        _figure(report.records_read, "records read"),
        _figure(f"{report.records_per_second:,.0f} /s", f"replay rate ({report.read_seconds:.1f} s reading)"),
        _figure(len(report.checkpoints), "checkpoints checked"),
        _figure(report.checkpoints_ok, "checkpoints that hold"),
        _figure(report.tree_size, "tree size (leaves up to the newest checkpoint)"),
        _figure(report.pending, "pending records (in no checkpoint yet)"),
        _figure(report.duplicates, "duplicates (not leaves)"),
        _figure(report.rejected, "records that did not verify"),
        _figure(report.dead_letters, "dead letters"),
        _figure(report.events_checked, "events checked for compliance"),
        _figure(report.disclosures_total, "disclosures (offers and key releases)"),
        _figure(len(report.violations), "violations"),
    ]
    root = escape(report.root_hash or "(empty tree)")
    return ("<h2 id=\"summary\">Summary</h2>"
            f'<div class="figures">{"".join(figures)}</div>'
            f'<p>Root hash at size {report.tree_size:,}: <span class="hash">{root}</span></p>'
            f'<p class="muted">Origin <code>{escape(report.origin or "-")}</code>, read from Kafka at '
            f'<code>{escape(report.bootstrap)}</code>, started {escape(iso_time(report.started_at_us))}.</p>')


def _chain(rows: Sequence[CheckpointRow]) -> str:
    head = "<h2 id=\"chain\">Checkpoint chain</h2>"
    if not rows:
        return head + '<p class="muted">No checkpoint was read: every record is pending.</p>'
    shown, note = list(rows), ""
    if len(rows) > MAX_CHAIN_ROWS:
        newest = rows[-MAX_CHAIN_ROWS // 2:]
        shown = [row for row in rows[:-MAX_CHAIN_ROWS // 2] if not row.ok] + list(newest)
        note = (f'<p class="muted">{len(rows):,} checkpoints: shown are every one with a problem and the newest '
                f"{len(newest)}; report.json lists them all.</p>")
    lines = ["<table><thead><tr><th>checkpoint</th><th>tree size</th><th>issued at</th><th>previous size</th>"
             "<th>runs</th><th>leaves</th><th>duplicates</th><th>rejected</th><th>root hash</th><th>status</th>"
             "</tr></thead><tbody>"]
    for row in shown:
        status = ('<span class="ok">holds</span>' if row.ok else
                  '<span class="problem">' + "<br>".join(escape(problem) for problem in row.problems) + "</span>")
        lines.append(
            f'<tr class="{"" if row.ok else "bad"}"><td><code>{escape(row.where)}</code></td>'
            f'<td class="num">{row.tree_size:,}</td><td>{escape(iso_time(row.issued_at_us))}</td>'
            f'<td class="num">{row.previous_tree_size:,}</td><td class="num">{row.runs:,}</td>'
            f'<td class="num">{row.leaves:,}</td><td class="num">{row.duplicates:,}</td>'
            f'<td class="num">{row.rejected:,}</td><td class="hash">{escape(row.root_hash)}</td><td>{status}</td></tr>')
    lines.append("</tbody></table>")
    return head + note + "".join(lines)


def _violations(report: AuditReport) -> str:
    head = "<h2 id=\"violations\">Violations</h2>"
    if report.clean:
        return head + '<p class="ok">None.</p>'
    counts = ", ".join(f"{escape(check)}: {count}" for check, count in report.violations_by_check().items())
    lines = [f"<p>{counts}</p><table><thead><tr><th>check</th><th>what</th><th>events</th><th>subject</th></tr>"
             "</thead><tbody>"]
    for finding in report.violations:
        events = "<br>".join(f"<code>{escape(event_id)}</code>" for event_id in finding.event_ids) or "-"
        lines.append(f"<tr><td><code>{escape(finding.check)}</code></td><td>{escape(finding.detail)}</td>"
                     f"<td>{events}</td><td><code>{escape(finding.subject_id or '-')}</code></td></tr>")
    lines.append("</tbody></table>")
    return head + "".join(lines)


def _image(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f'<img class="chart" alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _funnel_table(rows: Iterable[FunnelRow], label: str) -> str:
    lines = [f"<table><thead><tr><th>{escape(label)}</th><th>needs offered</th><th>accepted</th><th>completed</th>"
             "<th>offers made</th></tr></thead><tbody>"]
    lines += [f"<tr><td>{escape(row.label.replace('_', ' '))}</td><td class=\"num\">{row.offered:,}</td>"
              f"<td class=\"num\">{row.accepted:,}</td><td class=\"num\">{row.completed:,}</td>"
              f"<td class=\"num\">{row.offers:,}</td></tr>" for row in rows]
    lines.append("</tbody></table>")
    return "".join(lines)


def _funnel(report: AuditReport) -> str:
    funnel = report.funnel
    head = ("<h2 id=\"funnel\">Referral funnel</h2><p class=\"muted\">A need is offered once any provider was "
            "offered it, accepted once a provider accepted it, completed once that service ended.</p>")
    if not funnel.by_service_type:
        return head + '<p class="muted">No offer was read.</p>'
    return (head
            + _image(charts.funnel_chart(funnel.by_service_type, "Needs by service type"),
                     "Needs offered, accepted and completed by service type")
            + _funnel_table(funnel.by_service_type, "service type")
            + _image(charts.funnel_chart(funnel.by_region, "Needs by region"),
                     "Needs offered, accepted and completed by region")
            + _funnel_table(funnel.by_region, "region"))


def _acceptance(report: AuditReport) -> str:
    summary = report.funnel.acceptance_summary()
    head = "<h2 id=\"acceptance\">Time from first offer to acceptance</h2>"
    if not summary.get("needs"):
        return head + '<p class="muted">No need was accepted.</p>'
    facts = (f"<p>{summary['needs']:,} accepted needs: median {_duration(float(summary['median_s']))}, "
             f"90th percentile {_duration(float(summary['p90_s']))}, longest {_duration(float(summary['max_s']))}.</p>")
    return (head + _image(charts.acceptance_histogram(report.funnel.acceptance_seconds),
                          "Distribution of the time from first offer to acceptance") + facts)


def _duration(seconds: float) -> str:
    unit, scale = charts.time_unit(seconds)
    return f"{seconds / scale:,.1f} {unit}"


def _topics(report: AuditReport) -> str:
    lines = ["<h2 id=\"read\">What was read</h2><table><thead><tr><th>topic</th><th>role</th><th>partitions</th>"
             "<th>records</th></tr></thead><tbody>"]
    lines += [f"<tr><td><code>{escape(row.topic)}</code></td><td>{escape(row.role)}</td>"
              f"<td class=\"num\">{row.partitions}</td><td class=\"num\">{row.records:,}</td></tr>"
              for row in report.topics]
    lines.append("</tbody></table>")
    pending = (f"<p>{report.pending:,} records are in no checkpoint yet ({report.pending_verified:,} verified, "
               f"{report.pending_rejected:,} did not): they are checked for compliance but not placed in the tree.</p>"
               if report.pending else "")
    return "".join(lines) + pending


def _footer(report: AuditReport) -> str:
    return ('<p class="muted">Every record was read from Kafka from offset 0 by this auditor alone (no consumer '
            "group, not audit's database), verified against the CA-signed directory, and replayed in the order "
            "the signed checkpoints give; report.json holds the same facts for tools. "
            f"Replay took {report.elapsed_seconds:.1f} s.</p>")

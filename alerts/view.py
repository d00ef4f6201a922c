"""A read-only view of the alerts: ``/alerts`` (JSON) and ``/alerts/<key>`` (HTML).

Served by the alerts service on its metrics port (:class:`stream.http.MetricsServer`
routes), so a Grafana panel can link from an active-alert row to the headlines
that drove it. The view reads alert transitions from a callable and keeps the
latest one per key; ``/alerts`` lists the open ones, ``/alerts/<key>`` (the key
percent-encoded, as Grafana's ``:percentencode`` writes it) shows one alert,
open or recently resolved, with its evidence. Every text is HTML-escaped, and
only ``http``/``https`` evidence links become links.

>>> import json
>>> from alerts.testing import sample_alert
>>> a = sample_alert(key="neg:ticker:ACME", series="ACME", series_kind="ticker")
>>> view = AlertView(lambda: [a.model_copy(update={"summary": "<b>Acme</b> misses"})])
>>> [a["key"] for a in json.loads(view.handle("/alerts").body)]
['neg:ticker:ACME']
>>> page = view.handle("/alerts/neg%3Aticker%3AACME")
>>> page.status, b"&lt;b&gt;Acme&lt;/b&gt; misses" in page.body, b"<b>Acme" in page.body
(200, True, False)
>>> view.handle("/alerts/nope").status
404
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from string import Template
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from stream.contracts.schemas import Alert, AlertEvidence
from stream.http import HttpResponse, Route

__all__ = ["AlertView", "evidence_html"]

_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>$title</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .75em;text-align:left;vertical-align:top}
th{color:#666;font-weight:normal}.neg{color:#b00}.pos{color:#070}.muted{color:#666}
li{margin:.4em 0}
</style></head><body>
<h1>$title</h1>
<p>$summary</p>
<table>$facts</table>
<h2>Evidence</h2>
$evidence
<p class="muted"><a href="../alerts">all open alerts (JSON)</a></p>
</body></html>
""")


def _latest(alerts: Iterable[Alert]) -> dict[str, Alert]:
    """The latest transition per key (later in the input wins on equal times)."""
    out: dict[str, Alert] = {}
    for a in alerts:
        seen = out.get(a.key)
        if seen is None or a.updated_at >= seen.updated_at:
            out[a.key] = a
    return out


def _link(url: str | None, text: str) -> str:
    """``text`` escaped, as a link only for http(s) URLs (never ``javascript:``)."""
    label = html.escape(text or "(untitled)")
    if url and urlsplit(url).scheme in ("http", "https"):
        return f'<a href="{html.escape(url, quote=True)}" rel="noreferrer noopener">{label}</a>'
    return label


def evidence_html(e: AlertEvidence) -> str:
    """One evidence headline as an escaped ``<li>`` (a link only for http(s) URLs)."""
    cls = {"negative": "neg", "positive": "pos"}.get(e.sentiment, "")
    return (
        f"<li>{_link(e.url, e.title)} "
        f'<span class="{cls}">{html.escape(e.sentiment)} {e.sentiment_score:+.2f}</span> '
        f'<span class="muted">{html.escape(e.source)}, '
        f"{e.published_at:%Y-%m-%d %H:%M} UTC</span></li>"
    )


def _summary(a: Alert) -> dict[str, Any]:
    return {
        **a.model_dump(mode="json", exclude={"evidence", "schema_version"}),
        "view": f"/alerts/{quote(a.key, safe='')}",
        "evidence": [e.model_dump(mode="json") for e in a.evidence],
    }


class AlertView:
    """Renders the alerts that ``alerts()`` returns (transitions, any order)."""

    def __init__(self, alerts: Callable[[], Iterable[Alert]]) -> None:
        self._alerts = alerts

    def routes(self) -> dict[str, Route]:
        """The routes to give :class:`~stream.http.MetricsServer`."""
        return {"/alerts": self.handle}

    def handle(self, path: str) -> HttpResponse:
        """Answer ``GET path`` (``/alerts`` or ``/alerts/<percent-encoded key>``)."""
        latest = _latest(self._alerts())
        rest = path.removeprefix("/alerts").strip("/")
        if not rest:
            open_ = sorted(
                (a for a in latest.values() if a.state != "resolved"),
                key=lambda a: (-a.score, a.key),
            )
            body = json.dumps([_summary(a) for a in open_], ensure_ascii=False, indent=1)
            return HttpResponse(200, body.encode(), _JSON)
        key = unquote(rest)
        found = latest.get(key)
        if found is None:
            body = f"no open or recent alert {html.escape(key)}\n"
            return HttpResponse(404, body.encode(), "text/plain; charset=utf-8")
        return HttpResponse(200, self.page(found).encode(), _HTML)

    @staticmethod
    def page(a: Alert) -> str:
        """The HTML page of one alert."""
        facts = [
            ("state", a.state),
            ("severity", a.severity),
            ("series", f"{a.series_kind} {a.series}"),
            ("score", f"{a.score:.2f}"),
            ("observed / baseline", f"{a.observed:g} / {a.baseline:g}"),
            ("window", f"{a.window_start.isoformat()} .. {a.window_end.isoformat()}"),
            ("started", a.started_at.isoformat()),
            ("updated", a.updated_at.isoformat()),
        ]
        if a.resolved_at is not None:
            facts.append(("resolved", a.resolved_at.isoformat()))
        facts += sorted(a.labels.items())
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts
        )
        items = "".join(evidence_html(e) for e in a.evidence)
        return _PAGE.substitute(
            title=html.escape(f"{a.rule} on {a.series}"),
            summary=html.escape(a.summary),
            facts=rows,
            evidence=f"<ol>{items}</ol>" if items else '<p class="muted">no evidence kept</p>',
        )

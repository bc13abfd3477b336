"""The return in brief as a one-page PDF (A4 portrait): who files it and for what month, the covered share now and
last month, the stations opened, closed and changed, the townships and the top gaps.

``lang="zh"`` prints Chinese only (the copy a union files); the default ``"zh-en"`` prints Chinese with English
beside, as every other page of the project does, so a reader without Chinese can check it too. Laid out with the
gap report's page (``reports.pdf.Page``); the text is embedded TrueType, searchable.
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import Any

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from yizhan.reports.drawing import drawing
from yizhan.reports.pdf import MARGIN, PAGE_H, PAGE_W, Page, scaled
from yizhan.reports.run_report import OSM_ATTRIBUTION
from yizhan.reports.summary import check_lang, say, zh_part
from yizhan.reports.workbook import local_naive
from yizhan.returns.snapshot import KIND_LABELS
from yizhan.returns.store import PENDING, MonthReturn

MAX_CHANGES = 16
MAX_TOWNSHIPS = 12
MAX_GAPS = 8
GREY = "#666666"




def _pct(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{float(x):.1%}"


def _pp(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{float(x) * 100:+.1f} pp" if abs(float(x)) >= 5e-4 else "0.0 pp"


def _cut(s: Any, n: int) -> str:
    t = "" if s is None or (isinstance(s, float) and math.isnan(s)) else str(s)
    return t if len(t) <= n else t[: n - 1] + "…"


def return_pdf(ret: MonthReturn, *, lang: str = "zh-en") -> bytes:
    """The return in brief as PDF bytes, in ``lang`` (``reports.summary.LANGS``)."""
    check_lang(lang)
    r, p = ret.record, ret.previous
    area = r.area.display_name or r.area.name
    made = local_naive(r.made_at, ret.timezone)
    title = f"{r.union_name} · {area} · {r.period.label_zh}驿站月报" + ("" if lang == "zh" else " monthly return")
    sub = [f"{say('区域', 'area', lang)}：{area}（{r.area.name}）",
           f"{say('报告期', 'period', lang)}：{r.period.label_zh}",
           f"{say('填报人', 'preparer', lang)}：{r.preparer}",
           f"{say('审核人', 'reviewer', lang)}：{r.reviewer}",
           f"{say('制表日期', 'made', lang)}：{made:%Y-%m-%d}" if made else ""]
    now_share = r.figures.get("covered_share")
    last_share = p.figures.get("covered_share") if p else None
    change = now_share - last_share if now_share is not None and last_share is not None else None
    c = ret.changes
    figures = [("本月覆盖率", "covered share", _pct(now_share)), ("上月", "last month", _pct(last_share)),
               ("变化", "change", _pp(change)), ("运营驿站", "active stations", str(r.active_stations))]
    if p is not None:
        figures += [("开通", "opened", str(len(c.opened))), ("关闭", "closed", str(len(c.closed))),
                    ("变更", "changed", str(len(c.changed)))]
    buf = io.BytesIO()
    with drawing() as font:
        fig = Figure(figsize=(PAGE_W, PAGE_H))
        pg = Page(fig)
        inner = PAGE_W - 2 * MARGIN
        pg.text(MARGIN, 0.62, title, fontsize=14)
        pg.text(MARGIN, 0.88, "    ".join(s for s in sub[:2] if s), fontsize=7.5, color=GREY)  # two lines:
        pg.text(MARGIN, 1.04, "    ".join(s for s in sub[2:] if s), fontsize=7.5, color=GREY)  # within A4
        x, y = MARGIN, 1.42
        step = inner / len(figures)
        for zh, en, value in figures:  # the English label under the Chinese one, so neither runs into the next
            pg.text(x, y, zh, fontsize=7, color=GREY)
            if lang != "zh":
                pg.text(x, y + 0.13, en, fontsize=6, color=GREY)
            pg.text(x, y + 0.4, value, fontsize=13)
            x += step
        y += 0.8

        since = ""
        if p is not None:
            since = f"（与 {p.period.label_zh}月报比较）"
            if lang != "zh":
                since += f" since the {p.period.label} return"
        pg.text(MARGIN, y, say("站点变化", "stations opened, closed, changed", lang) + since, fontsize=10)
        y += 0.1
        if p is None:
            y += 0.2
            pg.text(MARGIN, y, say("首份月报，无上期可比。", "First return: no earlier return to compare with.", lang),
                    fontsize=8)
        elif not len(c):
            y += 0.2
            pg.text(MARGIN, y, say("登记册无变化。", "No change in the registry.", lang), fontsize=8)
        else:
            rows = []
            for ch in c.all[:MAX_CHANGES]:
                what = "；".join(f"{zh_part(f.label, lang)}：{f.old} → {f.new}" for f in ch.fields[:2])
                if len(ch.fields) > 2:
                    what += f" …（{len(ch.fields)}）"
                note = ch.note_zh if lang == "zh" else ch.note
                rows.append([zh_part(KIND_LABELS[ch.kind], lang), _cut(ch.id, 12), _cut(ch.name, 16),
                             _cut("；".join(t for t in (what, note) if t), 84)])
            header = [say("类别", "change", lang), say("编号", "id", lang), say("名称", "name", lang),
                      say("变化内容", "what changed", lang)]
            y = pg.table(y, header, rows, scaled([0.9, 0.9, 1.6, 4.6], inner), frozenset({0, 1, 2, 3}))
            if len(c) > MAX_CHANGES:
                y += 0.16
                pg.text(MARGIN, y, say(f"另有 {len(c) - MAX_CHANGES} 项见 XLSX。",
                                        f"{len(c) - MAX_CHANGES} more in the XLSX.", lang), fontsize=6.5, color=GREY)
        y += 0.4

        towns = ret.townships()
        pg.text(MARGIN, y, say("分街道覆盖率", "covered share by township", lang), fontsize=10)
        y += 0.1
        rows = [[_cut(t.name, 24), "—" if t.stations is None or t.stations != t.stations else f"{int(t.stations)}",
                 _pct(t.share_now), _pct(t.share_last), _pp(t.change)]
                for t in towns.head(MAX_TOWNSHIPS).itertuples(index=False)]
        total = [say("合计", "total", lang), str(int(towns["stations"].fillna(0).sum())), _pct(now_share),
                 _pct(last_share), _pp(change)]
        header = [say("街道", "township", lang), say("驿站", "stations", lang), say("本月", "now", lang),
                  say("上月", "last month", lang), say("变化", "change", lang)]
        y = pg.table(y, header, rows, scaled([2.6, 0.8, 1.0, 1.0, 1.0], inner), frozenset({0}), total)
        y += 0.4

        pg.text(MARGIN, y, say(f"前 {min(MAX_GAPS, len(r.gaps))} 个覆盖缺口", "top gaps", lang), fontsize=10)
        y += 0.1
        if r.gaps:
            rows = [[str(g.get("rank")), f"{float(g.get('demand') or 0):,.1f}",
                     _cut(g.get("street") or g.get("location"), 28), _cut(g.get("nearest_station") or "—", 16),
                     "—" if g.get("nearest_distance_m") is None else f"{float(g['nearest_distance_m']):,.0f} 米"]
                    for g in r.gaps[:MAX_GAPS]]
            header = [say("排名", "rank", lang), say("未覆盖需求", "unmet", lang), say("位置", "location", lang),
                      say("最近驿站", "nearest station", lang), say("距离", "distance", lang)]
            y = pg.table(y, header, rows, scaled([0.6, 1.0, 2.8, 1.8, 0.9], inner), frozenset({2, 3}))
        else:
            y += 0.2
            pg.text(MARGIN, y, say("没有覆盖缺口。", "No gaps.", lang), fontsize=8)
        y += 0.35
        notes = [PENDING.split(" / ")[0] if lang == "zh" else PENDING]
        run_at = local_naive(r.figures.get("created_at"), ret.timezone)
        if r.figures.get("run_id") is not None:
            rid, radius = r.figures["run_id"], float(r.figures.get("radius_m") or 0)
            at = f"（{run_at:%Y-%m-%d %H:%M}）" if run_at else ""
            notes.append(say(f"覆盖分析：运行 #{rid}{at}，半径 {radius:,.0f} 米。",
                              f"coverage run #{rid}, radius {radius:,.0f} m.", lang))
        notes[:0] = [say(f"注意：{zh}。", f"Note: {en}.", lang) for zh, en in ret.notes()]
        notes.append(say("完整的站点、变化、街道和缺口表见同名 XLSX。", "Full tables in the XLSX of the same name.",
                          lang))
        if r.figures.get("streets_source") or r.figures.get("mode") == "network":
            notes.append(f"{say('地图数据', 'Map data', lang)} {OSM_ATTRIBUTION}")
        if font is None:
            notes.append("No CJK font installed (e.g. Debian fonts-noto-cjk): Chinese text cannot be shown.")
        for n in notes:
            pg.text(MARGIN, y, n, fontsize=6.5, color="#555555")
            y += 0.15
        pg.rule(PAGE_H - 0.75)
        signed = (f"{say('填报人', 'preparer', lang)}：{r.preparer}        {say('审核人', 'reviewer', lang)}："
                  f"{r.reviewer}        {say('日期', 'date', lang)}：{made:%Y-%m-%d}" if made else "")
        pg.text(MARGIN, PAGE_H - 0.55, signed, fontsize=8)
        with PdfPages(buf, metadata={"Title": title, "Subject": f"{area} {r.period.label}", "Creator": "yizhan",
                                     "CreationDate": datetime.now().astimezone()}) as pdf:
            pdf.savefig(fig)
    return buf.getvalue()

"""Small charts as inline SVG strings: readable offline, printable, no dependency.

Every chart is an ``<svg>`` with ``data-plot`` (its name, for tests and print CSS),
``role="img"`` and a ``<title>``; sizes are in the viewBox, so charts scale with the
page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44
BLUE, ORANGE, RED, GREEN, GREY = "#2b6cb0", "#dd6b20", "#c53030", "#2f855a", "#a0aec0"

Fmt = Callable[[float], str]


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        high = low + 1
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= raw:
            step *= m
            break
    first = math.floor(low / step) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 10))
        value += step
    if out[-1] < high:
        out.append(round(out[-1] + step, 10))
    return out


def _open(name: str, title: str, height: int = H) -> list[str]:
    return [
        f'<svg data-plot="{escape(name)}" role="img" viewBox="0 0 {W} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" class="plot">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" class="plot-title">{escape(title)}</text>',
    ]


def _y_axis(
    parts: list[str], values: Sequence[float], scale: Callable[[float], float], fmt: Fmt
) -> None:
    for v in values:
        y = scale(v)
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>'
        )


def bars(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    fmt: Fmt,
    hatched: Sequence[bool] = (),
    hatch_note: str = "estimated",
) -> str:
    """Stacked bars, one per label; ``hatched`` bars are drawn lighter (estimated)."""
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    axis = ticks(0, max(totals, default=0) or 1)
    top = axis[-1]
    inner_h = H - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + inner_h * (1 - v / top)

    parts = _open(name, title)
    _y_axis(parts, axis, y, fmt)
    slot = (W - LEFT - RIGHT) / max(len(labels), 1)
    for i, label in enumerate(labels):
        x = LEFT + i * slot + slot * 0.15
        base = 0.0
        light = i < len(hatched) and hatched[i]
        for _series_name, values, color in series:
            v = values[i]
            if v > 0:
                opacity = 0.45 if light else 1.0
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(base + v):.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{y(base) - y(base + v):.1f}" fill="{color}" fill-opacity="{opacity}"/>'
                )
            base += v
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
        )
        if light and totals[i] > 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{y(totals[i]) - 4:.1f}" text-anchor="middle" '
                f'class="note">{escape(hatch_note)}</text>'
            )
    _legend(parts, [(n, c) for n, _, c in series])
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(parts: list[str], entries: Sequence[tuple[str, str]], y: float = H - 8) -> None:
    x = LEFT
    for label, color in entries:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}">{escape(label)}</text>')
        x += 24 + 7 * len(label)


def lines(
    name: str,
    title: str,
    xs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    fmt: Fmt,
    x_fmt: Fmt,
    marks: Sequence[tuple[float, str, str]] = (),
    level: tuple[float, str] | None = None,
) -> str:
    """Lines over ``xs``; ``marks`` are vertical markers (x, label, colour); ``level`` a
    horizontal dashed line (y, label), e.g. a capacity."""
    values = [v for _, ys, _ in series for v in ys if math.isfinite(v)]
    if level is not None:
        values.append(level[0])
    axis = ticks(min(0.0, *values) if values else 0.0, max(values, default=1.0))
    lo, hi = axis[0], axis[-1]
    x0, x1 = min(xs, default=0.0), max(xs, default=1.0)
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + inner_w * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def py(v: float) -> float:
        return TOP + inner_h * (1 - (v - lo) / (hi - lo))

    parts = _open(name, title)
    _y_axis(parts, axis, py, fmt)
    for t in ticks(x0, x1, 8):
        if x0 <= t <= x1:
            parts.append(
                f'<text x="{px(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{escape(x_fmt(t))}</text>'
            )
    for _label, ys, color in series:
        points = " ".join(
            f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, ys, strict=True) if math.isfinite(v)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
    if level is not None:
        y = py(level[0])
        parts.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{RED}" stroke-dasharray="5 4"/>'
        )
        parts.append(
            f'<text x="{W - RIGHT}" y="{y - 4:.1f}" text-anchor="end" class="note">{escape(level[1])}</text>'
        )
    for i, (x, label, color) in enumerate(marks):
        parts.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="{color}" stroke-dasharray="3 3"/>'
        )
        parts.append(
            f'<text x="{px(x) + 4:.1f}" y="{TOP + 12 + 12 * i}" class="note" fill="{color}">{escape(label)}</text>'
        )
    _legend(parts, [(n, c) for n, _, c in series])
    parts.append("</svg>")
    return "\n".join(parts)


def intervals(
    name: str,
    title: str,
    rows: Sequence[tuple[str, float | None, float | None, float | None, str]],
    *,
    fmt: Fmt,
) -> str:
    """One row per (label, value, lower, upper, colour): a dot and its interval."""
    height = TOP + 26 * len(rows) + 36
    known = [v for _, *vals, _ in rows for v in vals if v is not None]
    axis = ticks(0.0, max(known, default=1.0) or 1.0)
    top = axis[-1]
    left = 200

    def px(v: float) -> float:
        return left + (W - left - RIGHT) * v / top

    parts = _open(name, title, height)
    for t in axis:
        parts.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" y2="{height - 30}" class="grid"/>'
        )
        parts.append(
            f'<text x="{px(t):.1f}" y="{height - 14}" text-anchor="middle">{escape(fmt(t))}</text>'
        )
    for i, (label, value, lower, upper, color) in enumerate(rows):
        y = TOP + 16 + 26 * i
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text x="{left + 4}" y="{y + 4}" class="note">n/a</text>')
            continue
        if lower is not None and upper is not None:
            parts.append(
                f'<line x1="{px(lower):.1f}" x2="{px(upper):.1f}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>'
            )
        parts.append(f'<circle cx="{px(value):.1f}" cy="{y}" r="5" fill="{color}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def diverging(name: str, title: str, rows: Sequence[tuple[str, float]], *, fmt: Fmt) -> str:
    """Horizontal bars from zero: increases red, decreases green."""
    height = TOP + 22 * max(len(rows), 1) + 30
    extent = max((abs(v) for _, v in rows), default=1.0) or 1.0
    left, mid = 220, (220 + W - RIGHT) / 2
    half = (W - RIGHT - left) / 2 - 56  # room for the value labels

    def px(v: float) -> float:
        return mid + half * v / extent

    parts = _open(name, title, height)
    parts.append(
        f'<line x1="{mid:.1f}" x2="{mid:.1f}" y1="{TOP}" y2="{height - 24}" stroke="#4a5568"/>'
    )
    for i, (label, value) in enumerate(rows):
        y = TOP + 4 + 22 * i
        x = min(px(0), px(value))
        color = RED if value > 0 else GREEN
        parts.append(f'<text x="{left - 8}" y="{y + 12}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{abs(px(value) - px(0)):.1f}" height="16" fill="{color}"/>'
        )
        anchor, tx = ("start", px(value) + 4) if value >= 0 else ("end", px(value) - 4)
        parts.append(
            f'<text x="{tx:.1f}" y="{y + 12}" text-anchor="{anchor}">{escape(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)

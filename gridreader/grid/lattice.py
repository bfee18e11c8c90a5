"""The lattice the numbers form: rows share a baseline band, columns share an
alignment. Rules and fills only refine the edges in between.

Lines of text where words outweigh numbers (headers, captions, card titles,
navigation, prose with a number in it) are not table rows.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from gridreader.grid.ink import InkMaps
from gridreader.grid.separators import runs, structural_cuts
from gridreader.grid.tokens import Token

# Rows whose gap is this close to a whole number of pitches are one block;
# up to this many pitches (empty rows in between).
_PITCH_TOLERANCE = 0.25
_MAX_PITCHES = 3
# An end line astray from the others' columns is dropped only while this
# many rows stay: in photos and noise any two lines of blobs agree once the
# rest is dropped, and that made tables of them.
_MIN_ROWS_LEFT = 3
# A table's rows keep their pitch closely (CSS, a printed form); a line of
# other print just below or above it (a footnote) sits off that pitch.
_ROW_PITCH_SLACK = 0.15
# Rules this far apart (in pitches) in a gap bound a row of their own: an
# empty web row has no line box, so it is only its padding tall (0.3-0.8 of
# a pitch), and the gap around it is no whole number of pitches.
_ROW_RULES_APART = 0.3
# Digits against a face's lower case: as tall as its capitals, 1.2-1.45
# times its x-height (Anonymous Pro 1.23, DejaVu Sans Mono 1.34, Open Sans 1.37).
_CAPITALS = (1.15, 1.6)
# An outer fill edge nearer its row's text than this share of half the gap
# between rows hugs the text (a badge pill's edge).
_HUGGING = 0.6
# A gap this share of a pitch longer than the others can hold an empty row
# whose own fill edges stand clear of the text around it.
_EMPTY_BAND = 0.1
# Tokens in a line before it may be told a run of letters (a caption of
# four words is twenty).
_LETTER_RUN = 8
# Tokens narrower than this (over their height) are arcs, brackets or bars
# (a monospace face's letters are wider, serifs and all).
_ARC = 0.45


def group_lines(tokens: list[Token], text_h: float) -> list[list[Token]]:
    """Tokens grouped into text lines by their vertical centres, top to bottom."""
    lines: list[list[Token]] = []
    sums: list[float] = []
    for t in sorted(tokens, key=lambda t: t.centre[1]):
        cy = t.centre[1]
        if lines and abs(cy - sums[-1] / len(lines[-1])) <= 0.4 * text_h:
            lines[-1].append(t)
            sums[-1] += cy
        else:
            lines.append([t])
            sums.append(cy)
    return lines


def number_lines(lines: list[list[Token]], text_h: float | None = None) -> list[list[Token]]:
    """The lines that are numbers, each keeping only its number tokens.

    A table's numbers share one digit height: smaller or bigger print around
    it (a caption, a title) is not part of it. With the page's ``text_h``,
    that height is taken among the tokens of about the text's size: the arcs
    a badge pill leaves on both sides of its number (its straight edges are
    taken for rules) outnumber the numbers and are taller. But the page's text
    may be prose, whose lower case sets ``text_h`` (and a monospace face's
    letters pass for digits): digits stand as tall as capitals, 1.2-1.45 times
    that. The taller height is taken when its lines make a longer run of rows.
    """
    heights = [t.box[3] - t.box[1] for line in lines for t in line if t.number]
    if not heights:
        return []
    if not text_h:
        return _lines_of_height(lines, float(np.median(heights)))
    near = [v for v in heights if 0.8 * text_h <= v <= 1.2 * text_h]
    digit_h = float(np.median(near or heights))
    out = _lines_of_height(lines, digit_h)
    capitals = [v for v in heights if _CAPITALS[0] * digit_h < v <= _CAPITALS[1] * digit_h]
    if len(capitals) >= 4:
        tall = _lines_of_height(lines, float(np.median(capitals)))
        if len(pick_block(tall)) > len(pick_block(out)):
            return tall
    return out


def _lines_of_height(lines: list[list[Token]], digit_h: float) -> list[list[Token]]:
    """The number lines of digits ``digit_h`` tall (see :func:`number_lines`)."""
    out = []
    for line in lines:
        nums = [t for t in line if t.number and 0.85 <= (t.box[3] - t.box[1]) / digit_h <= 1.2]
        if not nums:
            continue
        width = sum(t.box[2] - t.box[0] for t in nums)
        words = sum(t.box[2] - t.box[0] for t in line if t.word)
        if words > 0.5 * width:
            continue
        # Prose: many short words around a number or two.
        off = [t.box[2] - t.box[0] for t in line if _off_size(t, digit_h)]
        if len(off) >= 3 * len(nums) and sum(off) > width:
            continue
        if _letter_run(line, digit_h):
            continue
        out.append(sorted(nums, key=lambda t: t.box[0]))
    return out


def prose_lines(lines: list[list[Token]]) -> tuple[float, ...]:
    """The heights of the lines that are words: two or more of them, wider
    together than the line's numbers (a sentence, a heading, a caption), or
    words and no number at all (a header row: headers lead a table, so a
    number line above one is a caption's)."""
    out = []
    for line in lines:
        words = [t.box[2] - t.box[0] for t in line if t.word]
        numbers = sum(t.box[2] - t.box[0] for t in line if t.number)
        if (len(words) >= 2 and sum(words) > numbers) or (words and numbers == 0):
            out.append(_middle(line))
    return tuple(out)


def _letter_run(line: list[Token], digit_h: float) -> bool:
    """A line of letters set one by one: monospace or letter-spaced prose,
    whose letters are tokens of one glyph, each a letter's gap from the next.
    A table's numbers stand a cell's padding apart (at least about half a
    digit height even in 8 px roulette cells). Word spaces are a fifth or
    so of a prose line's gaps, and hardly wider than a letter (about 1.3
    digit heights in a monospace face). A row of numbers each broken in two
    pieces (handwriting) keeps a third of its gaps or more a cell wide."""
    # A badge's arcs (narrow and tall) stand close beside its number.
    xs = sorted(
        (t.box[0], t.box[2]) for t in line if t.box[2] - t.box[0] >= _ARC * (t.box[3] - t.box[1])
    )
    if len(xs) < _LETTER_RUN:
        return False
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(xs)]
    near, far = np.percentile(gaps, [60, 80])
    return float(near) < 0.5 * digit_h and float(far) < 1.6 * digit_h


def _off_size(t: Token, digit_h: float) -> bool:
    """A print-sized token that is no number of the table's size: a short
    word in lower case ("was", "came") or one with a descender ("spun"). A
    line of prose is mostly such tokens between the few its digits make.
    Narrow ones (a pill's arcs, brackets, a stray "1") are left out."""
    w, h = t.box[2] - t.box[0], t.box[3] - t.box[1]
    size = h / digit_h
    return (0.5 <= size < 0.85 or 1.2 < size <= 1.6) and w >= 0.6 * h


def _band(line: list[Token]) -> tuple[int, int]:
    return min(t.box[1] for t in line), max(t.box[3] for t in line)


def pick_block(
    lines: list[list[Token]], maps: InkMaps | None = None, prose: tuple[float, ...] = ()
) -> list[list[Token]]:
    """The largest run of number lines at one pitch (whole multiples allowed,
    and, given the page's ``maps``, a gap that rules divide into rows).

    A line of words between two number lines (at the heights ``prose``, see
    :func:`prose_lines`) parts them: a table has no line of prose inside it,
    and a heading's letters that pass for digits two pitches above the
    table, with a sentence between, are no row of it.
    """
    if len(lines) < 2:
        return lines
    tops = [_middle(line) for line in lines]
    steps = np.diff(tops)
    pitch = float(np.median(steps))
    blocks: list[list[int]] = [[0]]
    for i, step in enumerate(steps, start=1):
        k = round(step / pitch) if pitch > 0 else 0
        parted = any(tops[i - 1] < y < tops[i] for y in prose)
        if not parted and (
            (1 <= k <= _MAX_PITCHES and abs(step / pitch - k) <= _PITCH_TOLERANCE * k)
            or padding_row(step, steps)
            or (
                maps is not None
                and 1 + _PITCH_TOLERANCE < step / pitch <= _MAX_PITCHES
                and len(_row_rules(maps, lines[i - 1], lines[i], pitch)) >= 2
            )
        ):
            blocks[-1].append(i)
        else:
            blocks.append([i])
    best = max(blocks, key=lambda b: sum(len(lines[i]) for i in b))
    return _drop_straddling(_drop_bold_header([lines[i] for i in best]), pitch)


def padding_row(step: float, steps: np.ndarray) -> bool:
    """Whether a gap of ``step`` between two lines, among lines set ``steps``
    apart, holds an empty row only its padding tall.

    A web table's empty row has no line box: it is only its padding tall,
    and the lines around it stand 1.2-1.75 pitches apart, no whole multiple.
    Rendered rows are spaced exactly, so that is told only where at least
    two other steps agree within :data:`_EXACT` (handwriting does not).
    """
    steps = np.asarray(steps, float)
    others = steps[np.abs(steps - step) > 0.5]
    if others.size < 2 or others.min() <= 0:
        return False
    # Whole multiples (a line whose numbers were missed) count at their pitch.
    per = others / np.maximum(1.0, np.round(others / others.min()))
    pitch = float(np.median(per))
    if np.any(np.abs(per - pitch) > _EXACT * pitch):
        return False
    return bool(_PADDING_ROW[0] <= step / pitch <= _PADDING_ROW[1])


# An empty row only its padding tall sets its neighbours this many pitches
# apart, among steps that agree within this share.
_PADDING_ROW = (1.2, 1.75)
_EXACT = 0.04


# Bold print is ~1.5 times as heavy as regular.
BOLD = 1.3


def print_weight(weights: list[float]) -> float:
    """The body's stroke weight when it is print (weights agree), else 0:
    handwriting varies too much from number to number to tell bold rows."""
    if len(weights) < 4:
        return 0.0
    q1, med, q3 = np.percentile(weights, [25, 50, 75])
    return float(med) if med > 0 and (q3 - q1) <= 0.25 * med else 0.0


def _drop_bold_header(block: list[list[Token]]) -> list[list[Token]]:
    """Drop first lines printed much heavier than the rest: a header row of
    bold single letters (a spreadsheet's A, B, C) passes for numbers. Only
    the top: a heavy last line is the table's own (badges, whose ground
    weighs as ink), and a header leads."""
    while len(block) >= 3:
        body = print_weight([t.weight for line in block for t in line])
        if body > 0 and float(np.median([t.weight for t in block[0]])) >= BOLD * body:
            del block[0]
        else:
            return block
    return block


def _drop_straddling(block: list[list[Token]], pitch: float) -> list[list[Token]]:
    """Drop end lines that do not share the others' columns: a token across
    two of them, or, for a line set an empty row's gap apart or off the line
    pitch ``pitch`` (a footnote), most of its tokens in none of them while
    ``_MIN_ROWS_LEFT`` rows stay. Columns share an alignment; text above or
    below a table (a heading whose letters pass for digits) does not."""
    # Letter-spaced digits part a column's band; a number set tighter in
    # the end line would seem to run across two columns.
    th = float(np.median([t.box[3] - t.box[1] for line in block for t in line]))
    while len(block) >= 3:
        for end in (0, len(block) - 1):
            others = [t for i, line in enumerate(block) if i != end for t in line]
            bands = _join_letter_gaps(_cover_bands(others), th)
            touched = [_bands_touched(t, bands) for t in block[end]]
            near = block[1 if end == 0 else end - 1]
            step = abs(_middle(block[end]) - _middle(near)) / pitch if pitch > 0 else 1.0
            apart = step >= 1.5 or abs(step - 1) > _ROW_PITCH_SLACK
            astray = touched.count(0)
            stray = apart and 2 * astray > len(touched)
            if max(touched) >= 2 or (stray and len(block) >= _MIN_ROWS_LEFT + 1):
                del block[end]
                break
        else:
            return block
    return block


def _row_rules(maps: InkMaps, above: list[Token], below: list[Token], pitch: float) -> list[float]:
    """The rules (or fill edges) across the gap between two lines, at least
    :data:`_ROW_RULES_APART` pitches apart, as y positions."""
    x0 = min(t.box[0] for t in (*above, *below))
    x1 = max(t.box[2] for t in (*above, *below))
    y0, y1 = _band(above)[1], _band(below)[0]
    if y1 - y0 < 2 or x1 - x0 < 2:
        return []
    return _apart(_rule_cuts(maps, (y0, y1), (x0, x1), axis=0), _ROW_RULES_APART * pitch)


def _middle(line: list[Token]) -> float:
    return float(np.mean([t.centre[1] for t in line]))


def _cover_bands(tokens: list[Token]) -> list[tuple[int, int]]:
    """The x-ranges that ``tokens`` cover, as ``[start, end)`` runs."""
    lo = min(t.box[0] for t in tokens)
    hi = max(t.box[2] for t in tokens)
    covered = np.zeros(hi - lo, bool)
    for t in tokens:
        covered[t.box[0] - lo : t.box[2] - lo] = True
    return [(s + lo, e + lo) for s, e in runs(covered)]


def _join_letter_gaps(bands: list[tuple[int, int]], th: float) -> list[tuple[int, int]]:
    """Join column bands split by letter-spacing: widely spaced digits make
    two tokens of one number, and a column of such numbers two bands. Such a
    gap is narrow (under half a digit height) and far narrower than the
    table's gaps between columns."""
    if len(bands) < 3:
        return bands
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(bands)]
    # Up to every other gap may be a letter gap: the column gaps are the
    # upper part.
    typical = float(np.percentile(gaps, 75))
    out = [bands[0]]
    for band, gap in zip(bands[1:], gaps, strict=True):
        if gap < 0.45 * th and gap < 0.35 * typical:
            out[-1] = (out[-1][0], band[1])
        else:
            out.append(band)
    return out


def _bands_touched(t: Token, bands: list[tuple[int, int]]) -> int:
    return sum(1 for a, b in bands if t.box[0] < b and a < t.box[2])


def lattice_edges(maps: InkMaps, tokens: list[Token]) -> tuple[list[float], list[float]] | None:
    """Row and column edges of the lattice of number tokens, or ``None`` when
    the numbers form no table (fewer than two cells)."""
    th = maps.text_h
    lines = group_lines(tokens, th)
    block = pick_block(number_lines(lines, th), maps, prose_lines(lines))
    nums = [t for line in block for t in line]
    if len(nums) < 2:
        return None
    # Columns: the x-ranges that number tokens cover, over the block's rows.
    col_bands = _join_letter_gaps(_cover_bands(nums), th)
    lo, hi = col_bands[0][0], col_bands[-1][1]
    row_bands = [_band(line) for line in block]
    if len(row_bands) * len(col_bands) < 2:
        return None
    rows = _edges(
        row_bands,
        _cuts(maps, (lo, hi), row_bands, axis=0),
        th,
        regular=True,
        rules=_cuts(maps, (lo, hi), row_bands, axis=0, fills=False),
    )
    span = (row_bands[0][0], row_bands[-1][1])
    cols = _edges(col_bands, _cuts(maps, span, col_bands, axis=1), th, regular=False)
    limit_y, limit_x = maps.glyphs.shape
    rows = [min(float(limit_y), max(0.0, v)) for v in rows]
    cols = [min(float(limit_x), max(0.0, v)) for v in cols]
    return rows, cols


def _cuts(
    maps: InkMaps,
    span: tuple[int, int],
    bands: list[tuple[int, int]],
    axis: int,
    fills: bool = True,
) -> list[float]:
    """Rule (and, with ``fills``, fill-edge) positions along ``axis`` across
    the lattice's extent."""
    reach_lo = max(0, bands[0][0] - 2 * (bands[-1][1] - bands[0][0]) // max(1, len(bands)) - 2)
    reach_hi = bands[-1][1] + 2 * (bands[-1][1] - bands[0][0]) // max(1, len(bands)) + 2
    return _rule_cuts(maps, (reach_lo, reach_hi), span, axis, fills)


def _rule_cuts(
    maps: InkMaps, along: tuple[int, int], across: tuple[int, int], axis: int, fills: bool = True
) -> list[float]:
    """Positions along ``axis`` (page pixels, within ``along``) of the rules
    and (with ``fills``) fill edges that run across most of ``across``."""
    lo, hi = along
    a, b = across
    if axis == 0:
        rules = maps.rules_h[lo:hi, a:b]
        if fills:
            rules = rules | maps.steps_h[lo:hi, a:b]
        cover = cv2.dilate(rules, np.ones((3, 1), np.uint8)).mean(axis=1)
    else:
        rules = maps.rules_v[a:b, lo:hi]
        if fills:
            rules = rules | maps.steps_v[a:b, lo:hi]
        cover = cv2.dilate(rules, np.ones((1, 3), np.uint8)).mean(axis=0)
    if cover.size == 0:
        return []
    return [c + lo for c in structural_cuts(cover, max(2.0, 0.35 * maps.text_h), 0.5)]


def _apart(cuts: list[float], gap: float) -> list[float]:
    """``cuts`` (ascending) thinned so that neighbours are ``gap`` apart."""
    kept: list[float] = []
    for c in cuts:
        if not kept or c - kept[-1] >= gap:
            kept.append(c)
    return kept


def _edges(
    bands: list[tuple[int, int]],
    cuts: list[float],
    th: float,
    regular: bool,
    rules: list[float] | None = None,
) -> list[float]:
    """Edges around and between bands: a rule or fill edge in a gap where there
    is one, else the gap's middle; the outer edges as far out as half a gap.

    Given the ``rules`` alone (``cuts`` holds the fill edges too), an outer
    edge is a rule, or a fill edge well out from the band: a row's padding
    sits evenly above and below its text, and a fill edge that hugs the
    text (:data:`_HUGGING` of half a gap) is a row of badge pills' own,
    which cut there leaves the pills cut through.
    """
    centres = [(a + b) / 2.0 for a, b in bands]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(bands)]
    pitch = float(np.median(np.diff(centres))) if len(bands) >= 2 else 2.0 * th
    single = [g for g, s in zip(gaps, np.diff(centres), strict=True) if s < 1.5 * pitch]
    half = float(np.median(single)) / 2.0 if single else 0.5 * th
    edges = []
    first, last = bands[0][0], bands[-1][1]

    hug = 0.0 if rules is None else _HUGGING * half
    ends = rules or []
    outer = [c for c in cuts if first - 2.5 * half - 2 <= c < first and first - c >= hug]
    outer += [c for c in ends if first - 2.5 * half - 2 <= c < first]
    edges.append(max(outer) if outer else first - half)
    for (a, b), step in zip(itertools.pairwise(bands), np.diff(centres), strict=True):
        inside = [c for c in cuts if a[1] <= c <= b[0]]
        k = max(1, round(step / pitch)) if regular and len(bands) >= 3 else 1
        apart = _apart(inside, _ROW_RULES_APART * pitch)
        if regular and step > (1 + _PITCH_TOLERANCE) * pitch and len(apart) >= max(2, k):
            # Rules divide the gap into rows (an empty row shorter than the
            # others): they are its edges. Fewer rules than the pitch asks
            # for (one lost to JPEG) leave the even spacing below in charge.
            edges.extend(apart)
        elif (
            k == 1
            and hug > 0
            and step > (1 + _EMPTY_BAND) * pitch
            and len(apart) >= 2
            and apart[0] - a[1] >= hug
            and b[0] - apart[-1] >= hug
        ):
            # Two edges well clear of both lines' text (not a row of pills'
            # own): an empty row with a fill of its own lies between. In a
            # short table the pitch is the median of a few steps, the empty
            # row's among them, so the gap is less than a whole pitch more.
            edges.extend((apart[0], apart[-1]))
        elif k == 1 and regular and len(bands) >= 4 and padding_row(step, np.diff(centres)):
            # An empty row only its padding tall: its edges are the padding
            # of the rows around it.
            edges.extend((a[1] + half, b[0] - half))
        elif k == 1:
            mid = (a[1] + b[0]) / 2.0
            edges.append(min(inside, key=lambda c: abs(c - mid)) if inside else mid)
        else:
            # Empty rows between: evenly spaced, from just after a to just before b.
            top, bottom = a[1] + half, b[0] - half
            edges.extend(top + (bottom - top) * j / (k - 1) for j in range(k))
    outer = [c for c in cuts if last < c <= last + 2.5 * half + 2 and c - last >= hug]
    outer += [c for c in ends if last < c <= last + 2.5 * half + 2]
    edges.append(min(outer) if outer else last + half)
    return edges

"""How well a candidate grid explains the picture's tokens.

Every number should sit inside one cell, one number to a cell, with no edge
through it; no row of the table should be a line of words (a header, a
caption, a card title) while the others are numbers; no row or column should
be empty of ink; and no number that lines up with the table should be left
outside it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from gridreader.grid.lattice import BOLD, print_weight
from gridreader.grid.tokens import Token


@dataclass(frozen=True)
class GridScore:
    """The evidence for and against one candidate grid.

    Attributes:
        explained: number tokens inside one cell each.
        split: number tokens an edge runs through.
        crowded: the extra tokens in cells that hold more than one.
        text_rows: outer rows with ink but no number, in a table of number
            rows (a header, a caption, a card title).
        empty_lines: rows and columns without any ink.
        missed: number tokens outside the grid that line up with it, when
            they are most of a row or column (else 0).
    """

    explained: int
    split: int
    crowded: int
    text_rows: int
    empty_lines: int
    missed: int

    @property
    def cut(self) -> int:
        """Numbers cut by an edge or sharing a cell."""
        return self.split + self.crowded

    @property
    def faults(self) -> int:
        """Whole-line mistakes: a row or column too many or too few."""
        return self.text_rows + self.empty_lines + self.missed


def score_grid(
    numbers: list[Token], words: list[Token], rows: list[float], cols: list[float]
) -> GridScore:
    """Score the grid with edges ``rows`` and ``cols`` (work pixels).

    Args:
        numbers: the number tokens of the lines that are numbers.
        words: every other token.
        rows: row edges.
        cols: column edges.
    """
    r, c = np.asarray(rows, float), np.asarray(cols, float)
    if r.size < 2 or c.size < 2:
        return GridScore(0, 0, 0, 0, 0, len(numbers))
    pr, pc = float(np.median(np.diff(r))), float(np.median(np.diff(c)))
    nr, nc = r.size - 1, c.size - 1
    counts = np.zeros((nr, nc), int)
    ink = np.zeros((nr, nc), bool)
    word_w = np.zeros(nr)
    number_w = np.zeros(nr)
    word_n = np.zeros(nr, int)
    weights: list[list[float]] = [[] for _ in range(nr)]
    explained = split = 0
    members: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    outside: dict[tuple[str, int], list[Token]] = {}
    for t in words:
        cx, cy = t.centre
        if c[0] <= cx < c[-1] and r[0] <= cy < r[-1]:
            i, j = int(np.searchsorted(r, cy)) - 1, int(np.searchsorted(c, cx)) - 1
            ink[i, j] = True
            word_w[i] += t.box[2] - t.box[0]
            word_n[i] += 1
    for t in numbers:
        x0, y0, x1, y1 = t.box
        cx, cy = t.centre
        inside_x = c[0] <= cx < c[-1]
        inside_y = r[0] <= cy < r[-1]
        if inside_x and inside_y:
            # An edge well inside the token cuts it.
            mx, my = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
            if np.any((c > x0 + mx) & (c < x1 - mx)) or np.any((r > y0 + my) & (r < y1 - my)):
                split += 1
            else:
                explained += 1
            i, j = int(np.searchsorted(r, cy)) - 1, int(np.searchsorted(c, cx)) - 1
            counts[i, j] += 1
            members.setdefault((i, j), []).append(t.box)
            ink[i, j] = True
            number_w[i] += x1 - x0
            weights[i].append(t.weight)
        elif inside_y and c[0] - pc <= cx < c[-1] + pc:
            side = "left" if cx < c[0] else "right"
            outside.setdefault((side, int(np.searchsorted(r, cy))), []).append(t)
        elif inside_x and r[0] - _REACH * pr <= cy < r[-1] + _REACH * pr:
            side = "above" if cy < r[0] else "below"
            outside.setdefault((side, int(np.searchsorted(c, cx))), []).append(t)
    # Digits set apart by letter-spacing are two tokens of one number: only
    # tokens a space apart crowd a cell.
    crowded = sum(_groups(boxes) - 1 for boxes in members.values())
    empty = int((~ink.any(axis=1)).sum() + (~ink.any(axis=0)).sum())
    # A line of words, with hardly a number in it: a stray word (two
    # handwritten numbers run together) does not make a row text. A row of
    # ink without a single number is not a table row either.
    numbered = counts.sum(axis=1)
    texty = (word_w > 2 * number_w) & (2 * numbered <= word_n) & (word_n >= max(2, 0.4 * nc))
    texty |= (numbered == 0) & ink.any(axis=1)
    # Rows printed much heavier than the body at its top are a header,
    # inside the grid or out. Headers lead; heavy rows lower down are the
    # table's own (a last row of badges, whose ground weighs as ink).
    body = print_weight([w for ws in weights for w in ws])
    # Weighed line by line, not token by token: a crisp vertical "1" alone
    # can weigh as bold.
    missed = 0
    for line in _lined_up(outside, pc).values():
        if not body or float(np.median([t.weight for t in line])) < BOLD * body:
            missed += len(line)
    heavy = [body > 0 and len(ws) > 0 and float(np.median(ws)) >= BOLD * body for ws in weights]
    lead = next((i for i, flag in enumerate(heavy) if not flag), len(heavy))
    texty[:lead] = True
    # A number or two beside the table (a caption's, a footer's) is no
    # dropped row or column; most of one is.
    missed = missed if missed >= max(2.0, 0.6 * min(nr, nc)) else 0
    return GridScore(explained, split, crowded, _outer_text_rows(texty), empty, missed)


# How far above or below the grid (in row pitches) a missed row's numbers
# may lie: a row past an empty one only its padding tall (a web page's) is
# over a pitch out.
_REACH = 1.3


def _lined_up(outside: dict[tuple[str, int], list[Token]], pitch: float) -> dict[str, list[Token]]:
    """The tokens beside the grid that could be a row or column it missed,
    by side.

    Numbers of a table stand a column pitch apart: a line beside the grid
    with two under half a pitch apart (and a space, not letter-spacing) is
    text, the letters of a caption in a face whose letters pass for digits.
    """
    texty = {side for (side, _), ts in outside.items() if _text_beside(ts, pitch)}
    lines: dict[str, list[Token]] = {}
    for (side, _), ts in outside.items():
        if side not in texty:
            lines.setdefault(side, []).extend(ts)
    return lines


def _text_beside(tokens: list[Token], pitch: float) -> bool:
    boxes = sorted(t.box for t in tokens)
    for a, b in itertools.pairwise(boxes):
        h = max(a[3] - a[1], b[3] - b[1])
        same_line = min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * h
        if same_line and b[0] - a[2] >= 0.5 * h and (b[0] + b[2] - a[0] - a[2]) < pitch:
            return True
    return False


def _outer_text_rows(texty: np.ndarray) -> int:
    """How many outer rows are text, when most rows are numbers."""
    if texty.sum() * 2 >= texty.size:
        return 0
    n = 0
    for order in (texty, texty[::-1]):
        for flag in order:
            if not flag:
                break
            n += 1
    return min(n, int(texty.sum()))


def _groups(boxes: list[tuple[int, int, int, int]]) -> int:
    """How many numbers the tokens of one cell are: tokens on one line less
    than half their height apart (letter-spaced digits) are one."""
    boxes = sorted(boxes)
    n = 1
    for a, b in itertools.pairwise(boxes):
        h = max(a[3] - a[1], b[3] - b[1])
        same_line = min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * h
        if not (same_line and b[0] - a[2] < 0.5 * h):
            n += 1
    return n


def drop_letter_header(tokens: list[Token], rows: list[float], cols: list[float]) -> list[float]:
    """``rows`` without a first row of column letters (a spreadsheet's A, B,
    C ...), which pass for one-digit numbers.

    Such a row fills every column with one glyph each, where the body's
    numbers 0-36 are mostly two digits. A first row is letters when that
    many single glyphs would be a rare draw (:data:`_LETTER_ROW_CHANCE`)
    from the body's own share of single-glyph tokens. A table whose numbers
    are mostly one digit (a puzzle, a tally) keeps its first row: its body
    draws single glyphs as often.
    """
    nr, nc = len(rows) - 1, len(cols) - 1
    if nr < 3 or nc < _LETTER_ROW_MIN:
        return rows
    first: list[Token] = []
    body: list[Token] = []
    for t in tokens:
        cx, cy = t.centre
        if t.number and cols[0] <= cx < cols[-1] and rows[0] <= cy < rows[-1]:
            (first if cy < rows[1] else body).append(t)
    n, k = len(first), sum(1 for t in first if t.glyphs == 1)
    # One letter to a column, all or nearly all single glyphs (an "M" may
    # show two): more tokens than columns are numbers set apart in pieces.
    if not max(_LETTER_ROW_MIN, _LETTER_ROW_FILLED * nc) <= n <= nc or k < n - n // 10:
        return rows
    if len(body) < 2 * nc:
        return rows
    # Numbers 0-36 drawn evenly are 27% one digit: a body that drew fewer
    # by chance does not make a first row of one-digit numbers rare.
    single = max(_SINGLE_FLOOR, sum(1 for t in body if t.glyphs == 1) / len(body))
    chance = sum(math.comb(n, j) * single**j * (1 - single) ** (n - j) for j in range(k, n + 1))
    return rows[1:] if chance < _LETTER_ROW_CHANCE else rows


# A header of letters fills at least this many columns, and this share of them.
_LETTER_ROW_MIN = 5
_LETTER_ROW_FILLED = 0.8
# Below this chance of drawing the first row's single glyphs from the body,
# the first row is letters.
_LETTER_ROW_CHANCE = 0.005
_SINGLE_FLOOR = 0.25

"""Tokens, the lattice of numbers and the scoring of candidate grids, on text drawn by the test."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from gridreader.grid import find_grid
from gridreader.grid.ink import measure_ink
from gridreader.grid.lattice import (
    group_lines,
    lattice_edges,
    number_lines,
    padding_row,
    pick_block,
    prose_lines,
)
from gridreader.grid.score import GridScore, drop_letter_header, score_grid
from gridreader.grid.tokens import Token, find_tokens
from gridreader.imaging import to_gray

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def page(header: bool) -> np.ndarray:
    """A borderless 4x3 table of numbers, with a bold header row of words."""
    img = Image.new("RGB", (360, 260), "white")
    d = ImageDraw.Draw(img)
    regular, bold = ImageFont.truetype(str(FONT), 20), ImageFont.truetype(str(BOLD), 20)
    if header:
        for c, word in enumerate(("Spin", "Column", "Dozen")):
            d.text((30 + 110 * c, 20), word, font=bold, fill="black")
    for r in range(4):
        for c in range(3):
            d.text(
                (30 + 110 * c, 70 + 45 * r), str((r * 11 + c * 7) % 37), font=regular, fill="black"
            )
    return np.asarray(img)


def test_numbers_and_words_are_told_apart() -> None:
    img = page(header=True)
    gray = to_gray(img)
    maps = measure_ink(img, gray)
    tokens = find_tokens(maps.glyphs, maps.text_h, gray)
    lines = group_lines(tokens, maps.text_h)
    assert len(lines) == 5
    assert all(t.word and not t.number for t in lines[0])
    assert all(t.number and not t.word for line in lines[1:] for t in line)
    # The header is heavier print than the body.
    body = np.median([t.weight for line in lines[1:] for t in line])
    assert np.median([t.weight for t in lines[0]]) > 1.2 * body
    assert len(number_lines(lines)) == 4


def test_the_lattice_leaves_the_header_out_and_scores_better() -> None:
    img = page(header=True)
    gray = to_gray(img)
    maps = measure_ink(img, gray)
    tokens = find_tokens(maps.glyphs, maps.text_h, gray)
    found = lattice_edges(maps, tokens)
    assert found is not None
    rows, cols = found
    assert (len(rows) - 1, len(cols) - 1) == (4, 3)
    assert rows[0] > 45  # below the header line
    numbers = [t for line in number_lines(group_lines(tokens, maps.text_h)) for t in line]
    words = [t for t in tokens if t.word]
    with_header = score_grid(numbers, words, [10.0, *rows], cols)
    without = score_grid(numbers, words, rows, cols)
    assert with_header.text_rows == 1 and without.text_rows == 0
    # (Wide-set digits such as "11" may come as two tokens of one cell.)
    assert without.explained >= 12 and without.split == 0
    # A grid one column short leaves a column of numbers outside.
    assert score_grid(numbers, words, rows, cols[:-1]).missed == 4


def _token(x: int, y: int, w: int, h: int) -> Token:
    return Token((x, y, x + w, y + h), 1, True, False, 1.0)


def test_a_line_of_prose_with_a_number_is_not_a_table_row() -> None:
    # Digits 20 px tall. Prose: one number-sized token ("34") among short
    # lower-case words ("was", "came", "up", "once").
    row = [_token(10 + 60 * k, 100, 22, 20) for k in range(4)]
    prose = [
        _token(10, 200, 22, 20),
        _token(40, 206, 30, 14),
        _token(80, 206, 40, 14),
        _token(130, 206, 18, 14),
        _token(160, 206, 40, 14),
    ]
    kept = number_lines([row, row, prose])
    assert len(kept) == 2 and all(line[0].box[1] == 100 for line in kept)


def test_letter_spaced_digits_do_not_crowd_their_cell() -> None:
    # "2 8" set apart by letter-spacing (a gap a fifth of the digit height)
    # is one number; "2" and "8" a space and more apart are two.
    spaced = [_token(10, 10, 12, 20), _token(26, 10, 12, 20)]
    apart = [_token(10, 10, 12, 20), _token(40, 10, 12, 20)]
    assert score_grid(spaced, [], [0.0, 40.0], [0.0, 60.0]).crowded == 0
    assert score_grid(apart, [], [0.0, 40.0], [0.0, 60.0]).crowded == 1


def test_a_tightly_set_end_line_is_kept_beside_letter_spaced_ones() -> None:
    # Three lines whose two-digit numbers come as two tokens each (letter-
    # spacing), and a first line whose numbers came as one token: it runs
    # across both halves of each column's band, yet it is a table row.
    def spaced(y: int) -> list[Token]:
        return [
            t for x in (10, 110, 210) for t in (_token(x, y, 12, 20), _token(x + 16, y, 12, 20))
        ]

    first = [_token(x, 10, 28, 20) for x in (10, 110, 210)]
    block = pick_block([first, spaced(50), spaced(90), spaced(130)])
    assert [line[0].box[1] for line in block] == [10, 50, 90, 130]


def test_a_heading_letter_between_the_columns_is_no_table_row() -> None:
    # A heading ("Results") two pitches above a table: one of its letters
    # passes for a digit, but it lies between the table's columns. A last
    # row holding one number in a column of its own among numbers in the
    # others' columns is still a row.
    rows = [[_token(x, y, 16, 20) for x in (10, 110, 210)] for y in (100, 140, 180)]
    heading = [_token(60, 20, 10, 20)]
    assert [line[0].box[1] for line in pick_block([heading, *rows])] == [100, 140, 180]
    last = [_token(10, 220, 16, 20), _token(160, 220, 16, 20), _token(210, 220, 16, 20)]
    assert len(pick_block([*rows, last])) == 4


def test_a_footnote_off_the_row_pitch_is_no_table_row() -> None:
    # "Updated every 5 minutes." under a table: one token between the
    # columns, 0.78 of a row pitch below the last row. A last row at the
    # pitch whose one number lies astray is still a row.
    rows = [[_token(x, y, 16, 20) for x in (10, 110, 210)] for y in (100, 140, 180, 220)]
    footnote = [_token(60, 251, 12, 20)]
    assert [line[0].box[1] for line in pick_block([*rows, footnote])] == [100, 140, 180, 220]
    astray_at_pitch = [_token(60, 260, 12, 20)]
    assert len(pick_block([*rows, astray_at_pitch])) == 5


def test_only_a_heavy_first_line_is_a_header() -> None:
    # A header of bold letters leads the table; a heavy last line is the
    # table's own (small badges, whose ground is caught in the tokens' boxes).
    def line(y: int, weight: float) -> list[Token]:
        return [Token((x, y, x + 16, y + 20), 1, True, False, weight) for x in (10, 110, 210)]

    body = [line(y, 1.0) for y in (50, 90, 130)]
    assert [ln[0].box[1] for ln in pick_block([line(10, 1.6), *body])] == [50, 90, 130]
    assert len(pick_block([*body, line(170, 1.6)])) == 4
    numbers = [t for ln in [*body, line(170, 1.6)] for t in ln]
    rows, cols = [30.0, 70.0, 110.0, 150.0, 190.0], [0.0, 60.0, 160.0, 260.0]
    assert score_grid(numbers, [], rows, cols).text_rows == 0
    heavy_top = [t for ln in [line(10, 1.6), *body] for t in ln]
    assert score_grid(heavy_top, [], [-10.0, 30.0, 70.0, 110.0, 150.0], cols).text_rows == 1


def test_a_lattice_of_a_fragment_does_not_replace_the_structure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A ruled 5x2 table whose header is text and one body row's digits were
    # too broken to be number tokens: the structure carries two faults, the
    # lattice of the one clean row none. Holding 2 of the structure's 5
    # numbers, the lattice is a fragment and the structure stays; holding
    # 3, it mends the lines as before.
    structural = ([0.0, 40.0, 80.0, 120.0, 160.0, 200.0], [0.0, 60.0, 120.0], "structured")
    lattice = ([80.0, 120.0], [0.0, 60.0, 120.0])
    mine = GridScore(5, 0, 0, text_rows=1, empty_lines=1, missed=0)
    for theirs, kept in ((2, "structured"), (3, "lattice")):
        got = _chosen(monkeypatch, structural, lattice, mine, GridScore(theirs, 0, 0, 0, 0, 0))
        assert got == kept


def _chosen(
    monkeypatch: pytest.MonkeyPatch,
    structural: tuple[list[float], list[float], str],
    lattice: tuple[list[float], list[float]],
    mine: GridScore,
    theirs: GridScore,
) -> str:
    """Which candidate ``find._best_candidate`` keeps when the structure
    scores ``mine`` and the lattice ``theirs`` (neither ruled through)."""
    import gridreader.grid.find as find

    scores = iter([mine, theirs])
    monkeypatch.setattr(find, "lattice_edges", lambda *a: lattice)
    monkeypatch.setattr(find, "score_grid", lambda *a: next(scores))
    monkeypatch.setattr(find, "_ruled_through", lambda *a: 0)
    img = page(header=False)
    gray = to_gray(img)
    return find._best_candidate(measure_ink(img, gray), gray, structural, [])[2]


def test_a_header_word_of_touching_letters_is_a_word() -> None:
    # Two runs of inked columns (letters that touch) 2.5 text heights wide:
    # no printed number 0-36 is that wide. Two digits 1.7 heights wide are.
    glyphs = np.zeros((60, 200), np.uint8)
    glyphs[10:25, 10:28] = 1
    glyphs[10:25, 30:48] = 1  # 38 px for 15 px text
    glyphs[35:50, 10:21] = 1
    glyphs[35:50, 24:35] = 1  # 25 px
    gray = np.where(glyphs > 0, 0, 255).astype(np.uint8)
    word, number = sorted(find_tokens(glyphs, 15.0, gray), key=lambda t: t.box[1])
    assert word.glyphs == 2 and word.word and not word.number
    assert number.number and not number.word


def rules_only_table(short: int | None, gap_rows: float = 0.45) -> tuple[np.ndarray, list[int]]:
    """A 9x2 table ruled only between rows (a framework's plain table), whose
    row ``short`` is empty and only ``gap_rows`` of a pitch tall (an empty
    ``<td>`` has no line box: its row is its padding), under a heading and a
    sentence. Returns the picture and the rules' y positions."""
    img = Image.new("RGB", (620, 740), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 16)
    d.text((20, 20), "Results", font=ImageFont.truetype(str(FONT), 34), fill="black")
    d.text(
        (20, 80),
        "The wheel was spun 25 times today and 5 came up most often.",
        font=font,
        fill=(40, 40, 40),
    )
    y, pitch, rules = 230, 48, []
    for r in range(9):
        rules.append(y)
        d.line([(20, y), (600, y)], fill=(220, 220, 220), width=1)
        if r == short:
            y += round(gap_rows * pitch)
            continue
        for c in range(2):
            d.text((34 + 290 * c, y + 15), str((r * 13 + c * 7 + 3) % 37), font=font, fill="black")
        y += pitch
    rules.append(y)
    d.line([(20, y), (600, y)], fill=(220, 220, 220), width=1)
    return np.asarray(img), rules


@pytest.mark.parametrize("short", [3, 5])
def test_a_short_empty_row_between_rules_is_a_row(short: int) -> None:
    # Its gap is 1.45 pitches, no whole number of them: without the rules
    # the lattice split the table there and kept only the larger half.
    from gridreader.grid import find_grid

    img, rules = rules_only_table(short)
    grid = find_grid(img)
    assert grid.shape == (9, 2)
    top, bottom = grid.row_edges[short], grid.row_edges[short + 1]
    assert abs(top - rules[short]) <= 3 and abs(bottom - rules[short + 1]) <= 3


def test_a_gap_off_the_pitch_is_a_row_where_rules_or_exact_spacing_vouch() -> None:
    # Rows 1.45 pitches apart: the rules in the gap make it a row, and so
    # does the exact spacing of the other rows (a padding-only empty row,
    # see the test below); with the spacing uneven the gap parts two blocks.
    img, _ = rules_only_table(3)
    gray = to_gray(img)
    maps = measure_ink(img, gray)
    lines = number_lines(group_lines(find_tokens(maps.glyphs, maps.text_h, gray), maps.text_h))
    rows = [line for line in lines if line[0].box[1] > 230]
    assert len(rows) == 8
    assert len(pick_block(rows, maps)) == 8
    assert len(pick_block(rows)) == 8
    uneven = [
        [Token((t.box[0], t.box[1] + s, t.box[2], t.box[3] + s), *astuple(t)[1:]) for t in line]
        for line, s in zip(rows, (0, 2, 8, 8, 14, 16, 24, 26), strict=True)
    ]
    assert len(pick_block(uneven)) == 5


MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


def mono_page(lines: int, size: int, rows: int = 5) -> np.ndarray:
    """A borderless 2-column table, rows far apart, under ``lines`` of lower-case
    prose in a monospace face (its letters pass for digits, and the page's text
    height is their x-height, 1.34 times under the digits')."""
    img = Image.new("RGB", (900, 200 + lines * 24 + rows * 70), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(MONO), size)
    prose = (
        "since march the wheel has paid out seven times, see the last results below",
        "results are updated every few minutes; the week before is in the archive",
        "our house rules are on the next page and the dealer can answer questions",
    )
    for i in range(lines):
        d.text((20, 30 + 24 * i), prose[i % 3], font=font, fill=(60, 60, 60))
    for r in range(rows):
        for c in range(2):
            value = str((r * 11 + c * 5 + 3) % 37)
            d.text((40 + 330 * c, 60 + 24 * lines + 70 * r), value, font=font, fill=(60, 60, 60))
    return np.asarray(img)


@pytest.mark.parametrize(("lines", "size"), [(1, 18), (2, 16), (3, 18)])
def test_digits_taller_than_the_pages_lower_case_are_the_table(lines: int, size: int) -> None:
    # Taken at the prose's x-height, the digits were off-size and the table
    # lost its rows (2x1 or 2x2 of 5x2).
    from gridreader.grid import find_grid

    assert find_grid(mono_page(lines, size)).shape == (5, 2)


def _line(y: int, boxes: list[tuple[int, int, int]]) -> list[Token]:
    """Tokens ``(x, width, height)`` on one baseline at ``y + 16``."""
    return [Token((x, y + 16 - h, x + w, y + 16), 1, True, False, 1.0) for x, w, h in boxes]


def _caption(y: int) -> list[Token]:
    # A monospace caption, letters 3 px apart and words 14 px apart: capitals
    # and ascenders as tall as the digits, the rest x-height.
    boxes, x = [], 10
    for word in ("Results", "of", "table", "61,", "by", "spin"):
        for ch in word:
            boxes.append((x, 8, 16 if ch in "Rltf61bd" else 11))
            x += 11
        x += 14
    return _line(y, boxes)


def test_a_line_of_letters_set_one_by_one_is_no_table_row() -> None:
    # Its letters are tokens of their own, and as many are digit-tall as
    # not: only their spacing (a letter's gap, not a cell's) tells it.
    rows = [_line(60 + 40 * r, [(10 + 70 * c, 16, 16) for c in range(8)]) for r in range(3)]
    kept = number_lines([_caption(10), *rows])
    assert [line[0].box[1] for line in kept] == [60, 100, 140]


def test_badges_and_broken_numbers_are_no_run_of_letters() -> None:
    # A badge's arcs stand 3 px from its number, and a handwritten number
    # broken in two leaves a 3 px gap: the cells' gaps still tell a table row.
    badges = _line(
        10,
        [
            b
            for c in range(4)
            for b in ((10 + 70 * c, 5, 22), (18 + 70 * c, 16, 16), (37 + 70 * c, 5, 22))
        ],
    )
    broken = _line(60, [b for c in range(5) for b in ((10 + 70 * c, 7, 16), (20 + 70 * c, 8, 16))])
    kept = number_lines([badges, broken], text_h=16.0)
    assert [len(line) for line in kept] == [4, 10]


def test_a_stroke_drawn_as_its_two_edges_is_one_glyph() -> None:
    # The outline map draws a thick "1" as two edges with a column of ink
    # between them: "18", 1.33 text heights wide, is two glyphs, not three
    # (which made it a word).
    glyphs = np.zeros((40, 80), np.uint8)
    glyphs[10:25, 10] = glyphs[10:25, 12] = 1
    glyphs[10:25, 16:30] = 1
    gray = np.full(glyphs.shape, 255, np.uint8)
    gray[10:25, 10:13] = 0
    gray[10:25, 16:30] = 0
    (token,) = find_tokens(glyphs, 15.0, gray)
    assert token.glyphs == 2 and token.number and not token.word
    # A gap between glyphs blurred shut over 60% of their height stays a gap
    # (one glyph in all, else).
    gray[13:22, 13:16] = 0
    (token,) = find_tokens(glyphs, 15.0, gray)
    assert token.glyphs == 2


def test_a_word_whose_letter_outlines_touch_shows_its_letters_in_print() -> None:
    # Bold letters a pixel apart ("Zero"): their outlines touch, and the
    # outline columns make one run 2.3 text heights wide, under the width no
    # number reaches (2.4). The print shows four letters: a word. Two digits
    # as wide in outline show two in print: a number.
    glyphs = np.zeros((60, 200), np.uint8)
    glyphs[10:25, 10:44] = 1
    glyphs[35:50, 10:35] = 1
    gray = np.full(glyphs.shape, 255, np.uint8)
    for x0, x1 in ((10, 16), (19, 25), (28, 34), (37, 44)):
        gray[10:25, x0:x1] = 0
    for x0, x1 in ((10, 21), (24, 35)):
        gray[35:50, x0:x1] = 0
    word, number = sorted(find_tokens(glyphs, 15.0, gray), key=lambda t: t.box[1])
    assert word.word and not word.number and word.glyphs == 4
    assert number.number and not number.word and number.glyphs == 2


def test_a_caption_above_the_table_is_no_missed_row() -> None:
    # A 3x3 lattice; above it, a caption whose letters passed for digits
    # (two in one column's span), or a row of numbers the grid left out
    # (one a column).
    numbers = [_token(x, y, 16, 20) for y in (100, 140, 180) for x in (10, 110, 210)]
    rows, cols = [90.0, 130.0, 170.0, 210.0], [0.0, 80.0, 180.0, 280.0]
    caption = [_token(x, 70, 8, 20) for x in (10, 40, 110, 140, 215)]
    assert score_grid([*numbers, *caption], [], rows, cols).missed == 0
    row = [_token(x, 60, 16, 20) for x in (10, 110, 210)]
    assert score_grid([*numbers, *row], [], rows, cols).missed == 3
    # A column left out on the right, its numbers of two digits set a little
    # apart, is still a missed column.
    column = [_token(x, y, 8, 20) for y in (100, 140, 180) for x in (300, 310)]
    assert score_grid([*numbers, *column], [], rows, cols).missed == 6


def test_a_structure_that_crowds_numbers_gives_way_to_a_lattice_that_parts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rules between rows only, and two columns with no rule between them
    # taken for one: the structure holds two numbers in each of four
    # cells, the lattice each number in a cell of its own, with the same
    # whole-line faults (none). The lattice is the table; against a
    # structure that crowds one cell only, the structure stays.
    structural = ([0.0, 40.0, 80.0, 120.0, 160.0], [0.0, 120.0, 180.0], "structured")
    lattice = ([0.0, 40.0, 80.0, 120.0, 160.0], [0.0, 60.0, 120.0, 180.0])
    for crowded, kept in ((4, "lattice"), (1, "structured")):
        mine = GridScore(12, 0, crowded, 0, 0, 0)
        assert _chosen(monkeypatch, structural, lattice, mine, GridScore(12, 0, 0, 0, 0, 0)) == kept


def test_a_line_of_prose_parts_the_numbers_above_it_from_the_table() -> None:
    # A heading whose letters pass for a number, two row pitches above a
    # table, with a sentence between (a page's "Results" and "The wheel was
    # spun 11 times today."): the heading is no row of the table. Without
    # the sentence, a line two pitches up is a row with an empty one between.
    rows = [[_token(x, y, 16, 20) for x in (10, 110, 210)] for y in (120, 150, 180, 210)]
    heading = [_token(12, 60, 14, 20)]
    sentence = [Token((x, 92, x + 50, 110), 4, False, True, 1.0) for x in (10, 70, 130)] + [
        _token(190, 92, 16, 18)
    ]
    assert prose_lines([sentence]) == (101.0,)
    assert prose_lines([rows[0]]) == ()
    lines = [heading, *rows]
    assert len(pick_block(lines)) == 5
    assert [line[0].box[1] for line in pick_block(lines, None, prose_lines([sentence]))] == [
        120,
        150,
        180,
        210,
    ]


def test_a_header_row_of_words_parts_a_caption_above_it_from_the_table() -> None:
    # A caption in italics ("... by spin") whose two words pass for numbers,
    # then a header row ("Spin", "Dozen": one word, one token that is
    # neither, no number), then the table. Headers lead a table: the
    # caption line above one is no row of it.
    rows = [[_token(x, y, 16, 20) for x in (10, 110)] for y in (120, 155, 190, 225)]
    caption = [_token(10, 54, 16, 13), _token(110, 54, 16, 13)]
    header = [Token((88, 77, 129, 87), 5, False, True, 1.0), Token((29, 77, 56, 93), 2, False)]
    assert prose_lines([header]) == (83.5,)
    assert prose_lines([[*rows[0], Token((150, 120, 200, 140), 5, False, True, 1.0)]]) == ()
    lines = [caption, *rows]
    assert len(pick_block(lines)) == 5
    assert len(pick_block(lines, None, prose_lines([header]))) == 4


def _glyph_token(x: int, y: int, glyphs: int) -> Token:
    return Token((x, y, x + 8 * glyphs, y + 20), glyphs, True, False, 1.0)


def test_a_first_row_of_column_letters_is_dropped() -> None:
    # A spreadsheet: a first row of eight single letters (A-H), then rows of
    # numbers 0-36, mostly two digits. Eight single glyphs in a row are a
    # rare draw from that body; from a body of mostly one-digit numbers (a
    # puzzle) they are not, and neither is a first row of mixed numbers.
    xs = [10 + 50 * c for c in range(8)]
    rows, cols = [0.0, 40.0, 80.0, 120.0, 160.0], [0.0, *(50.0 * (c + 1) for c in range(8))]
    letters = [_glyph_token(x, 10, 1) for x in xs]
    mostly_two = [
        _glyph_token(x, y, 1 if (x + y) % 3 == 0 else 2) for y in (50, 90, 130) for x in xs
    ]
    assert drop_letter_header([*letters, *mostly_two], rows, cols) == rows[1:]
    mostly_one = [
        _glyph_token(x, y, 2 if (x + y) % 3 == 0 else 1) for y in (50, 90, 130) for x in xs
    ]
    assert drop_letter_header([*letters, *mostly_one], rows, cols) == rows
    mixed = [_glyph_token(x, 10, 1 + c % 2) for c, x in enumerate(xs)]
    assert drop_letter_header([*mixed, *mostly_two], rows, cols) == rows
    # A first row with three columns filled is no header of letters.
    assert drop_letter_header([*letters[:3], *mostly_two], rows, cols) == rows


def test_a_fill_edge_that_hugs_the_first_rows_text_is_no_outer_edge() -> None:
    # Rows of text 20 px tall, 40 px apart (a gap of 20, half a gap 10).
    # Above the first row, a fill edge 4 px from its text: the top of a
    # row of badge pills, and cut there, the pills are cut through; the
    # edge goes half a gap out instead. A fill edge 9 px out (a tinted
    # row's own top), or a rule however near, is the edge.
    from gridreader.grid.lattice import _edges

    bands = [(100, 120), (140, 160), (180, 200)]
    assert _edges(bands, [96.0], 10.0, True, rules=[])[0] == 90.0
    assert _edges(bands, [91.0], 10.0, True, rules=[])[0] == 91.0
    assert _edges(bands, [96.0], 10.0, True, rules=[96.0])[0] == 96.0
    # Below the last row alike.
    assert _edges(bands, [204.0], 10.0, True, rules=[])[-1] == 210.0


LIBERATION = Path("/usr/share/fonts/truetype/liberation")


@pytest.mark.parametrize("size", [16, 20])
def test_one_digit_numbers_weigh_as_the_rest_and_bold_weighs_more(size: int) -> None:
    # A borderless two-column table whose first row is "8 8": an outline
    # map fills the small counters of an "8", and that first row once
    # weighed 1.75 times the body and was dropped as a bold header.
    regular = ImageFont.truetype(str(LIBERATION / "LiberationSans-Regular.ttf"), size)
    bold = ImageFont.truetype(str(LIBERATION / "LiberationSans-Bold.ttf"), size)
    rows = [("8", "8"), ("11", "11"), ("10", ""), ("6", "3"), ("4", "2"), ("27", "4")]
    pitch = 2 * size + 8

    def lines_of(first_font: ImageFont.FreeTypeFont) -> list[list[Token]]:
        img = Image.new("RGB", (6 * size, pitch * (len(rows) + 1)), "white")
        d = ImageDraw.Draw(img)
        for r, pair in enumerate(rows):
            for c, text in enumerate(pair):
                font = first_font if r == 0 else regular
                d.text(
                    (size // 2 + 3 * size * c, size // 2 + pitch * r), text, font=font, fill="black"
                )
        gray = to_gray(np.asarray(img))
        maps = measure_ink(np.asarray(img), gray)
        lines = number_lines(group_lines(find_tokens(maps.glyphs, maps.text_h, gray), maps.text_h))
        assert len(lines) == len(rows)
        return lines

    lines = lines_of(regular)
    assert len(pick_block(lines)) == len(rows)
    body = np.median([t.weight for line in lines[1:] for t in line])
    assert np.median([t.weight for t in lines[0]]) < 1.15 * body
    heavy = lines_of(bold)
    assert np.median([t.weight for t in heavy[0]]) >= 1.3 * body
    assert len(pick_block(heavy)) == len(rows) - 1


def test_an_empty_row_only_its_padding_tall_is_a_row() -> None:
    # A borderless web table: rows 40 px apart, and an empty row whose
    # padding alone (16 px) sets the last two lines 56 px apart. Lines set
    # apart by 1.4 pitches among steps that vary (handwriting) stay parted.
    steps = np.array([40.0] * 9 + [56.0])
    assert padding_row(56.0, steps)
    # A line whose numbers were missed leaves a whole-pitch step among them.
    assert padding_row(132.0, np.array([90.0, 90.0, 90.0, 181.0, 89.0, 132.0]))
    assert not padding_row(80.0, np.array([40.0] * 9 + [80.0]))
    assert not padding_row(56.0, np.array([34.0, 44.0, 40.0, 37.0, 46.0, 56.0]))
    img = Image.new("RGB", (300, 520), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 16)
    values = [[(r * 11 + c * 7) % 37 for c in range(3)] for r in range(10)]
    for r, row in enumerate([*values, None, [None, 1, 14]]):
        y = 20 + 40 * r - (24 if r == 11 else 0)
        for c, v in enumerate(row or []):
            if v is not None:
                d.text((20 + 70 * c, y), str(v), font=font, fill="black")
    grid = find_grid(np.asarray(img))
    assert (len(grid.row_edges) - 1, len(grid.col_edges) - 1) == (12, 3)


def test_a_missed_row_is_weighed_as_a_line() -> None:
    # A last line of "1" and "14" under the grid: a crisp vertical "1"
    # alone weighs 1.35 times the body, but the line is no bold header.
    body = [
        Token((x, y, x + 16, y + 14), 2, True, False, 1.38)
        for x in (20, 90, 160)
        for y in (20, 60, 100, 140)
    ]
    below = [
        Token((95, 180, 100, 194), 1, True, False, 1.86),
        Token((160, 180, 176, 194), 2, True, False, 1.43),
    ]
    rows, cols = [0.0, 40.0, 80.0, 120.0, 160.0], [0.0, 60.0, 130.0, 200.0]
    assert score_grid([*body, *below], [], rows, cols).missed == 2


def test_a_row_past_a_padding_only_empty_row_is_missed_by_a_grid_without_it() -> None:
    # Rows 40 px apart; a first row whose numbers sit 1.2 pitches above
    # the grid's top edge (an empty row only its padding tall between):
    # a grid without it missed a row.
    body = [
        Token((x, y, x + 16, y + 14), 2, True, False, 1.0)
        for x in (20, 80)
        for y in (113, 153, 193, 233)
    ]
    first = [Token((x, 45, x + 16, 59), 2, True, False, 1.0) for x in (20, 80)]
    rows, cols = [100.0, 140.0, 180.0, 220.0, 260.0], [0.0, 60.0, 120.0]
    assert score_grid([*body, *first], [], rows, cols).missed == 2
    far = [Token((x, 25, x + 16, 39), 2, True, False, 1.0) for x in (20, 80)]
    assert score_grid([*body, *far], [], rows, cols).missed == 0


def test_an_empty_coloured_row_in_a_short_table_is_a_row() -> None:
    # Three rows of numbers and, between the last two, an empty row of its
    # own colour (a "danger" row), shorter than the others: the short
    # table's pitch is the median of two steps, one of them the empty
    # row's, so its gap is only 1.14 pitches; its two fill edges stand clear
    # of the text around them.
    img = Image.new("RGB", (130, 240), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 20)
    d.rectangle((15, 148, 114, 173), fill=(240, 150, 155))
    d.rectangle((15, 174, 114, 234), fill=(60, 150, 110))
    d.line((15, 78, 114, 78), fill=(225, 225, 225))
    for y, pair, colour in (
        (30, ("32", "5"), "black"),
        (100, ("31", "31"), "black"),
        (194, ("22", "10"), "white"),
    ):
        for x, text in zip((25, 75), pair, strict=True):
            d.text((x, y), text, font=font, fill=colour)
    grid = find_grid(np.asarray(img))
    assert (len(grid.row_edges) - 1, len(grid.col_edges) - 1) == (4, 2)

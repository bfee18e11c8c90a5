"""Which end rows of a read table are not table (a header of words, a lone
blank row), by hand-worked cases."""

from __future__ import annotations

import numpy as np

from gridreader.pipeline import stray_rows

SURE = [0.99, 1.0, 0.98, 1.0, 0.97]


def _none(conf: np.ndarray) -> np.ndarray:
    """No cell read as empty."""
    return np.zeros(conf.shape, bool)


def test_an_unsure_header_over_a_sure_body_is_text() -> None:
    conf = np.array([[0.5, 0.6, 0.99, 0.4, 0.7], SURE, SURE, SURE])
    assert stray_rows(conf, _none(conf)) == (1, 0)


def test_an_unsure_footer_is_text() -> None:
    conf = np.array([SURE, SURE, SURE, [0.3, 0.2, 0.8, 0.96, 0.5]])
    assert stray_rows(conf, _none(conf)) == (0, 1)


def test_a_hard_table_keeps_its_first_row() -> None:
    # Faint handwriting: the body is unsure too (its 5% floor is 0.45), so a
    # first row of typical confidence (median 0.7) is no different from it.
    body = [0.45, 0.9, 0.6, 0.99, 0.7]
    conf = np.array([[0.6, 0.7, 0.95, 0.5, 0.8], body, body[::-1], body])
    assert stray_rows(conf, _none(conf)) == (0, 0)


def test_one_unsure_cell_does_not_make_a_row_text() -> None:
    # One cell of five under the body's floor (mean 0.83): a single hard cell
    # in an otherwise sure row.
    conf = np.array([[0.99, 0.2, 1.0, 0.99, 0.98], SURE, SURE, SURE])
    assert stray_rows(conf, _none(conf)) == (0, 0)


def test_two_row_tables_are_left_alone() -> None:
    # With one other row there is no body to compare with.
    assert stray_rows(
        np.array([[0.3, 0.4, 0.5], [1.0, 1.0, 1.0]]),
        _none(np.array([[0.3, 0.4, 0.5], [1.0, 1.0, 1.0]])),
    ) == (0, 0)


def test_a_lone_blank_end_row_is_padding() -> None:
    conf = np.array([SURE, SURE, SURE, SURE])
    blank = np.zeros(conf.shape, bool)
    blank[3] = True
    assert stray_rows(conf, blank) == (0, 1)
    blank[0] = True
    # Two blank rows: a sheet not yet filled in, kept whole.
    assert stray_rows(conf, blank) == (0, 0)
    # Blank cells scattered through the rows are cells, not padding.
    scattered = np.eye(4, 5, dtype=bool)
    assert stray_rows(conf, scattered) == (0, 0)


def test_a_sparse_table_keeps_a_blank_end_row() -> None:
    # A puzzle grid: most cells blank, and a first row without givens.
    conf = np.ones((4, 5))
    blank = np.array(
        [[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 1, 1]], dtype=bool
    )
    assert stray_rows(conf, blank) == (0, 0)


def test_a_handwritten_first_row_with_two_hard_cells_is_kept() -> None:
    # Two hard cells of four (mean 0.79) are no header of words: half the
    # row is under the body's floor, not most of it.
    conf = np.array([[0.43, 0.91, 0.97, 0.84], *[[0.99, 0.9, 1.0, 0.95]] * 5])
    assert stray_rows(conf, _none(conf)) == (0, 0)


def test_two_lines_of_a_caption_over_the_table_are_text() -> None:
    # A caption's two lines fill the first cells only: the rest of their
    # cells are read as empty, and surely; the words are read unsurely.
    conf = np.array([[0.42, 0.54, 1.0, 1.0, 1.0], [0.28, 0.17, 1.0, 1.0, 1.0], *[SURE] * 8])
    blank = np.zeros(conf.shape, bool)
    blank[0:2, 2:] = True
    assert stray_rows(conf, blank) == (2, 0)
    # One unsure word beside blank cells is too little to call a row text.
    lone = blank.copy()
    lone[0:2, 1] = True
    assert stray_rows(conf, lone) == (0, 0)


def test_a_header_of_column_letters_is_text() -> None:
    # Confidences of a spreadsheet's letters A-H over a printed body, as the
    # network read them on a fresh page: median 0.855, but mean 0.81.
    letters = [0.53, 0.63, 0.71, 0.82, 0.89, 0.95, 0.98, 1.0]
    conf = np.array([letters, *[[0.99, 1.0, 0.98, 1.0, 0.97, 1.0, 0.99, 1.0]] * 6])
    assert stray_rows(conf, _none(conf)) == (1, 0)


def test_a_handwritten_row_read_fairly_surely_is_kept() -> None:
    # A tally's first row (from a fresh photo) whose cells all sit a little
    # under a sure body's floor: no cell is read very unsurely (mean 0.92).
    conf = np.array([[0.88, 0.9, 0.99, 0.9], *[[1.0, 0.99, 1.0, 0.97]] * 6])
    assert stray_rows(conf, _none(conf)) == (0, 0)


def test_a_card_title_with_a_sure_number_over_a_header_is_text() -> None:
    # "Last 246 results" over a row of day names, from a fresh page: the
    # title's number is read surely (mean 0.62), and the words below pull the
    # body's floor down to about 0.6; the title's median cell (0.46) is
    # under it all the same.
    title = [0.41, 1.0, 0.46, *[1.0] * 7]
    words = [0.68, 0.6, 0.34, 0.46, 0.51, 0.85, 0.99, 0.19, 0.95, 0.8]
    conf = np.array([title, words, *[[1.0, 0.99, 1.0, 0.98, 1.0] * 2] * 7])
    blank = np.zeros(conf.shape, bool)
    blank[0, 3:] = True
    assert stray_rows(conf, blank) == (2, 0)

"""Which end rows of a read table are text (a header of words), by hand-worked cases."""

from __future__ import annotations

import numpy as np

from gridreader.pipeline import text_rows

SURE = [0.99, 1.0, 0.98, 1.0, 0.97]


def test_an_unsure_header_over_a_sure_body_is_text() -> None:
    conf = np.array([[0.5, 0.6, 0.99, 0.4, 0.7], SURE, SURE, SURE])
    assert text_rows(conf) == (1, 0)


def test_an_unsure_footer_is_text() -> None:
    conf = np.array([SURE, SURE, SURE, [0.3, 0.2, 0.8, 0.96, 0.5]])
    assert text_rows(conf) == (0, 1)


def test_a_hard_table_keeps_its_first_row() -> None:
    # Faint handwriting: the body is unsure too (its 5% floor is 0.45), so a
    # first row of typical confidence (median 0.7) is no different from it.
    body = [0.45, 0.9, 0.6, 0.99, 0.7]
    conf = np.array([[0.6, 0.7, 0.95, 0.5, 0.8], body, body[::-1], body])
    assert text_rows(conf) == (0, 0)


def test_one_unsure_cell_does_not_make_a_row_text() -> None:
    # Median 0.99: a single hard cell in an otherwise sure row.
    conf = np.array([[0.99, 0.2, 1.0, 0.99, 0.98], SURE, SURE, SURE])
    assert text_rows(conf) == (0, 0)


def test_two_row_tables_are_left_alone() -> None:
    # With one other row there is no body to compare with.
    assert text_rows(np.array([[0.3, 0.4, 0.5], [1.0, 1.0, 1.0]])) == (0, 0)

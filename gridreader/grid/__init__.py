"""Grid finding: from a picture to rows x cols of cell boxes.

The public entry points are :func:`find_grid` (a picture to a
:class:`~gridreader.types.Grid`) and :func:`cell_boxes`; the stages live in
their own modules: ``ink`` (evidence maps), ``locate`` (the table's region),
``edges`` and ``separators`` (cuts along one axis), ``bounds`` (outer rows and
columns), ``rectify`` (straightening), ``find`` (the search that ties them),
``hint`` (the best grid of a known shape) and ``cells`` (boxes and crops).
"""

from __future__ import annotations

from gridreader.grid.cells import cell_boxes, cell_cuts, cut_cell, cut_cells, rectify_image
from gridreader.grid.find import find_grid

__all__ = ["cell_boxes", "cell_cuts", "cut_cell", "cut_cells", "find_grid", "rectify_image"]

"""The project's files on disk, one module per format.

Each module alone knows its format's file names and fields, and both writes and
parses it; batch, nightly, eval, capture and the labeller call these functions:

- :mod:`gridreader.formats.tables`: ``OUT/STEM.csv``, the table read from each image;
- :mod:`gridreader.formats.review`: ``OUT/review/`` (cell crops, row strips, sidecars);
- :mod:`gridreader.formats.records`: ``OUT/.gridreader/STEM.json``, batch's per-image records;
- :mod:`gridreader.formats.report`: ``OUT/report.jsonl``, one line per image;
- :mod:`gridreader.formats.shots`: capture's screenshots and their sidecars (names, files
  and fields; capture fills a sidecar in, :mod:`gridreader.sidecar` judges its geometry).
"""

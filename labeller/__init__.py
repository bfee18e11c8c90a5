"""The labeller: a local web app for correcting the model's uncertain cells.

``gridreader batch`` leaves the cells it is unsure of in ``OUT/review/``;
``gridreader label OUT/review`` serves them one by one (or in grids of one class),
and every answer is committed to a SQLite label store
(:class:`labeller.store.LabelStore`) that the fine-tune code reads back with
``iter_samples()``.
"""

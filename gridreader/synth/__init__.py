"""Synthetic training and test data: MNIST loading, fonts, cell crops, table images.

Submodules are imported on demand (``gridreader.synth.cells`` ...) so that loading
one does not pull in the others' dependencies.
"""

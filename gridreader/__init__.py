"""gridreader: pictures of number tables in, CSV tables out."""

__version__ = "0.1.0"

from gridreader.cli import entry

entry()

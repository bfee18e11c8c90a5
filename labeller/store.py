"""The label store: one SQLite file holding every label and the crop it names.

Each label is committed in its own transaction the moment it is entered, in WAL
mode with ``synchronous=FULL``, so killing the browser, the server or the
machine loses at most the label being typed. Labels are keyed by the crop's
sha256: the same crop is never asked twice, and two writers labelling the same
crop resolve to the last write. The crop's PNG bytes are kept in the row, so
the labels stay usable after the review folder is deleted.

Every write is also appended to ``events``; undo marks a client's latest write
(or grid confirmation) undone and restores whatever label the crop had before.

A connection is opened per call, so a :class:`LabelStore` can be shared by
threads and by processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gridreader.classes import EMPTY, label_to_index
from gridreader.errors import DataError, LabelError

SCHEMA_VERSION = 1
DEFAULT_CLIENT = "api"
DEFAULT_TIMEOUT_S = 10.0

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_CLIENT_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_LABEL_TEXT_RE = re.compile(r"[0-9]{1,6}|e|-|empty")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS labels (
        sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
        png BLOB NOT NULL,
        path TEXT NOT NULL,
        image TEXT NOT NULL,
        row INTEGER NOT NULL,
        col INTEGER NOT NULL,
        model TEXT NOT NULL,
        guess TEXT NOT NULL,
        confidence REAL NOT NULL,
        classes TEXT NOT NULL,
        label TEXT NOT NULL,
        client TEXT NOT NULL,
        labelled_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL,
        label TEXT NOT NULL,
        client TEXT NOT NULL,
        batch TEXT NOT NULL,
        created_at TEXT NOT NULL,
        undone_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_client ON events (client, undone_at, id)",
    "CREATE INDEX IF NOT EXISTS events_by_sha ON events (sha256, id)",
    "CREATE INDEX IF NOT EXISTS events_by_batch ON events (batch)",
)
_TABLES = {"labels", "events"}


@dataclass(frozen=True)
class CropRecord:
    """A crop as it is stored with its label: bytes, origin and the model's reading."""

    sha256: str
    png: bytes
    path: str
    image: str
    row: int
    col: int
    model: str
    guess: str
    confidence: float
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Label:
    """One stored label, with the crop it belongs to."""

    sha256: str
    label: str
    png: bytes
    path: str
    image: str
    row: int
    col: int
    model: str
    guess: str
    confidence: float
    client: str
    labelled_at: str


@dataclass(frozen=True)
class Undone:
    """One label taken back by :meth:`LabelStore.undo`.

    Attributes:
        sha256: the crop.
        label: the label that was undone.
        now: the crop's label after the undo (an older label), or ``None``.
    """

    sha256: str
    label: str
    now: str | None


def is_sha256(text: object) -> bool:
    """Whether ``text`` is a lowercase sha256 hex digest."""
    return isinstance(text, str) and _SHA_RE.fullmatch(text) is not None


def describe_classes(classes: Sequence[str]) -> str:
    """``("0", "1", "2", "7", "empty")`` -> ``"0-2, 7, empty"``."""
    numbers = sorted(int(c) for c in classes if c != EMPTY)
    parts: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
        i = j + 1
    if EMPTY in classes:
        parts.append(EMPTY)
    return ", ".join(parts)


def normalize_label(label: object, classes: Sequence[str]) -> str:
    """The class name for a typed answer: ``"017"`` -> ``"17"``, ``"e"``/``"-"`` -> ``"empty"``.

    Raises:
        LabelError: the answer is not a number or *empty*, or not one of ``classes``.
    """
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise LabelError(f"label {label!r} must be text or an integer")
    text = str(label).strip().lower()
    if not _LABEL_TEXT_RE.fullmatch(text):
        raise LabelError(f"label {label!r} is not a number or 'empty' (e)")
    try:
        index = label_to_index(text, tuple(classes))
    except DataError as e:
        raise LabelError(f"{e} ({describe_classes(classes)})") from None
    return classes[index]


def check_client(client: object) -> str:
    """A client id (letters, digits, ``_.:-``, at most 64), as given.

    Raises:
        LabelError: anything else.
    """
    if not isinstance(client, str) or not _CLIENT_RE.fullmatch(client):
        raise LabelError(f"client id {client!r} must be 1-64 letters, digits or _.:-")
    return client


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class LabelStore:
    """The SQLite label store.

    Args:
        path: the ``.db`` file; created (with its folder's consent) if missing.
        timeout: seconds to wait for another writer before giving up.
        create: if false, a missing file is an error instead of a new store.

    Raises:
        LabelError: the file is not a SQLite label store, is locked beyond
            ``timeout``, is from a newer version, or cannot be opened.
    """

    def __init__(
        self, path: str | Path, *, timeout: float = DEFAULT_TIMEOUT_S, create: bool = True
    ) -> None:
        self._path = Path(path)
        self._timeout = float(timeout)
        if self._path.is_dir():
            raise LabelError(f"{self._path}: is a folder, not a label store file")
        if not create and not self._path.is_file():
            raise LabelError(f"{self._path}: no such label store")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LabelError(f"{self._path}: cannot create its folder ({e.strerror or e})") from e
        self._init_schema()

    @property
    def path(self) -> Path:
        """The store's file."""
        return self._path

    # -- connections -------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise self._error(e) from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            # FULL: a commit survives power loss too, not just a killed process.
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        except sqlite3.Error as e:
            raise self._error(e) from e
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _error(self, e: sqlite3.Error) -> LabelError:
        text = str(e) or type(e).__name__
        if "locked" in text or "busy" in text:
            why = f"is locked by another writer (waited {self._timeout:g} s)"
        elif "not a database" in text or "malformed" in text:
            why = "is not a SQLite label store"
        elif "unable to open" in text:
            why = "cannot be opened"
        else:
            why = "label store error"
        return LabelError(f"{self._path}: {why} ({text})")

    def _init_schema(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise LabelError(
                    f"{self._path}: label store schema v{version} is newer than this "
                    f"gridreader's v{SCHEMA_VERSION}"
                )
            if version == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = {
                    r[0]
                    for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    if not str(r[0]).startswith("sqlite_")
                }
                if tables and not tables <= _TABLES:
                    raise LabelError(
                        f"{self._path}: is a SQLite file but not a label store "
                        f"(tables: {', '.join(sorted(tables))})"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------

    def add(self, crop: CropRecord, label: str | int, *, client: str = DEFAULT_CLIENT) -> str:
        """Store (or replace) the label of one crop and commit it.

        Args:
            crop: the crop, its bytes and what the model said about it.
            label: a class name or answer: ``"17"``, ``17``, ``"empty"``, ``"e"``, ``"-"``.
            client: who labels; :meth:`undo` takes back only this client's labels.

        Returns:
            The stored class name (``"17"`` or ``"empty"``).

        Raises:
            LabelError: the label is not one of ``crop.classes``, the crop's
                bytes do not match its sha256, or the store cannot be written.
        """
        return self.add_many([crop], label, client=client)

    def add_many(
        self, crops: Sequence[CropRecord], label: str | int, *, client: str = DEFAULT_CLIENT
    ) -> str:
        """Give many crops the same label in one transaction (one undo step).

        Raises:
            LabelError: as :meth:`add`, for any of the crops; then none is stored.
        """
        check_client(client)
        if not crops:
            raise LabelError("no crops to label")
        value = ""
        for crop in crops:
            _check_record(crop)
            value = normalize_label(label, crop.classes)
        now = _now()
        batch = uuid.uuid4().hex
        with self._write() as conn:
            for crop in crops:
                conn.execute(
                    "INSERT INTO events (sha256, label, client, batch, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (crop.sha256, value, client, batch, now),
                )
                conn.execute(
                    "INSERT INTO labels (sha256, png, path, image, row, col, model, guess, "
                    "confidence, classes, label, client, labelled_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (sha256) DO UPDATE SET path = excluded.path, "
                    "image = excluded.image, row = excluded.row, col = excluded.col, "
                    "model = excluded.model, guess = excluded.guess, "
                    "confidence = excluded.confidence, classes = excluded.classes, "
                    "label = excluded.label, client = excluded.client, "
                    "labelled_at = excluded.labelled_at",
                    (
                        crop.sha256,
                        crop.png,
                        crop.path,
                        crop.image,
                        crop.row,
                        crop.col,
                        crop.model,
                        crop.guess,
                        crop.confidence,
                        json.dumps(list(crop.classes)),
                        value,
                        client,
                        now,
                    ),
                )
        return value

    def undo(self, *, client: str = DEFAULT_CLIENT) -> list[Undone]:
        """Take back ``client``'s latest write (a label, or a whole grid confirmation).

        A crop whose label is undone gets back the label it had before (from any
        client), or becomes unlabelled again.

        Returns:
            What was undone, empty if the client has nothing left to undo.
        """
        check_client(client)
        out: list[Undone] = []
        now = _now()
        with self._write() as conn:
            row = conn.execute(
                "SELECT batch FROM events WHERE client = ? AND undone_at IS NULL "
                "ORDER BY id DESC LIMIT 1",
                (client,),
            ).fetchone()
            if row is None:
                return []
            batch = row[0]
            events = conn.execute(
                "SELECT sha256, label FROM events WHERE batch = ? AND undone_at IS NULL "
                "ORDER BY id",
                (batch,),
            ).fetchall()
            conn.execute(
                "UPDATE events SET undone_at = ? WHERE batch = ? AND undone_at IS NULL",
                (now, batch),
            )
            for sha, label in events:
                prev = conn.execute(
                    "SELECT label, client, created_at FROM events "
                    "WHERE sha256 = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
                    (sha,),
                ).fetchone()
                if prev is None:
                    conn.execute("DELETE FROM labels WHERE sha256 = ?", (sha,))
                    out.append(Undone(sha256=sha, label=label, now=None))
                else:
                    conn.execute(
                        "UPDATE labels SET label = ?, client = ?, labelled_at = ? WHERE sha256 = ?",
                        (prev[0], prev[1], prev[2], sha),
                    )
                    out.append(Undone(sha256=sha, label=label, now=prev[0]))
        return out

    # -- reading -----------------------------------------------------------

    def labelled_hashes(self) -> set[str]:
        """The sha256 of every labelled crop."""
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT sha256 FROM labels")}

    def labels(self) -> dict[str, str]:
        """Every crop's current label, by sha256."""
        with self._connect() as conn:
            return dict(conn.execute("SELECT sha256, label FROM labels").fetchall())

    def count(self) -> int:
        """How many crops are labelled."""
        with self._connect() as conn:
            return int(conn.execute("SELECT count(*) FROM labels").fetchone()[0])

    def event_count(self) -> int:
        """How many label writes were ever made, undone ones included."""
        with self._connect() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def get(self, sha256: str) -> Label | None:
        """The label of one crop, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_LABEL_COLUMNS} FROM labels WHERE sha256 = ?", (sha256,))
            found = row.fetchone()
        return None if found is None else Label(*found)

    def crop_png(self, sha256: str) -> bytes | None:
        """The stored PNG bytes of a labelled crop, or ``None``."""
        with self._connect() as conn:
            row = conn.execute("SELECT png FROM labels WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def iter_labels(self) -> Iterator[Label]:
        """Every stored label with its crop, ordered by sha256 (stable across runs)."""
        with self._connect() as conn:
            cursor = conn.execute(f"SELECT {_LABEL_COLUMNS} FROM labels ORDER BY sha256")
            while rows := cursor.fetchmany(256):
                for row in rows:
                    yield Label(*row)

    def iter_samples(self) -> Iterator[tuple[bytes, str]]:
        """``(crop PNG bytes, label)`` pairs for training, label ``"0".."36"`` or ``"empty"``."""
        for lab in self.iter_labels():
            yield lab.png, lab.label


def read_labelled(db: Path) -> Iterator[tuple[str, bytes, str]]:
    """A store's labels for training: ``(where, crop PNG bytes, label)``.

    ``where`` names the crop in messages (``DB:SHA256-PREFIX``); the label is
    ``"0".."36"``-style text or ``"empty"``. This is fine-tuning's reader
    (``gridreader.train.LabelReader``).

    Raises:
        LabelError: the store cannot be opened or read.
    """
    for png, label in LabelStore(db).iter_samples():
        yield f"{db}:{hashlib.sha256(png).hexdigest()[:12]}", png, label


_LABEL_COLUMNS = (
    "sha256, label, png, path, image, row, col, model, guess, confidence, client, labelled_at"
)


def _check_record(crop: CropRecord) -> None:
    if not is_sha256(crop.sha256):
        raise LabelError(f"crop {crop.path}: {crop.sha256!r} is not a sha256 hex digest")
    if hashlib.sha256(crop.png).hexdigest() != crop.sha256:
        raise LabelError(f"crop {crop.path}: bytes do not match sha256 {crop.sha256[:12]}…")

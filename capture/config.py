"""The capture configuration: a TOML file read into frozen dataclasses.

Every problem is reported as one ``ConfigError`` line that names the file and the
key, e.g. ``nightly.toml: target[1].url: missing``. Target indices are 0-based, in
the order of the ``[[target]]`` blocks.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gridreader.errors import ConfigError
from gridreader.types import Shape, parse_shape

REPORT_NAME = "capture-report.jsonl"
"""The capture report written in each output folder, one line per target."""

DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
ENV_CHROMIUM = "GRIDREADER_CHROMIUM"
ENV_CHROMEDRIVER = "GRIDREADER_CHROMEDRIVER"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_SCHEMES = ("http://", "https://", "file://")

_TOP_KEYS = frozenset({"browser", "target"})
_BROWSER_KEYS = frozenset(
    {"window", "scale", "timeout_s", "retries", "retry_backoff_s", "chromium", "chromedriver"}
)
_TARGET_KEYS = frozenset({"name", "url", "table", "wait_for", "login", "before", "pages", "shape"})
_LOGIN_KEYS = frozenset({"url", "username", "password", "submit", "username_env", "password_env"})
_PAGES_KEYS = frozenset({"next", "count"})
STEP_KINDS = ("click", "scroll", "wait_s")


@dataclass(frozen=True)
class BrowserConfig:
    """How Chromium is started. ``window`` is the viewport in CSS px.

    ``retries`` further attempts are made for a target after a browser crash
    or a network failure; before the n-th retry after a network failure the
    capture waits ``retry_backoff_s * 2 ** (n - 1)`` seconds.
    """

    window: tuple[int, int] = (1400, 1000)
    scale: float = 1.0
    timeout_s: float = 20.0
    retries: int = 2
    retry_backoff_s: float = 2.0
    chromium: str | None = None
    chromedriver: str | None = None


@dataclass(frozen=True)
class LoginConfig:
    """A login form filled before the target page; credentials come from env vars."""

    url: str
    username: str
    password: str
    submit: str
    username_env: str
    password_env: str


@dataclass(frozen=True)
class Step:
    """One step run before the capture: ``click`` / ``scroll`` a selector, or ``wait_s``."""

    kind: str
    selector: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class PagesConfig:
    """A paged table: ``count`` captures with a click on ``next`` between them."""

    next: str
    count: int


@dataclass(frozen=True)
class TargetConfig:
    """One page to capture.

    Attributes:
        table: the element to capture; None captures the full page.
        wait_for: the selector to wait for; defaults to ``table`` (None: no wait).
        shape: ``(rows, cols)`` the table is known to have; written into each
            sidecar, where ``gridreader batch`` takes it as a shape hint.
    """

    name: str
    url: str
    table: str | None = None
    wait_for: str | None = None
    login: LoginConfig | None = None
    before: tuple[Step, ...] = ()
    pages: PagesConfig | None = None
    shape: Shape | None = None


@dataclass(frozen=True)
class CaptureConfig:
    """A whole configuration file.

    Attributes:
        source: the file it was read from (used in messages).
        extras: the raw values of the extra top-level keys the caller allowed.
    """

    source: str
    browser: BrowserConfig
    targets: tuple[TargetConfig, ...]
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def load_config(path: str | os.PathLike[str], extra_keys: Collection[str] = ()) -> CaptureConfig:
    """Read and validate a capture configuration file.

    Args:
        path: the TOML file.
        extra_keys: further top-level keys a caller (e.g. the nightly job) accepts;
            their raw values are returned in ``CaptureConfig.extras`` unchecked.

    Raises:
        ConfigError: unreadable file, bad TOML, or a missing, unknown or bad key.
    """
    label = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{label}: cannot read ({e.strerror or e})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{label}: invalid TOML ({str(e).splitlines()[0]})") from e
    return parse_config(raw, label, extra_keys)


def parse_config(
    raw: Mapping[str, Any], label: str, extra_keys: Collection[str] = ()
) -> CaptureConfig:
    """Validate an already parsed TOML document; see ``load_config``."""
    _check_keys(raw, _TOP_KEYS | frozenset(extra_keys), label, "")
    browser_raw = raw.get("browser", {})
    if not isinstance(browser_raw, dict):
        raise ConfigError(f"{label}: [browser]: expected a table")
    browser = _parse_browser(browser_raw, label)
    targets_raw = raw.get("target")
    if targets_raw is None:
        raise ConfigError(f"{label}: target: missing (add at least one [[target]])")
    if not isinstance(targets_raw, list) or not all(isinstance(t, dict) for t in targets_raw):
        raise ConfigError(f"{label}: target: expected an array of tables ([[target]])")
    if not targets_raw:
        raise ConfigError(f"{label}: target: missing (add at least one [[target]])")
    targets: list[TargetConfig] = []
    seen: set[str] = set()
    for i, t in enumerate(targets_raw):
        target = _parse_target(t, label, f"target[{i}]")
        if target.name in seen:
            raise ConfigError(f"{label}: target[{i}].name: duplicate name {target.name!r}")
        seen.add(target.name)
        targets.append(target)
    extras = {k: raw[k] for k in extra_keys if k in raw}
    return CaptureConfig(
        source=label,
        browser=browser,
        targets=tuple(targets),
        extras=MappingProxyType(extras),
    )


def select_targets(
    config: CaptureConfig, only: str | Sequence[str] | None = None
) -> tuple[TargetConfig, ...]:
    """The targets to run: all of them, or those named in ``only`` (config order).

    Raises:
        ConfigError: a name in ``only`` is not a target of the file.
    """
    if only is None:
        return config.targets
    names = [only] if isinstance(only, str) else list(only)
    known = {t.name for t in config.targets}
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{config.source}: --only {name}: no such target "
                f"(targets: {', '.join(t.name for t in config.targets)})"
            )
    wanted = set(names)
    return tuple(t for t in config.targets if t.name in wanted)


def resolve_binaries(browser: BrowserConfig, label: str = "capture") -> tuple[str, str]:
    """The Chromium and chromedriver paths: config, then env var, then default.

    Args:
        browser: the ``[browser]`` settings.
        label: the config file's name, for messages.

    Raises:
        ConfigError: a resolved path is not an executable file.
    """
    chromium = (
        browser.chromium
        or os.environ.get(ENV_CHROMIUM)
        or _default_binary(DEFAULT_CHROMIUM, "chromium")
    )
    driver = (
        browser.chromedriver
        or os.environ.get(ENV_CHROMEDRIVER)
        or _default_binary(DEFAULT_CHROMEDRIVER, "chromedriver")
    )
    for key, env, value in (
        ("chromium", ENV_CHROMIUM, chromium),
        ("chromedriver", ENV_CHROMEDRIVER, driver),
    ):
        if not (os.path.isfile(value) and os.access(value, os.X_OK)):
            raise ConfigError(
                f"{label}: [browser].{key}: {value} is not an executable file (set it or {env})"
            )
    return chromium, driver


def _default_binary(default: str, name: str) -> str:
    if os.path.exists(default):
        return default
    return shutil.which(name) or default


def _check_keys(table: Mapping[str, Any], allowed: Collection[str], label: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{label}: {where}{key}: unknown key")


def _parse_browser(raw: Mapping[str, Any], label: str) -> BrowserConfig:
    _check_keys(raw, _BROWSER_KEYS, label, "[browser].")
    defaults = BrowserConfig()
    window = raw.get("window", list(defaults.window))
    if (
        not isinstance(window, list)
        or len(window) != 2
        or not all(_is_int(v) and 64 <= v <= 10_000 for v in window)
    ):
        raise ConfigError(
            f"{label}: [browser].window: expected [width, height] integers (64 to 10000)"
        )
    scale = raw.get("scale", defaults.scale)
    if not _is_number(scale) or not 0 < scale <= 8:
        raise ConfigError(f"{label}: [browser].scale: expected a number above 0, at most 8")
    timeout_s = raw.get("timeout_s", defaults.timeout_s)
    if not _is_number(timeout_s) or not 0 < timeout_s <= 3600:
        raise ConfigError(f"{label}: [browser].timeout_s: expected seconds above 0, at most 3600")
    retries = raw.get("retries", defaults.retries)
    if not _is_int(retries) or not 0 <= retries <= 10:
        raise ConfigError(f"{label}: [browser].retries: expected an integer from 0 to 10")
    backoff = raw.get("retry_backoff_s", defaults.retry_backoff_s)
    if not _is_number(backoff) or not 0 <= backoff <= 600:
        raise ConfigError(f"{label}: [browser].retry_backoff_s: expected seconds from 0 to 600")
    paths = {}
    for key in ("chromium", "chromedriver"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{label}: [browser].{key}: expected a path string")
        paths[key] = value
    return BrowserConfig(
        window=(int(window[0]), int(window[1])),
        scale=float(scale),
        timeout_s=float(timeout_s),
        retries=int(retries),
        retry_backoff_s=float(backoff),
        chromium=paths["chromium"],
        chromedriver=paths["chromedriver"],
    )


def _parse_target(raw: Mapping[str, Any], label: str, where: str) -> TargetConfig:
    _check_keys(raw, _TARGET_KEYS, label, f"{where}.")
    name = _required_str(raw, "name", label, where)
    if not _NAME_RE.match(name):
        raise ConfigError(f"{label}: {where}.name: {name!r} may hold only letters, digits, - and _")
    url = _required_str(raw, "url", label, where)
    _check_url(url, label, f"{where}.url")
    table = _optional_str(raw, "table", label, where)
    wait_for = _optional_str(raw, "wait_for", label, where)
    login = None
    if "login" in raw:
        login = _parse_login(raw["login"], label, f"{where}.login")
    before: list[Step] = []
    if "before" in raw:
        steps = raw["before"]
        if not isinstance(steps, list):
            raise ConfigError(f"{label}: {where}.before: expected an array of tables")
        before = [_parse_step(s, label, f"{where}.before[{i}]") for i, s in enumerate(steps)]
    pages = None
    if "pages" in raw:
        pages = _parse_pages(raw["pages"], label, f"{where}.pages")
    shape = None
    if "shape" in raw:
        shape = _parse_shape(raw["shape"], label, f"{where}.shape")
    return TargetConfig(
        name=name,
        url=url,
        table=table,
        wait_for=wait_for if wait_for is not None else table,
        login=login,
        before=tuple(before),
        pages=pages,
        shape=shape,
    )


def _parse_shape(raw: object, label: str, where: str) -> Shape:
    if not isinstance(raw, str):
        raise ConfigError(f'{label}: {where}: expected a "ROWSxCOLS" string, e.g. "8x15"')
    try:
        return parse_shape(raw)
    except ValueError as e:
        raise ConfigError(f"{label}: {where}: {e}") from e


def _parse_login(raw: object, label: str, where: str) -> LoginConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: {where}: expected a table")
    _check_keys(raw, _LOGIN_KEYS, label, f"{where}.")
    values = {key: _required_str(raw, key, label, where) for key in sorted(_LOGIN_KEYS)}
    _check_url(values["url"], label, f"{where}.url")
    for key in ("username_env", "password_env"):
        if not _ENV_NAME_RE.match(values[key]):
            raise ConfigError(
                f"{label}: {where}.{key}: expected an environment variable name, "
                f"got {values[key]!r}"
            )
    return LoginConfig(**values)


def _parse_step(raw: object, label: str, where: str) -> Step:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: {where}: expected a table")
    _check_keys(raw, STEP_KINDS, label, f"{where}.")
    if len(raw) != 1:
        raise ConfigError(f"{label}: {where}: expected exactly one of {', '.join(STEP_KINDS)}")
    ((kind, value),) = raw.items()
    if kind == "wait_s":
        if not _is_number(value) or not 0 <= value <= 600:
            raise ConfigError(f"{label}: {where}.wait_s: expected seconds from 0 to 600")
        return Step(kind=kind, seconds=float(value))
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label}: {where}.{kind}: expected a CSS selector string")
    return Step(kind=kind, selector=value)


def _parse_pages(raw: object, label: str, where: str) -> PagesConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: {where}: expected a table")
    _check_keys(raw, _PAGES_KEYS, label, f"{where}.")
    nxt = _required_str(raw, "next", label, where)
    if "count" not in raw:
        raise ConfigError(f"{label}: {where}.count: missing")
    count = raw["count"]
    if not _is_int(count) or not 1 <= count <= 1000:
        raise ConfigError(f"{label}: {where}.count: expected an integer from 1 to 1000")
    return PagesConfig(next=nxt, count=int(count))


def _required_str(raw: Mapping[str, Any], key: str, label: str, where: str) -> str:
    if key not in raw:
        raise ConfigError(f"{label}: {where}.{key}: missing")
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label}: {where}.{key}: expected a non-empty string")
    return value


def _optional_str(raw: Mapping[str, Any], key: str, label: str, where: str) -> str | None:
    if key not in raw:
        return None
    return _required_str(raw, key, label, where)


def _check_url(url: str, label: str, where: str) -> None:
    if not url.startswith(_URL_SCHEMES) or any(c.isspace() for c in url):
        raise ConfigError(f"{label}: {where}: expected an http://, https:// or file:// URL")


def _is_int(value: object) -> bool:
    # TOML booleans are Python bools, which are ints; a flag is never a count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)

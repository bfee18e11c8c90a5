"""The capture configuration: defaults, validation messages, extra keys, ``--only``."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.config import (
    BrowserConfig,
    LoginConfig,
    PagesConfig,
    Step,
    load_config,
    resolve_binaries,
    select_targets,
)
from capture.run import redact_secrets
from gridreader.cli import main
from gridreader.errors import ConfigError
from gridreader.formats.shots import build_stem

GOOD_TARGET = '[[target]]\nname = "t1"\nurl = "http://127.0.0.1:9/x"\ntable = "#t"\n'
LOGIN = (
    '[target.login]\nurl = "http://127.0.0.1:9/login"\nusername = "#u"\npassword = "#p"\n'
    'submit = "button"\nusername_env = "GRID_USER"\npassword_env = "GRID_PASS"\n'
)


def write(tmp_path: Path, text: str, name: str = "nightly.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_config_is_read_with_defaults(tmp_path: Path) -> None:
    text = (
        "[browser]\ntimeout_s = 5\n"
        + GOOD_TARGET
        + LOGIN
        + '[[target.before]]\nclick = "#show-all"\n[[target.before]]\nwait_s = 1.5\n'
        + '[[target.before]]\nscroll = "#history"\n'
        + '[target.pages]\nnext = "a.next"\ncount = 3\n'
        + '[[target]]\nname = "whole_page-2"\nurl = "https://example.test/"\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.browser == BrowserConfig(timeout_s=5.0)
    assert config.browser.window == (1400, 1000) and config.browser.scale == 1.0
    assert config.browser.retries == 2
    first, second = config.targets
    assert first.wait_for == "#t"  # defaults to the table
    assert first.login == LoginConfig(
        url="http://127.0.0.1:9/login",
        username="#u",
        password="#p",
        submit="button",
        username_env="GRID_USER",
        password_env="GRID_PASS",
    )
    assert first.before == (
        Step("click", selector="#show-all"),
        Step("wait_s", seconds=1.5),
        Step("scroll", selector="#history"),
    )
    assert first.pages == PagesConfig(next="a.next", count=3)
    assert second.table is None and second.wait_for is None and second.login is None
    assert dict(config.extras) == {}


def test_extra_top_level_keys_for_the_nightly_job(tmp_path: Path) -> None:
    text = 'root = "/data/nightly"\nreview_below = 0.9\n' + GOOD_TARGET
    path = write(tmp_path, text)
    config = load_config(path, extra_keys={"root", "model", "review_below"})
    assert dict(config.extras) == {"root": "/data/nightly", "review_below": 0.9}
    with pytest.raises(ConfigError, match=r"nightly\.toml: root: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[target]]\nname = "a"\n', "target[0].url: missing"),
        (GOOD_TARGET + '[[target]]\nurl = "http://h/"\n', "target[1].name: missing"),
        ("[browser]\nwindow = 800\n" + GOOD_TARGET, "[browser].window: expected [width, height]"),
        ("[browser]\nwindow = [800]\n" + GOOD_TARGET, "[browser].window: expected [width, height]"),
        ('[browser]\ntimeout_s = "20"\n' + GOOD_TARGET, "[browser].timeout_s: expected seconds"),
        ("[browser]\nretries = true\n" + GOOD_TARGET, "[browser].retries: expected an integer"),
        ("[browser]\nscale = 0\n" + GOOD_TARGET, "[browser].scale: expected a number"),
        ("[browser]\nzoom = 2\n" + GOOD_TARGET, "[browser].zoom: unknown key"),
        ('colour = "red"\n' + GOOD_TARGET, "colour: unknown key"),
        (GOOD_TARGET + 'tabel = "#t"\n', "target[0].tabel: unknown key"),
        (GOOD_TARGET.replace('"t1"', '"table 3"'), "target[0].name: 'table 3' may hold only"),
        (GOOD_TARGET.replace('"t1"', '"../x"'), "target[0].name: '../x' may hold only"),
        (GOOD_TARGET + GOOD_TARGET, "target[1].name: duplicate name 't1'"),
        (GOOD_TARGET.replace("http://127.0.0.1:9/x", "ftp://h/x"), "target[0].url: expected"),
        (GOOD_TARGET.replace('"#t"', "3"), "target[0].table: expected a non-empty string"),
        (GOOD_TARGET + LOGIN.replace('password = "#p"\n', ""), "target[0].login.password: missing"),
        (GOOD_TARGET + LOGIN.replace('"GRID_PASS"', '"not a var"'), "login.password_env: expected"),
        (GOOD_TARGET + LOGIN + 'token = "x"\n', "target[0].login.token: unknown key"),
        (
            GOOD_TARGET + '[[target.before]]\nclick = "#a"\nwait_s = 1\n',
            "before[0]: expected exactly",
        ),
        (GOOD_TARGET + '[[target.before]]\nhover = "#a"\n', "target[0].before[0].hover: unknown"),
        (GOOD_TARGET + "[[target.before]]\nwait_s = -1\n", "target[0].before[0].wait_s: expected"),
        (
            GOOD_TARGET + '[target.pages]\nnext = "a"\ncount = 0\n',
            "target[0].pages.count: expected",
        ),
        (GOOD_TARGET + '[target.pages]\nnext = "a"\n', "target[0].pages.count: missing"),
        ("[browser]\n", "target: missing"),
        ('[target]\nname = "a"\nurl = "http://h/"\n', "target: expected an array of tables"),
        ("[[target]\n", "invalid TOML"),
    ],
)
def test_bad_config_exits_3_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, text)
    out = tmp_path / "out"
    code = main(["capture", str(path), "--out", str(out)])
    assert code == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gridreader capture: error: {path}: ")
    assert message in err
    assert "\n" not in err
    assert not out.exists()  # nothing was started or written


def test_unknown_only_target_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD_TARGET)
    assert main(["capture", str(path), "--out", str(tmp_path / "o"), "--only", "nope"]) == 3
    assert "--only nope: no such target (targets: t1)" in capsys.readouterr().err
    missing = tmp_path / "missing.toml"
    assert main(["capture", str(missing), "--out", str(tmp_path / "o")]) == 3
    assert f"{missing}: cannot read" in capsys.readouterr().err
    assert main(["capture", str(path)]) == 2  # --out is required
    assert not (tmp_path / "o").exists()


def test_select_targets_keeps_config_order(tmp_path: Path) -> None:
    text = GOOD_TARGET + GOOD_TARGET.replace('"t1"', '"t2"') + GOOD_TARGET.replace('"t1"', '"t3"')
    config = load_config(write(tmp_path, text))
    assert [t.name for t in select_targets(config, ["t3", "t1"])] == ["t1", "t3"]
    assert [t.name for t in select_targets(config, "t2")] == ["t2"]
    assert len(select_targets(config)) == 3


def test_binaries_come_from_config_then_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GRIDREADER_CHROMIUM", str(fake))
    monkeypatch.delenv("GRIDREADER_CHROMEDRIVER", raising=False)
    chromium, driver = resolve_binaries(BrowserConfig(chromedriver=str(fake)))
    assert (chromium, driver) == (str(fake), str(fake))
    with pytest.raises(ConfigError, match=r"c\.toml: \[browser\]\.chromium: /nowhere/chromium"):
        resolve_binaries(BrowserConfig(chromium="/nowhere/chromium"), "c.toml")


def test_stems_and_redaction() -> None:
    from datetime import UTC, datetime

    moment = datetime(2024, 5, 1, 7, 8, 9, tzinfo=UTC)
    assert build_stem("table-3", moment, None) == "table-3-20240501T070809Z"
    assert build_stem("table-3", moment, 2) == "table-3-20240501T070809Z-p2"
    assert redact_secrets("user bob pw bobby!", ["bob", "bobby!"]) == "user *** pw ***"

"""`autoquant bars download` against a paper-server: alpaca-py's historical clients fetch the bars, the
CSV has alpaca-py's DataFrame layout and reads back through the CSV bar source, the same request
twice writes the same file, and bad requests exit 2 with one line and no file."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from autoquant.marketdata.bar_csv import HEADER
from autoquant.marketdata.replay import load_file
from autoquant.operator.cli import main
from tests.brokers.server_harness import TEST_KEYS, paper_server

HEADERS = {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}
WINDOW = ("--start", "2026-11-02T10:00:00Z", "--end", "2026-11-02T10:09:00Z")


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper server's keys in the environment, where the command reads Alpaca's keys."""
    monkeypatch.setenv("APCA_API_KEY_ID", TEST_KEYS.key_id)
    monkeypatch.setenv("APCA_API_SECRET_KEY", TEST_KEYS.secret_key)


def download(tmp_path: Path, url: str, out: Path, *argv: str) -> tuple[int, str]:
    config = tmp_path / "autoquant.toml"
    config.write_text("")
    text = io.StringIO()
    args = ["--config", str(config), "bars", "download", "--symbols", "AAPL,MSFT", "--out", str(out)]
    code = main([*args, "--url", url, *(argv or (*WINDOW, "--timeframe", "1Min"))], text)
    return code, text.getvalue()


@pytest.mark.usefixtures("keys")
async def test_download_writes_the_servers_bars_the_same_every_time(tmp_path: Path) -> None:
    """Ten minutes of two symbols: 20 rows in alpaca-py's CSV layout, equal to the server's REST bars,
    readable by the CSV bar source, byte-identical on a second run."""
    first, second = tmp_path / "bars.csv", tmp_path / "again.csv"
    async with paper_server(tmp_path) as server:
        code, said = await asyncio.to_thread(download, tmp_path, server.url, first)
        assert code == 0, said
        assert said.startswith(f"wrote 20 1Min bars to {first}")
        assert (await asyncio.to_thread(download, tmp_path, server.url, second))[0] == 0
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS) as client:
            served = (
                await client.get(
                    "/v2/stocks/MSFT/bars",
                    params={"timeframe": "1Min", "start": WINDOW[1], "end": WINDOW[3]},
                )
            ).json()["bars"]
    assert first.read_bytes() == second.read_bytes()
    lines = first.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    assert lines[1].startswith("AAPL,2026-11-02 10:00:00+00:00,")
    assert lines[11].startswith("MSFT,2026-11-02 10:00:00+00:00,")
    bars = load_file(first, bar_seconds=60)
    msft = [b for b in bars if b.symbol == "MSFT"]
    assert [b.close for b in msft] == [Decimal(str(b["c"])) for b in served]
    assert [b.volume for b in msft] == [b["v"] for b in served]


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--start", "2026-11-02", "--end", "2026-11-01", "--timeframe", "1Min"), "not after --start"),
        (("--start", "2026-11-02T10:00:00", "--end", "2026-11-03", "--timeframe", "1Min"), "timezone"),
        (("--start", "yesterday", "--end", "2026-11-03", "--timeframe", "1Min"), "--start"),
        ((*WINDOW, "--timeframe", "2Day"), "--timeframe"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    """Each bad argument is named on one stderr line, exit 2, and nothing is written."""
    out = tmp_path / "bars.csv"
    code, _ = download(tmp_path, "http://127.0.0.1:9", out, *argv)
    error = capsys.readouterr().err
    assert code == 2
    assert fragment in error and error.count("\n") == 1
    assert not out.exists()


def test_missing_keys_and_an_unreachable_server_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No keys in the environment, or nothing listening at --url: one line on stderr, exit 2, no file."""
    out = tmp_path / "bars.csv"
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    assert download(tmp_path, "http://127.0.0.1:9", out)[0] == 2
    assert "APCA_API_KEY_ID" in capsys.readouterr().err
    monkeypatch.setenv("APCA_API_KEY_ID", TEST_KEYS.key_id)
    monkeypatch.setenv("APCA_API_SECRET_KEY", TEST_KEYS.secret_key)
    assert download(tmp_path, "http://127.0.0.1:9", out)[0] == 2
    error = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:9" in error and error.count("\n") == 1
    assert not out.exists()

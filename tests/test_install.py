"""A built wheel, installed non-editable into a fresh virtualenv, is a working autoquant.

This is how the service is installed (`pip install .`): the checkout is not on the path, so anything
that only exists in the source tree (migrations behind a symlink, a module imported but not shipped)
fails here. The fresh venv takes the already-installed dependencies from the test venv through a
``.pth`` line (offline, seconds), and the wheel itself with ``--no-deps``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("autoquant-*.whl")
    return built


def test_wheel_ships_migrations_and_type_marker(wheel: Path) -> None:
    """The wheel carries every migration SQL file and py.typed."""
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(n for n in names if n.startswith("autoquant/ledger/sql/") and n.endswith(".sql"))
    in_tree = sorted(f"autoquant/ledger/sql/{p.name}" for p in (ROOT / "autoquant/ledger/sql").glob("*.sql"))
    assert shipped == in_tree and shipped
    assert "autoquant/py.typed" in names


def test_non_editable_install_migrates_and_passes_doctor(wheel: Path, tmp_path: Path) -> None:
    """`migrate` then `doctor` from a non-editable install, run outside the checkout, exit 0."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies come from this test run's environment (a plain path line: its .pth files, among them
    # the editable autoquant's finder, are not processed, so only the wheel provides `autoquant`).
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "autoquant.toml").write_text('[ledger]\npath = "ledger.db"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTOQUANT_CONFIG")}
    autoquant = env_dir / "bin" / "autoquant"
    where = subprocess.run(
        [python, "-c", "import autoquant; print(autoquant.__file__)"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(env_dir) in where, where
    for command in (["migrate"], ["doctor"], ["status"]):
        done = subprocess.run(
            [autoquant, "--config", "autoquant.toml", *command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)

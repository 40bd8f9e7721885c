"""``autoquant doctor``: is the config valid and the ledger whole? Every problem, in words or ``--json``
(the checks themselves are ``autoquant.ledger.integrity``, which ``run`` uses too)."""

from __future__ import annotations

import argparse
from typing import TextIO

from autoquant.errors import ConfigError
from autoquant.ledger import integrity as doctor
from autoquant.operator import render
from autoquant.runtime import config as config_module
from autoquant.runtime.config import Config

EXIT_OK, EXIT_PROBLEM = 0, 1


def cmd_doctor(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    problems = doctor.check_ledger(config.ledger.path)
    source = config.source or "built-in defaults"
    if getattr(args, "json", False):
        body = {"config": str(source), "ledger": str(config.ledger.path), "problems": problems}
        render.write_json({**body, "ok": not problems}, out)
        return EXIT_PROBLEM if problems else EXIT_OK
    out.write(f"config: ok ({source})\n")
    if problems:
        for problem in problems:
            out.write(f"problem: {problem}\n")
        return EXIT_PROBLEM
    out.write(f"ledger: ok ({config.ledger.path}: integrity, migrations, append-only triggers)\n")
    return EXIT_OK


def doctor_command(args: argparse.Namespace, out: TextIO) -> int:
    """``doctor`` lists an invalid config as a problem (exit 1) like any other, instead of failing on it."""
    try:
        config = config_module.load(args.config)
    except ConfigError as error:
        if getattr(args, "json", False):
            render.write_json(
                {"config": None, "ledger": None, "problems": [f"config: {error}"], "ok": False}, out
            )
        else:
            out.write(f"problem: config: {error}\n")
        return EXIT_PROBLEM
    return cmd_doctor(config, args, out)

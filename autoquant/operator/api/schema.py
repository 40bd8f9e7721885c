"""The API's OpenAPI document, as committed in ``docs/openapi.json`` (the contract a test pins).

Regenerate after a deliberate change: ``python -m autoquant.operator.api.schema docs/openapi.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from autoquant.operator.api.app import create_app
from autoquant.operator.api.state import ApiState
from autoquant.runtime.config import Config

#: The token the document is built with (the schema does not depend on it).
_PLACEHOLDER = "schema-only-token-not-for-serving"


def openapi_document() -> dict[str, Any]:
    """The schema of the API as built from the default config (routes do not depend on the config)."""
    document: dict[str, Any] = create_app(ApiState(Config(), _PLACEHOLDER)).openapi()
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render(openapi_document())
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

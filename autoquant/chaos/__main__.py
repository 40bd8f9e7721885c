"""``python -m autoquant.chaos`` (``make chaos``): see ``autoquant/chaos/driver.py``."""

from autoquant.chaos.driver import main

raise SystemExit(main())

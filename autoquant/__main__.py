import sys

from autoquant.operator.cli import main

sys.exit(main())

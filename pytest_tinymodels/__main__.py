"""``python -m pytest_tinymodels``."""

import sys

from .cli import main

sys.exit(main())

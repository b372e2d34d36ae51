"""`python -m pipeline.cli`: the `live-listener` command."""

import sys

from pipeline.cli import main

sys.exit(main())

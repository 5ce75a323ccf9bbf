"""``python -m search`` is the ``cnnsearch`` command."""

import sys

from search.cli import main

sys.exit(main())

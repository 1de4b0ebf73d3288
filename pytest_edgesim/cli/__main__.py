"""``python -m pytest_edgesim.cli``: the ``edgesim`` command."""

import sys

from pytest_edgesim.cli.app import main

sys.exit(main())

"""``python -m pytest_edgesim.gateway``: the gateway as a real MQTT client (see :mod:`.main`)."""

import sys

from pytest_edgesim.gateway.main import main

sys.exit(main())

"""``python -m leadrelay`` is the ``leadrelay`` command."""

import sys

from leadrelay.app.cli import main

sys.exit(main())

"""``python -m leadrelay`` is the ``leadrelay`` command."""

import sys

from leadrelay.cli import main

sys.exit(main())

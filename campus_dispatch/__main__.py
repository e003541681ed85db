"""``python -m campus_dispatch``: the ``campus-dispatch`` command."""

import sys

from campus_dispatch.cli import main

sys.exit(main())

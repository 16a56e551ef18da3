"""`python -m ember_xcs` is the `ember-xcs` command."""

import sys

from .cli import main

sys.exit(main())

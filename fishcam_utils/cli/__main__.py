"""``python -m fishcam_utils.cli``: the ``fishcam`` command without its script."""

import sys

from . import main

sys.exit(main())

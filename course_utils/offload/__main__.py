"""python -m course_utils.offload measure ... (veja course_utils/offload/isolated.py)."""

import sys

from .isolated import main

sys.exit(main())

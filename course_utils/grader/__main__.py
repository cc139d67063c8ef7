"""python -m course_utils.grader ... (o mesmo que curso-corrigir)."""

import sys

from course_utils.grader.cli import main

sys.exit(main())

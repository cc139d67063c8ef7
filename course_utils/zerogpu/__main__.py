"""`python -m course_utils.zerogpu lint PASTA`: o linter pela linha de comando."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

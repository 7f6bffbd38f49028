"""``python -m crnn_lit.data {convert,inspect} ...`` — see ``crnn_lit.data.cli``."""

import sys

from crnn_lit.data.cli import main

sys.exit(main())

"""``python -m instructprotein.serve --model PATH [--kg PATH] [--port N]``."""

import sys

from instructprotein.serve.run import main

sys.exit(main())

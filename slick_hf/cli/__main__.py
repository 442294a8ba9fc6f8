"""`python -m slick_hf.cli`: the same as the `slick-hf` command."""

import sys

from slick_hf.cli.main import main

sys.exit(main())

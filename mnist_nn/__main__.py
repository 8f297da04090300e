"""`python -m mnist_nn`: the command line (see mnist_nn/cli.py)."""

import sys

from mnist_nn.cli import main

sys.exit(main())

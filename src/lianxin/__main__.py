import sys

from lianxin.cli import main

sys.exit(main())

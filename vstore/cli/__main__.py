import sys

from vstore.cli import main

sys.exit(main())

import sys

from .plane import main

sys.exit(main())

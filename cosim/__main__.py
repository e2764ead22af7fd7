import sys

from cosim_cli.main import main

sys.exit(main())

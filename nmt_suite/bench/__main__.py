import sys

from nmt_suite.bench.harness import main

sys.exit(main())

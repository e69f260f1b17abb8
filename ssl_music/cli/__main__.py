import sys

from ssl_music.cli import main

sys.exit(main())

"""``python -m gan_postproc.cli.app_main``: the console script without the installed entry point."""

from .app import console_main

console_main()

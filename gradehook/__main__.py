"""`python -m gradehook`: the same as the `gradehook` command."""

from gradehook.cli import main

main()

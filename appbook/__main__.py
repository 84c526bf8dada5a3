"""``python -m appbook`` runs the command line."""

from .cli import main

main()

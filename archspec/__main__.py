"""`python -m archspec` runs the command line."""

from .cli import main

main()

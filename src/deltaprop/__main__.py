"""`python -m deltaprop` → cli.main()."""

from deltaprop.cli import main

main()

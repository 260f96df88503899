"""`python -m cli`: the `zoo` command run by this interpreter (how `zoo launch` starts its processes)."""

from cli.main import main

main()

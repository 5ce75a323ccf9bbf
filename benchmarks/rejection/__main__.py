"""``python -m benchmarks.rejection``: see ``benchmarks.rejection.protocol``."""

from benchmarks.rejection.protocol import main

main()

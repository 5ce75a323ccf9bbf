"""The ``cnnsearch`` command line: parses arguments and calls the modules; no logic here.

Every ``UserError`` becomes one line on stderr and exit code 2. Log lines and progress
follow ``-q``/``-v``: the command is handed the ``Output`` that ``search.cli.output``
builds (Optuna's INFO lines only with ``-v``, warnings printed above the live status line,
never glued to it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from search.cli.commands import COMMANDS
from search.cli.output import configured_output
from search.cli.parser import build_parser
from search.cli.standard_output import guarded_stdout
from search.errors import UserError


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    from optuna.exceptions import ExperimentalWarning

    # Heartbeats and the retry callback are "experimental" in Optuna; users need not see it.
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    args = build_parser().parse_args(argv)
    try:
        with guarded_stdout(), configured_output(args.verbosity) as output:
            COMMANDS[args.command](args, output)
    except UserError as error:
        print(f"cnnsearch: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnsearch: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

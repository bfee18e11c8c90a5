"""The one command line: ``gridreader <verb>``.

The CLI only parses arguments, calls library functions and turns the project's
exceptions into a one-line message and an exit code. Exit codes: 0 success,
1 some input failed, 2 usage error, 3 the job could not run at all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gridreader import __version__
from gridreader.errors import GridReaderError, UsageError
from gridreader.quiet import VERBOSE_ENV, configure_output

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3

# Each verb lives with its stage; the module exposes ``register(subparsers)``
# which adds its parser and sets ``func(args) -> int``.
_VERB_MODULES = (
    "capture.cli",
    "gridreader.commands.grid_cmd",
    "gridreader.commands.read_cmd",
    "gridreader.commands.batch_cmd",
    "gridreader.commands.eval_cmd",
    "gridreader.commands.train_cmd",
    "labeller.cli",
    "gridreader.commands.nightly_cmd",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per verb."""
    parser = _Parser(prog="gridreader", description="Pictures of number tables in, CSV out.")
    parser.add_argument("--version", action="version", version=f"gridreader {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for name in _VERB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # A verb whose module is not present yet must not break the others.
            if e.name and name.startswith(e.name):
                continue
            raise
        module.register(sub)
    _add_verbose(parser, top=True)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # Accepted before or after the verb; a verb's own default must not
    # overwrite a ``--verbose`` given before it, hence SUPPRESS below the top.
    if "--verbose" not in parser._option_string_actions:
        parser.add_argument(
            "--verbose",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="also show third-party log lines (TensorFlow, LiteRT) on stderr",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_verbose(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb and return its exit code."""
    parser = build_parser()
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    args.argv = argv  # model cards record the exact command
    previous = os.environ.get(VERBOSE_ENV)
    configure_output(bool(getattr(args, "verbose", False)))
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"gridreader {args.verb}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except GridReaderError as e:
        print(f"gridreader {args.verb}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"gridreader {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gridreader eval DIR | head`): nothing more can
        # be said, and no traceback either. Every output file is written to a
        # temporary name and renamed, so none is half-written; work not yet
        # reached is left for a rerun. Python would flush stdout again at exit
        # and fail the same way: point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    finally:
        # Callers running several verbs in one process (the tests) start afresh.
        if previous is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = previous


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()

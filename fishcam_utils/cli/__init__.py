"""The ``fishcam`` command: make data, check a dataset, fetch the Kaggle set, train, evaluate, run the course.

Run ``fishcam --help`` or ``fishcam <command> --help`` for the options of each command. Each
command is one module's pair of functions: ``add_<command>`` declares its flags, the other runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import FishCAMError, on_command_line
from .course_commands import add_course, add_pretrain
from .data_commands import add_check_data, add_download_kaggle, add_make_data
from .messages import os_error_line, plain_data_warnings
from .model_commands import add_evaluate, add_evaluate_cam, add_gradcam
from .options import FUSION_CHOICES, LAYOUT_CHOICES, MODEL_CHOICES
from .options import size as _size  # noqa: F401 (tests read the size parser here)
from .train_command import add_train

__all__ = ["FUSION_CHOICES", "LAYOUT_CHOICES", "MODEL_CHOICES", "build_parser", "main"]

# The commands in the order --help lists them.
COMMANDS = (add_make_data, add_check_data, add_download_kaggle, add_train, add_evaluate, add_gradcam,
            add_evaluate_cam, add_course, add_pretrain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fishcam",
        description="FishCAM: seeing what a fish classifier sees. Tools for the course's data and notebooks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    parser.set_defaults(output_flag=None, uses_cache=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``fishcam`` command. Every failure ends in one message naming the file or flag and
    the fix (exit code 2), never a traceback; ``FISHCAM_DEBUG=1`` shows the traceback of a bug."""
    args = build_parser().parse_args(argv)
    prefix = f"fishcam {args.command}: error:"
    with on_command_line(), plain_data_warnings():
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (FishCAMError, ValueError) as error:
            print(prefix, error, file=sys.stderr)
            return 2
        except OSError as error:
            line = os_error_line(error, args.output_flag, args.uses_cache) if error.errno else error
            print(prefix, line, file=sys.stderr)
            return 2
        except Exception as error:  # a bug: still one line, and the way to see more
            return _internal_error(args.command, prefix, error)


def _internal_error(command: str, prefix: str, error: Exception) -> int:
    if type(error).__name__ == "OutOfMemoryError":  # torch's, on CUDA
        print(prefix, f"the GPU ran out of memory ({str(error).splitlines()[0][:200]}); use a smaller "
              "--batch-size (or --image-size), or --device cpu", file=sys.stderr)
        return 2
    if os.environ.get("FISHCAM_DEBUG"):
        raise error
    print(f"fishcam {command}: internal error: {type(error).__name__}: {error}. This is a bug in FishCAM: "
          "run the command again with FISHCAM_DEBUG=1 to see the traceback, and report it.", file=sys.stderr)
    return 1

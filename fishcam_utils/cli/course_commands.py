"""``fishcam course`` (every notebook, headless) and ``fishcam pretrain`` (the course's stand-in weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import device, progress_option


def add_course(commands) -> None:
    course = commands.add_parser(
        "course",
        help="run every notebook headless and summarise what they produced",
        description="Generate the dataset, execute the notebooks in order in a fresh kernel, write executed "
        "copies and HTML to build/, and print accuracies, figures and time per notebook. Runs in a checkout "
        "of the course, with the notebooks extra installed (pip install -e '.[notebooks]').",
    )
    course.add_argument("--quick", action="store_true", help="quick mode: small data, few epochs (what CI runs)")
    course.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks (by number, e.g. 01 03)")
    course.add_argument("--build", help="output folder (default: build/)")
    course.add_argument("--notebooks",
                        help="the folder of the course's notebooks (default: notebooks/ of the checkout)")
    course.add_argument("--no-html", action="store_true", help="skip the HTML renderings")
    course.add_argument("--list", action="store_true", help="list the notebooks with their titles, and run nothing")
    course.set_defaults(run=course_command, output_flag="--build")


def course_command(args: argparse.Namespace) -> int:
    from ..course import run_course

    if args.list:
        from ..course.runner import course_notebooks, notebook_title

        found = course_notebooks(args.notebooks)
        for path in found:
            print(f"{path.name[:2]}  {notebook_title(path)}")
        return 0 if found else 1
    runs = run_course(quick=args.quick, only=args.only, build=args.build, html=not args.no_html,
                      notebooks=args.notebooks)
    return 0 if runs and all(r.ok for r in runs) else 1


def add_pretrain(commands) -> None:
    from ..standin.recipes import STANDIN_RECIPES

    pretrain = commands.add_parser(
        "pretrain",
        help="make the course's pretrained stand-in weights (offline transfer learning, notebook 03)",
        description="Pretrain a backbone on the source task (twelve other invented fish, all views mixed) with "
        "the recipe of fishcam_utils/standin/recipes.py, and write it with its manifest (recipe, data seed, sha256, "
        "source-task accuracy) to checkpoints/standin, where build_model(..., weights='course') finds it.",
    )
    pretrain.add_argument("--backbone", required=True, choices=list(STANDIN_RECIPES), help="the backbone to pretrain")
    pretrain.add_argument("--out", help="folder for the weights and manifest (default: checkpoints/standin)")
    pretrain.add_argument("--device", type=device, help="cpu, cuda or mps (default: the best available)")
    progress_option(pretrain)
    pretrain.set_defaults(run=pretrain_command, output_flag="--out")


def pretrain_command(args: argparse.Namespace) -> int:
    from ..standin.pretrain import pretrain

    entry = pretrain(args.backbone, Path(args.out) if args.out else None, device=args.device,
                     progress=not args.no_progress)
    print(f"{args.backbone}: source-task test accuracy {entry['source_test_accuracy']:.1%}, "
          f"{entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...; written to {entry['path']}")
    return 0

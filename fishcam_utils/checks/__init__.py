"""Checkers for the course's you-write-it tasks: each says at once whether the student's code is right
and, if not, which typical mistake it makes.

    from fishcam_utils import checks
    verdict = checks.grad_cam(my_grad_cam)   # prints ✅ correct / ❌ not yet right: ... / ⏳ not done yet
    my_grad_cam = verdict.function            # hers when right, else the package's, so later cells run
    checks.summary("05")                      # the notebook's last cell: every task, right or not yet

The tasks of each notebook are declared once, in ``NOTEBOOK_TASKS``; ``TASKS`` maps each checker's
name to the checker.
"""

from __future__ import annotations

from .cams import grad_cam, gradcam_pp
from .core import DONE, LATEST, NOT_DONE, WRONG, Verdict
from .fusion import attention_pooling
from .guided import guided_backprop
from .judging import deletion_loop, energy_share, pointing_game
from .sanity import cascading_randomisation, spearman
from .splits import leak_simulation
from .training import training_loop

NOTEBOOK_TASKS: dict[str, tuple] = {
    "01": (leak_simulation,),
    "02": (training_loop,),
    "04": (attention_pooling,),
    "05": (grad_cam, gradcam_pp),
    "07": (guided_backprop,),
    "08": (pointing_game, energy_share, deletion_loop, spearman, cascading_randomisation),
}
TASKS = {checker.__name__: checker for checkers in NOTEBOOK_TASKS.values() for checker in checkers}
# nbgrader's points for each task's check cell, by the size of the task (the lines a student writes, and its parts).
POINTS = {"leak_simulation": 2, "training_loop": 2, "attention_pooling": 2, "grad_cam": 3, "gradcam_pp": 2,
          "guided_backprop": 3, "pointing_game": 1, "energy_share": 1, "deletion_loop": 2, "spearman": 1,
          "cascading_randomisation": 2}


def summary(notebook: str) -> list[Verdict | None]:
    """Print, for each task of ``notebook`` ("05"), its latest verdict in this session (or that its check
    has not run yet), and how many are right; returns the verdicts (None where not run)."""
    verdicts = [LATEST.get(checker.__name__) for checker in NOTEBOOK_TASKS[notebook]]
    right = sum(bool(v and v.passed) for v in verdicts)
    print(f"Your tasks in notebook {notebook}: {right} of {len(verdicts)} right.")
    for checker, verdict in zip(NOTEBOOK_TASKS[notebook], verdicts):
        if verdict is None:
            print(f"{NOT_DONE} checks.{checker.__name__}: its check has not run in this session; run the task's "
                  "cell and the check below it")
        else:
            print(verdict)
    if right < len(verdicts):
        print(f"Until a task is right ({WRONG} or {NOT_DONE} above), the notebook ran on the package's version of it. "
              "Go back to it, fix it, and run its check again.")
    return verdicts


__all__ = ["DONE", "NOTEBOOK_TASKS", "NOT_DONE", "POINTS", "TASKS", "WRONG", "Verdict", "attention_pooling",
           "cascading_randomisation", "deletion_loop", "energy_share", "grad_cam", "gradcam_pp", "guided_backprop",
           "leak_simulation", "pointing_game", "spearman", "summary", "training_loop"]

"""Checkers for the course's you-write-it tasks: each says at once whether the student's code is right
and, if not, which typical mistake it makes.

    from fishcam_utils import checks
    verdict = checks.grad_cam(my_grad_cam)   # prints ✅ correct / ❌ not yet right: ... / ⏳ not done yet
    my_grad_cam = verdict.function            # hers when right, else the package's, so later cells run

One checker per task, by notebook: 02 ``training_loop``; 05 ``grad_cam``, ``layercam``; 07
``guided_relu``; 08 ``pointing_game``, ``energy_share``, ``deletion_loop``.
"""

from .cams import grad_cam, layercam
from .core import Verdict
from .guided import guided_relu
from .judging import deletion_loop, energy_share, pointing_game
from .training import training_loop

TASKS = {"training_loop": training_loop, "grad_cam": grad_cam, "layercam": layercam, "guided_relu": guided_relu,
         "pointing_game": pointing_game, "energy_share": energy_share, "deletion_loop": deletion_loop}

__all__ = ["TASKS", "Verdict", "deletion_loop", "energy_share", "grad_cam", "guided_relu", "layercam", "pointing_game",
           "training_loop"]

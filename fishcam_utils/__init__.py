"""fishcam_utils: the helper package of the FishCAM course ("seeing what a fish classifier sees").

Modules, one concern each:

- ``fishcam_utils.data``: the synthetic multi-view fish dataset, loaders for real layouts,
  splits, transforms, the decode-once cache;
- ``fishcam_utils.models``, ``training``, ``evaluation``: networks, the training loop, predictions
  and reports;
- ``fishcam_utils.explain``: the CAM family, guided backprop, overlays, and judging explanations;
- ``fishcam_utils.widgets``: the CAM explorer of notebook 06 (needs ipywidgets);
- ``fishcam_utils.viz``: sample grids and mask overlays;
- ``fishcam_utils.course``: the course beside the library: running the notebooks headless, the
  models the notebooks share (recipes), notebook 08's Kaggle experiment;
- ``fishcam_utils.repository``: the course's GitHub address and what is made from it (Colab cell, badges);
- ``fishcam_utils.network``: whether a download can reach its server (proxies honoured);
- ``fishcam_utils.settings``: folders and quick mode;
- ``fishcam_utils.runtime``: the plumbing every floor shares (the device, moving batches, autocast,
  unwrapping DDP, calling a model on one batch);
- ``fishcam_utils.registry``: the one table type of everything looked up by name (``Registry``);
- ``fishcam_utils.standin``: the course's pretrained stand-in (its recipes, shipped weights, pretraining);
- ``fishcam_utils.cli``: the ``fishcam`` command.
"""

__version__ = "0.1.0"
COURSE_REPOSITORY = "https://github.com/fishcam-course/fishcam"

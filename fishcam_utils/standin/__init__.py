"""The course's pretrained stand-in, in one home: backbones pretrained on a *source* task that is not
the course's (other invented fish, other marks), shipped small in ``checkpoints/standin`` so that
transfer learning can be taught offline.

* ``recipes``: how each backbone's stand-in is made (plain data; the command line lists it without torch);
* ``weights``: the shipped files and their manifest: reading them (hash checked, ``weights_only=True``)
  and writing them atomically;
* ``pretrain``: making them again (``fishcam pretrain``), a run on the source task.

``build_model(name, k, weights="course")`` loads them through the table of weight sources
(``models.weights``). ``recipes`` and ``weights`` sit below ``models``; ``pretrain`` sits above ``training``.
"""

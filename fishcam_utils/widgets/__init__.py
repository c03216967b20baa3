"""The CAM explorer (notebook 06): ``explore(model, dataset)`` shows an image, its heatmap and the
overlay, with controls for image, view, layer, class, method, smoothing, opacity and colormap.

``MapStore`` computes and keeps the maps the explorer shows, with no widgets involved.
"""

from .explorer import CamExplorer, explore
from .maps import SMOOTHINGS, ClassMaps, MapStore, Sample, menu, method_key, smoothing_problem
from .pictures import png_bytes, read_png

__all__ = ["SMOOTHINGS", "CamExplorer", "ClassMaps", "MapStore", "Sample", "explore", "menu", "method_key", "png_bytes",
           "read_png", "smoothing_problem"]

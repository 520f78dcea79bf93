"""Reading and writing fusedem data without napari or Qt.

- :func:`load` reads element-map bundles (.npz, .h5, TIFFs) and instrument
  files (Velox .emd, Bruker .bcf, Gatan .dm3/.dm4 via RosettaSciIO) into a
  :class:`Dataset` (with element maps extracted from an EDS spectrum image
  when the file lists elements but stores no maps); :func:`sniff` says,
  without raising, whether it can.
- :func:`save_result` writes a :class:`~fusedem.FusionResult` to HDF5 or TIFF
  atomically; :func:`load_result` reads an HDF5 result back.
"""
from ._dataset import Dataset, DatasetLayer, ReadError, classify_name
from ._extracted import extract_element_layers, extraction_splits
from ._layers_file import LayerToSave, save_layers, saved_role
from ._load import load, sniff
from ._results import SavedResult, load_result, save_maps, save_result

__all__ = [
    "Dataset",
    "DatasetLayer",
    "LayerToSave",
    "ReadError",
    "SavedResult",
    "classify_name",
    "extract_element_layers",
    "extraction_splits",
    "load",
    "load_result",
    "save_layers",
    "save_maps",
    "save_result",
    "saved_role",
    "sniff",
]

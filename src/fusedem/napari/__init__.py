"""napari glue for fusedem (readers, writer, sample data, widgets).

Kept import-light: napari and Qt are imported only inside the submodules that
napari loads on demand through the ``napari.yaml`` manifest.
"""

"""The "Denoise (PCA)" step of the spectrum panel: scree plot, suggested k, denoised layer.

The maths is :func:`fusedem.spectra.denoise_pca`; this module runs it in a worker,
draws the scree plot (log explained variance against component index, the
held-out score per k when k was chosen automatically) and adds the denoised cube
as a layer (role ``denoised_spectrum_image``) that the panel can extract from.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton, SpinBox

from ..spectra import PCADenoised, denoise_pca
from ._plot_style import FG as _FG, dark_axes, embedded_figure

_ACC, _SC = "#ffc66b", "#7fb2ff"


class ScreePlot(Container):
    """log10 explained-variance ratio per component; the chosen k marked."""

    def __init__(self) -> None:
        super().__init__(labels=False, widgets=[])
        self.figure, self.canvas = embedded_figure(
            self, (3.6, 1.9), 170, "Scree plot: share of the Poisson-weighted variance per "
            "component (log). Orange: the k used. Blue (right axis): held-out error per k "
            "(Poisson thinning), lowest = suggested k.")
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.ax2 = self.ax.twinx()
        self.figure.subplots_adjust(left=0.17, right=0.85, top=0.95, bottom=0.22)
        self.clear()

    def clear(self) -> None:
        for ax in (self.ax, self.ax2):
            ax.clear()
            dark_axes(ax)
        self.ax.set_xlabel("component", color=_FG, fontsize=8)
        self.ax.set_ylabel("log10 variance", color=_FG, fontsize=8)
        self.ax2.set_yticks([])
        self.canvas.draw_idle()

    def show(self, res: PCADenoised) -> None:
        """Draw a result's scree curve, its k and (if chosen automatically) the scores."""
        self.clear()
        evr = np.asarray(res.explained_variance_ratio, float)
        idx = np.arange(1, evr.size + 1)
        self.ax.plot(idx, np.log10(np.maximum(evr, 1e-300)), "o-", ms=3, lw=1, color=_FG)
        self.ax.axvline(res.n_components, color=_ACC, lw=1.2)
        if res.rank is not None:
            s = np.asarray(res.rank.scores, float)
            self.ax2.plot(np.arange(1, s.size + 1), s, "-", lw=1, color=_SC)
            self.ax2.tick_params(axis="y", colors=_SC, labelsize=7)
            self.ax2.set_yticks(np.linspace(s.min(), s.max(), 3))
            self.ax2.yaxis.set_major_formatter("{x:.3g}")
        self.canvas.draw_idle()


class PCAStep(Container):
    """k (0 = suggested by held-out counts), the Denoise button, the scree plot, a status line.

    ``current()`` gives (spectrum layer, its EnergyAxis) or None; ``jobs`` runs
    workers; ``add_layer(source_layer, result)`` puts the denoised cube in the viewer.
    """

    def __init__(self, current: Callable[[], Any], jobs: Any,
                 add_layer: Callable[[Any, PCADenoised], Any]) -> None:
        self._current, self._jobs, self._add = current, jobs, add_layer
        self.k = SpinBox(label="PCA components", min=0, max=200, value=0, tooltip=(
            "Components kept (0 = suggested: the k with the lowest held-out error when the "
            "counts are split by Poisson thinning; needs raw counts)."))
        self.button = PushButton(text="Denoise (PCA)", tooltip=(
            "Poisson-normalised PCA of the spectrum image (as HyperSpy's decomposition with "
            "normalize_poissonian_noise=True); adds the denoised cube as a new spectrum "
            "layer to extract from. Weak lines and rare phases can be flattened."))
        self.plot = ScreePlot()
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.result: PCADenoised | None = None
        self.layer: Any = None
        self._t0 = 0.0
        super().__init__(widgets=[self.k, self.button, self.plot, self.status])
        self.button.changed.connect(self.run)

    def run(self, *_: Any) -> bool:
        """Start the denoising of the current spectrum layer in a worker."""
        cur = self._current()
        if cur is None:
            self.status.value = "Nothing to denoise: choose a spectrum image."
            return False
        layer, axis = cur
        k = int(self.k.value) or None
        self.button.enabled = False
        self._t0 = time.perf_counter()
        self.status.value = (f"Denoising '{layer.name}' "
                             f"({'choosing k on held-out counts' if k is None else f'k = {k}'})…")
        self._jobs.start("pca", denoise_pca, layer.data, k, axis=axis.axis,
                         done=lambda res: self._done(layer, res), failed=self._failed,
                         finished=lambda: setattr(self.button, "enabled", True))
        return True

    def _done(self, layer: Any, res: PCADenoised) -> None:
        self.result = res
        self.plot.show(res)
        self.layer = self._add(layer, res)
        how = "suggested by held-out counts" if res.rank is not None else "as set"
        self.status.value = (f"k = {res.n_components} ({how}); {res.explained_variance_ratio[:res.n_components].sum():.1%}"
                             f" of the weighted variance; {time.perf_counter() - self._t0:.1f} s. "
                             f"Extract from '{getattr(self.layer, 'name', '')}'.")

    def _failed(self, exc: BaseException) -> None:
        msg = str(exc) or type(exc).__name__
        self.status.value = f"PCA failed: {msg if isinstance(exc, ValueError) else type(exc).__name__ + ': ' + msg}"


def denoised_layer(viewer: Any, si: Any, res: PCADenoised, combo: Any = None) -> Any:
    """Add (or replace) the layer '<si> PCA' holding ``res.cube``; choose it in ``combo``."""
    md = dict((si.metadata or {}).get("fusedem") or {})
    md.update(role="denoised_spectrum_image", pca=res.settings, spectrum_layer=si.name)
    name = f"{si.name} PCA"
    data = res.cube.astype(np.float32)
    old = next((ly for ly in viewer.layers if ly.name == name), None)
    if old is not None:
        old.data, old.metadata = data, {"fusedem": md}
        layer = old
    else:
        layer = viewer.add_image(data, name=name, metadata={"fusedem": md}, scale=si.scale,
                                 translate=si.translate, units=si.units, visible=False)
    if combo is not None:
        combo.reset_choices()
        combo.value = layer
    return layer

"""magicgui controls for every :class:`fusedem.FusionParams` field, with presets and reset."""
from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, PushButton, SpinBox

from ..params import MAP_SCALINGS, TV_SOLVERS, WEIGHTINGS, FusionParams

#: Preset choices shown in the panel: label -> preset key of FusionParams.preset.
PRESET_CHOICES: dict[str, str] = {
    "DyScO3 tutorial (X-EDS)": "dysco3",
    "Co3O4-Mn3O4 tutorial (EELS)": "co3o4_mn3o4",
}
_CUSTOM = "custom"

_TIPS = {
    "lambda_chem": "Weight of the Poisson (chemical) data term Psi2: how closely the fused maps "
    "follow the measured elemental maps. Typical 0.005-0.3 (DyScO3 0.08, Co3O4-Mn3O4 0.006).",
    "lambda_tv": "Total-variation weight: denoising strength of each map. Typical 0.001-1; "
    "below 0.2 preserves atomic-scale detail (DyScO3 0.15, Co3O4-Mn3O4 0.022).",
    "gamma": "Z-contrast exponent of the HAADF model sum_i w_i x_i^gamma. "
    "Typical 1.4-2 for incoherent HAADF imaging (tutorials: 1.6).",
    "eps": "Background term epsilon in the Poisson term log(x + eps); larger values tolerate "
    "zero-count pixels better. Typical 0.01-0.5 (DyScO3 0.24, Co3O4-Mn3O4 0.01).",
    "n_iter": "Outer iterations of the solver. 30 is usually enough; watch the convergence plot.",
    "n_iter_tv": "Inner iterations of each TV proximal step. Typical 3-10.",
    "weighting": "Channel weights w_i of the HAADF model: 'z' = Z_i/mean(Z) (tutorials), "
    "'z_gamma' = Z_i^gamma/mean(Z^gamma), '*_sum' normalise by the sum, 'none' = 1.",
    "lambda_haadf": "Weight of the HAADF term Psi1. Auto uses 1/number of elements "
    "(a safe step size); raise it to trust the HAADF more.",
    "tv_solver": "TV proximal solver: 'fgp' (fast gradient projection with momentum, "
    "recommended) or 'gp' (plain gradient projection, for comparison).",
    "background_threshold": "Zero normalised input-map values below this threshold before "
    "fusing (0-1). Useful for particles on an empty background (Co3O4-Mn3O4: 0.2).",
    "map_scaling": "How each elemental map is scaled before fusing: 'max' divides by its "
    "maximum (a gain: raw counts keep their Poisson statistics; the default), 'minmax' also "
    "subtracts its minimum, as the published code and the tutorial presets do (the same for "
    "maps whose minimum is 0).",
    "warm_start_tv": "Keep the TV dual variables between outer iterations. Off (default) is "
    "what the published code does; on makes a given λ TV much stronger, so tuned values no "
    "longer carry over (docs/warm-start.md).",
}


def _float(name: str, label: str, lo: float, hi: float, step: float) -> FloatSpinBox:
    return FloatSpinBox(name=name, label=label, min=lo, max=hi, step=step, tooltip=_TIPS[name])


def _pair(label: str, switch: CheckBox, value: FloatSpinBox) -> Container:
    """One labelled row: an on/auto checkbox followed by the value it enables."""
    row = Container(layout="horizontal", labels=False, label=label, widgets=[switch, value])
    row.margins = (0, 0, 0, 0)
    return row


class ParamControls(Container):
    """All solver parameters as magicgui widgets; :meth:`params` builds a FusionParams."""

    def __init__(self) -> None:
        self.preset = ComboBox(
            name="preset", label="preset", choices=[_CUSTOM, *PRESET_CHOICES],
            value=_CUSTOM, tooltip="Load the parameters of a published tutorial.",
        )
        self.reset_button = PushButton(
            name="reset_defaults", text="Reset to defaults",
            tooltip="Set every parameter back to fusedem's defaults: the DyScO3 tutorial's "
            "values with a cold TV start (= FusionParams()). On other data, use Auto.",
        )
        self.lambda_chem = _float("lambda_chem", "λ chem", 0.0, 1.0, 0.001)
        self.lambda_tv = _float("lambda_tv", "λ TV", 0.0, 2.0, 0.001)
        self.gamma = _float("gamma", "γ", 1.0, 3.0, 0.05)
        self.eps = _float("eps", "ε", 0.0001, 1.0, 0.001)
        self.n_iter = SpinBox(name="n_iter", label="iterations", min=1, max=10000,
                              tooltip=_TIPS["n_iter"])
        self.n_iter_tv = SpinBox(name="n_iter_tv", label="TV iterations", min=1, max=200,
                                 tooltip=_TIPS["n_iter_tv"])
        self.weighting = ComboBox(name="weighting", label="weighting", choices=list(WEIGHTINGS),
                                  tooltip=_TIPS["weighting"])
        self.haadf_auto = CheckBox(name="lambda_haadf_auto", text="auto (1/n)",
                                   tooltip=_TIPS["lambda_haadf"])
        self.lambda_haadf = _float("lambda_haadf", "λ HAADF", 0.001, 10.0, 0.01)
        self.threshold_on = CheckBox(name="background_threshold_on", text="on",
                                     tooltip=_TIPS["background_threshold"])
        self.background_threshold = _float("background_threshold", "threshold", 0.0, 0.99, 0.01)
        self.tv_solver = ComboBox(name="tv_solver", label="TV solver", choices=list(TV_SOLVERS),
                                  tooltip=_TIPS["tv_solver"])
        self.warm_start_tv = CheckBox(name="warm_start_tv", text="warm-start TV",
                                      tooltip=_TIPS["warm_start_tv"])
        self.map_scaling = ComboBox(name="map_scaling", label="map scaling",
                                    choices=list(MAP_SCALINGS), tooltip=_TIPS["map_scaling"])
        self.lambda_haadf.native.setDecimals(3)
        for w in (self.lambda_chem, self.lambda_tv, self.eps):  # automatic choices go to 1e-4
            w.native.setDecimals(5)
        self._n_elements = 1
        self._loading = False
        super().__init__(
            name="parameters", labels=True,
            widgets=[
                self.preset, self.reset_button,
                self.lambda_chem, self.lambda_tv, self.gamma, self.eps, self.n_iter,
                self.n_iter_tv, self.weighting,
                _pair("λ HAADF", self.haadf_auto, self.lambda_haadf),
                _pair("bg threshold", self.threshold_on, self.background_threshold),
                self.tv_solver, self.warm_start_tv, self.map_scaling,
            ],
        )
        self.set_params(FusionParams())
        self.preset.changed.connect(self._on_preset)
        self.reset_button.changed.connect(lambda: self.set_params(FusionParams()))
        for w in self._value_widgets():
            w.changed.connect(self._on_edit)

    def _value_widgets(self) -> list:
        return [self.lambda_chem, self.lambda_tv, self.gamma, self.eps, self.n_iter,
                self.n_iter_tv, self.weighting, self.haadf_auto, self.lambda_haadf,
                self.threshold_on, self.background_threshold, self.tv_solver, self.warm_start_tv,
                self.map_scaling]

    def params(self) -> FusionParams:
        """The parameters shown; raises ValueError (from FusionParams) when invalid."""
        kw: dict[str, Any] = dict(
            lambda_chem=float(self.lambda_chem.value), lambda_tv=float(self.lambda_tv.value),
            gamma=float(self.gamma.value), eps=float(self.eps.value),
            n_iter=int(self.n_iter.value), n_iter_tv=int(self.n_iter_tv.value),
            weighting=self.weighting.value, tv_solver=self.tv_solver.value,
            warm_start_tv=bool(self.warm_start_tv.value), map_scaling=self.map_scaling.value,
            lambda_haadf=None if self.haadf_auto.value else float(self.lambda_haadf.value),
            background_threshold=(
                float(self.background_threshold.value) if self.threshold_on.value else None
            ),
        )
        # fields without a control (poisson_step, poisson_weights, tv_step, lambda_tv_elements,
        # tv_weight_exponent)
        # keep the values last set (by a preset, Reset or Auto)
        return self._unshown.replace(**kw)

    def set_params(self, p: FusionParams) -> None:
        """Show ``p`` in the controls (the preset box then names a matching preset, if any)."""
        self._loading = True
        self._unshown = p
        try:
            for name in ("lambda_chem", "lambda_tv", "gamma", "eps", "n_iter", "n_iter_tv",
                         "weighting", "tv_solver", "warm_start_tv", "map_scaling"):
                getattr(self, name).value = getattr(p, name)
            self.haadf_auto.value = p.lambda_haadf is None
            if p.lambda_haadf is not None:
                self.lambda_haadf.value = p.lambda_haadf
            self.threshold_on.value = p.background_threshold is not None
            if p.background_threshold is not None:
                self.background_threshold.value = p.background_threshold
            self.preset.value = next(
                (lab for lab, key in PRESET_CHOICES.items() if FusionParams.preset(key) == p),
                _CUSTOM,
            )
        finally:
            self._loading = False
        self._sync_enabled()

    def set_element_count(self, n: int) -> None:
        """Number of ticked elements: the greyed λ HAADF field then shows the auto 1/n."""
        self._n_elements = max(int(n), 1)
        self._show_auto_haadf()

    def _show_auto_haadf(self) -> None:
        if self.haadf_auto.value:
            with self.lambda_haadf.changed.blocked():
                self.lambda_haadf.value = 1.0 / self._n_elements

    def set_running(self, running: bool) -> None:
        """Disable every control while a fusion runs (edits apply to the next run)."""
        for w in (self.preset, self.reset_button, *self._value_widgets()):
            w.enabled = not running
        if not running:
            self._sync_enabled()

    def _sync_enabled(self) -> None:
        self._show_auto_haadf()
        self.lambda_haadf.enabled = self.haadf_auto.enabled and not self.haadf_auto.value
        self.background_threshold.enabled = (
            self.threshold_on.enabled and bool(self.threshold_on.value)
        )

    def _on_preset(self, label: str) -> None:
        if not self._loading and label in PRESET_CHOICES:
            self.set_params(FusionParams.preset(PRESET_CHOICES[label]))

    def _on_edit(self, *_: Any) -> None:
        if self._loading:
            return
        self._sync_enabled()
        try:
            p = self.params()
        except ValueError:
            p = None
        self._loading = True
        try:
            self.preset.value = next(
                (lab for lab, key in PRESET_CHOICES.items()
                 if p is not None and FusionParams.preset(key) == p),
                _CUSTOM,
            )
        finally:
            self._loading = False

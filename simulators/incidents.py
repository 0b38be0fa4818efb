"""The built-in demo incidents: one per family, early enough that the demo shows all three.

Times are seconds after the simulator's start (event time) and repeat every ``cycle_s``:

- gas leak at 鲁西集团 detector GD-01: from +10 s rising to 60 %LEL over 40 s (first level at
  about +23 s, second at about +36 s); the plume reaches GD-02 5 s later at half strength.
- tank over-temperature at 信发聚氯乙烯 T101 (a cooling failure): +1 °C/s from +15 s to about
  58 °C (H at about +31 s, HH at about +41 s), with pressure following as in a closed vessel.
- forest fire at 东阿黄河森林 station 1: smoke from +30 s (suspected fire at about +36 s), flame
  at +45 s (confirmed fire), air temperature up by 12 °C; out after three minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.models import ramp


@dataclass(frozen=True)
class Incident:
    """Adds ``effect(t - cycle start)`` to one sensor's baseline."""

    sensor_id: str
    start_s: float
    rise_s: float
    hold_s: float
    fall_s: float
    peak: float

    def delta(self, elapsed: float, cycle_s: float) -> float:
        """The incident's contribution at ``elapsed`` seconds after the simulator started."""
        return ramp(elapsed % cycle_s, self.start_s, self.rise_s, self.hold_s, self.fall_s, self.peak)


DEMO_INCIDENTS = (
    Incident("LC-LUXI-GD-01", 10, 40, 60, 60, 60.0),
    Incident("LC-LUXI-GD-02", 15, 40, 60, 60, 30.0),
    Incident("LC-XFPVC-T101-TT", 15, 34, 90, 120, 34.0),
    Incident("LC-XFPVC-T101-PT", 15, 34, 90, 120, 0.06),
    Incident("LC-DEHH-WS1-SM", 30, 20, 150, 30, 25.0),
    Incident("LC-DEHH-WS1-FL", 44, 2, 150, 30, 0.9),
    Incident("LC-DEHH-WS1-TA", 40, 30, 120, 60, 12.0),
)

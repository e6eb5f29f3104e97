"""Cost settings shared by the costs tests (importable, unlike conftest)."""

from __future__ import annotations

# One on-prem host with four T4s, as a team would describe it in its cost settings.
RACK_T4 = {
    "name": "rack-t4",
    "gpu_model": "T4",
    "gpu_count": 4,
    "purchase_price": 12000,
    "amortization_years": 3,
    "power_watts": 400,
    "electricity_per_kwh": 0.2,
    "utilization": 0.5,
}

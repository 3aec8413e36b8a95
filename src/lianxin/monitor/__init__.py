"""The long-running loop that drives readings store -> engine -> alerts.

It is the one place where the pure engine meets the operational database: it maps meters to
households (care models), feeds the engine what arrived in the stores since its clock, hands the
findings to lianxin.alerts.service.apply_findings, and keeps the engine's state on disk so a
restart carries on where it stopped.
"""

from lianxin.monitor.loop import Monitor, StepReport

__all__ = ["Monitor", "StepReport"]

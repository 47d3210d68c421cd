"""Reporting: what an exported network costs on Loihi 2 (memory, measured spikes and SynOps, ESTIMATED
cores and energy), why it does not behave as trained (:func:`diagnose`), and the plots of both.
"""

from .diagnosis import Diagnosis, Divergence, LayerDiagnosis, Problem, Raster, diagnose, format_diagnosis
from .network import LayerReport, NetworkReport, format_report, report_network, report_table
from .plots import write_diagnosis_plots, write_report_plots

__all__ = [
    "report_network",
    "report_table",
    "format_report",
    "NetworkReport",
    "LayerReport",
    "write_report_plots",
    "diagnose",
    "format_diagnosis",
    "write_diagnosis_plots",
    "Diagnosis",
    "Divergence",
    "LayerDiagnosis",
    "Problem",
    "Raster",
]

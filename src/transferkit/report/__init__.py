"""Reports: self-contained HTML pages (plots embedded as PNG data) for an evaluation and for a strategy comparison."""

from .html import comparison_report as comparison_report
from .html import evaluation_report as evaluation_report
from .html import shape_report as shape_report
from .html import write_evaluation as write_evaluation
from .html import write_report as write_report

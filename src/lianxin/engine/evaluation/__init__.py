"""Evaluation of the engine on real readings with injected incidents (`lianxin eval`).

Pure like the rest of the engine: frames in, a result dict out. The command does the file I/O.
"""

from lianxin.engine.evaluation.run import evaluate, format_misses, format_table

__all__ = ["evaluate", "format_misses", "format_table"]

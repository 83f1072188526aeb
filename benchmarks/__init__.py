"""The benchmarks: scripts run by path (``python benchmarks/X.py``), each
importing its sibling modules by their own names (the script's folder is on
``sys.path``) and the library as the installed ``mmseg_hosvd``.
"""

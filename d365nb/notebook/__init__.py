"""The notebook face of d365nb: the ``%d365`` magics (``extension.py`` registers them), their
commands, values, display and completion; ipywidgets forms live in ``forms/``."""

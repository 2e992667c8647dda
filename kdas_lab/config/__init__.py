"""One typed configuration shared by the CLI, the notebooks and the tests.

- :mod:`~kdas_lab.config.settings`: :class:`Config` (each field's default, choices and range side by side),
  its :class:`TeacherRecipe` section, :func:`config_changes` (the one comparison of two recorded configs);
- :mod:`~kdas_lab.config.profiles`: the profiles (``fast``, ``laptop``, ``course``, ``paper``) and the demo's
  overrides;
- :mod:`~kdas_lab.config.fields`: :func:`setting` (a field with its rules) and the check that applies them.
"""
from kdas_lab.config.profiles import DEMO_OVERRIDES, PROFILES
from kdas_lab.config.settings import (
    AUGMENT_MODES,
    RUNTIME_FIELDS,
    SGM_HEADS,
    TARGET_MODES,
    Config,
    TeacherRecipe,
    config_changes,
)

__all__ = ["AUGMENT_MODES", "DEMO_OVERRIDES", "PROFILES", "RUNTIME_FIELDS", "SGM_HEADS", "TARGET_MODES", "Config",
           "TeacherRecipe", "config_changes"]

"""MkDocs hook: ``configuration.md`` is generated at build time from the stage config dataclasses.

The page is never written by hand nor committed: ``caig.config_reference.render_reference`` walks the
profile's dataclasses (``caig.profile.Profile``) and renders every key with its type, default, the values
``configs/local.yaml`` and ``configs/production.yaml`` set, and the ``# comment`` the field carries in the
source. mkdocs.yml names this file under ``hooks:``.
"""

from __future__ import annotations

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from caig.config_reference import render_reference
from caig.profile import load_profile

PAGE = "configuration.md"
PROFILES = ("local", "production")


def on_files(files: Files, config) -> Files:
    if files.get_file_from_path(PAGE) is not None:
        raise PluginError(
            f"docs/{PAGE} is generated at build time (docs/hooks/config_reference.py); delete it"
        )
    content = render_reference({name: load_profile(name) for name in PROFILES})
    files.append(File.generated(config, PAGE, content=content))
    return files

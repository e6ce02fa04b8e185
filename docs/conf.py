"""Sphinx configuration: numpydoc API pages and the executed sphinx-gallery examples."""

import os

import sklearn_cnn

os.environ.setdefault("MPLBACKEND", "Agg")

project = "sklearn-cnn"
author = "sklearn-cnn developers"
copyright = "2026, sklearn-cnn developers"
version = release = sklearn_cnn.__version__

templates_path = ["_templates"]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
autosummary_generate = True
# Our own members, and those of our base classes, but not scikit-learn's or torch's (their
# docstrings point into their own documentation).
autodoc_default_options = {
    "members": True,
    "inherited-members": "BaseEstimator, ClassifierMixin, TransformerMixin, Module, "
                         "OneToOneFeatureMixin, ClassNamePrefixFeaturesOutMixin, RegressorMixin, str",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set = set()
intersphinx_mapping: dict = {}
suppress_warnings = ["config.cache"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "show_memory": False,
    "abort_on_example_error": True,
    "reference_url": {"sklearn_cnn": None},
}

html_theme = "alabaster"
html_title = "sklearn-cnn"


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing and set_output methods are documented by scikit-learn.
    if name.endswith("_request") or name in {"get_metadata_routing", "set_output"}:
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)

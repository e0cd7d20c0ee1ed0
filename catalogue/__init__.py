"""Facts about the product that both the web app and the training engine read.

Pure data and pure functions: this package imports nothing from the project and no
third-party library (an import-linter contract keeps it so), so `app` and `training` may
both depend on it without depending on each other.
"""

"""Deliberately broken: importing it fails, as a plug-in with a missing dependency would."""
import harness_dependency_that_does_not_exist  # noqa: F401

"""The built-in model backends, each a plug-in registering through ``register_models`` exactly as a
third party's does (listed in ``harness.plugins.DEFAULT_PLUGINS``). Import-light: loaders import
torch and the backend's code when called."""

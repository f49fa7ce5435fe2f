"""The {{ cookiecutter.flow_slug }} flow package: see README.md."""

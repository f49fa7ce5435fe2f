"""Say what to do next. Everything else the project needs is in its files."""

from __future__ import annotations

NEXT_STEPS = """
Created {{ cookiecutter.flow_slug }}. Next:

    cd {{ cookiecutter.flow_slug }}
    make test    # install everything with uv, then lint and test
    make run     # run the flow once on this machine

Then read README.md: where to write tasks, how monitoring works, how to deploy.
"""

if __name__ == "__main__":
    print(NEXT_STEPS)

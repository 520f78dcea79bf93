"""``python -m fusedem.cli``: same as the ``fusedem`` console script."""
from . import main

if __name__ == "__main__":
    raise SystemExit(main())

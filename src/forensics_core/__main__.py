"""``python -m forensics_core`` is the ``forensics`` command."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="forensics")

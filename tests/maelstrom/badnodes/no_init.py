#!/usr/bin/python3
"""Bad: reads its input but never answers init."""
import sys

for line in sys.stdin:
    pass

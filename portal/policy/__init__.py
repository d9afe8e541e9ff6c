"""The rules of the office actions policy, as plain Python: one module per subject.

Nothing here imports Flask, SQLAlchemy or the rest of the portal (``tests/test_layers.py``
checks it), so each rule reads like the policy and is tested at its edges in microseconds.
Services ask these modules and act on the answers; views and templates take their choices
from the enums here.
"""

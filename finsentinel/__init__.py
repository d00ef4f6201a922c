"""FinSentinel's front door: the ``finsentinel`` command and the demo.

Nothing in the project imports this package; it composes the others.
"""

"""The contracts every stage imports: message schemas, topic names, the error tree.

The bottom layer of FinSentinel: nothing here imports any other module of the
project, so producers and consumers written in any package agree on one
definition of each message.
"""

"""Reports read back from what the stages recorded: what ``mlops`` prints and the UI plugin will show.

- ``status``: the state of every use case (partitions, features, model, predictions, monitor)
- ``models``: a use case's model now (aliases, latest decision) and its history of versions
- ``lineage``: one day's predictions traced back through every store that made them
- ``closed_loop``: how the loop detected a drift, retrained and recovered
"""

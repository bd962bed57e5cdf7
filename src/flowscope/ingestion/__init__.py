"""Writing runs: the orchestration above `runs` (rows, prices) and `rollups` (what a run
adds), so that neither of those imports the other."""

"""The analytics endpoints' figures: summaries, node tables, bottlenecks, trends, and a run's
critical path. Aggregates read rollups only (flowscope.rollups); a run's path reads its rows."""

"""The optimization advisor: rules over a workflow's figures, sampled runs and graph
(docs/advisor.md)."""

"""Review chains (审查环节), tasks, 退回/转办/委托, and 并联审批 opinions (docs/review-chains.md)."""

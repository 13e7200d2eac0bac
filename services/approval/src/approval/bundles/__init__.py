"""一件事一次办: bundles of items applied for once, fanned out to one application per item."""

"""Wire contracts and service-agnostic plumbing shared by the approvals suite."""

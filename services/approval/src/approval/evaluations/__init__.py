"""好差评: the applicant rates a closed case; poor ratings open a remediation task."""

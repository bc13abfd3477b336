"""Site recommendation: candidate sites, their reach, the solver and stored recommendation runs."""

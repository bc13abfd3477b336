"""Data layers: delivery demand and the sample-area builder."""

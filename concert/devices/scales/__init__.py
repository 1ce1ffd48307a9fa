"""Scales: weigh what lies on them."""

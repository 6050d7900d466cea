"""Figures, activation maps and Grad-CAM, reports."""

"""Scenario files, benchmark readers (Li & Lim, Solomon, MDRPLIB), replay simulator, KPIs."""

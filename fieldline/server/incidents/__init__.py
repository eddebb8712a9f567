"""Incidents: main breaks and outages, from the first report to water back on."""

"""Meter anomalies for the call centre: daily consumption from the meters' registers and what
in it calls for a site check (spikes, continuous flow, stuck or reversed registers, silence)."""

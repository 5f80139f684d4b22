"""Pure mappings from what each source sends to LeadRelay's CloudEvents."""

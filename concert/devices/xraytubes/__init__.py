"""X-ray tubes: sources switched on and off, set by acceleration voltage and tube current."""
